# pfshim: page-fault profiler.  `make`, `make check`, `make demo`, `make install`.
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
SANITIZE ?=
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -Iinclude -MMD -MP -D_GNU_SOURCE

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

# The shim: hooks (the exported libc names) plus the core modules, which a
# unit test links directly.  Never sanitized: it runs inside other programs.
PRELOAD_SRC := $(wildcard preload/*.c)
PRELOAD_CORE_SRC := $(filter-out preload/hook_%.c,$(PRELOAD_SRC))
PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(BUILD)/%.o)
PRELOAD_CORE_OBJ := $(PRELOAD_CORE_SRC:%.c=$(BUILD)/%.o)
PRELOAD_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
	-fno-strict-aliasing -DUNW_LOCAL_ONLY
PRELOAD_LIBS := -lunwind -ldl -lpthread -liberty

ANALYZER_SRC := $(wildcard analyzer/*.c)
ANALYZER_CORE_SRC := $(filter-out analyzer/main.c,$(ANALYZER_SRC))
ANALYZER_OBJ := $(ANALYZER_SRC:%.c=$(BUILD)/%.o)
ANALYZER_CORE_OBJ := $(ANALYZER_CORE_SRC:%.c=$(BUILD)/%.o)
ANALYZER_CFLAGS := $(ALL_CFLAGS) $(SAN_FLAGS)
ANALYZER_LIBS := -ldw -lelf -lz -lm -liberty

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PRELOAD_TEST_SRC := $(wildcard tests/preload/*.c)
PRELOAD_TEST_BIN := $(PRELOAD_TEST_SRC:tests/preload/%.c=$(BUILD)/tests/preload/%)
PRELOAD_TEST_CXX_SRC := $(wildcard tests/preload/*.cpp)
PRELOAD_TEST_BIN += $(PRELOAD_TEST_CXX_SRC:tests/preload/%.cpp=$(BUILD)/tests/preload/%)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

LIB := $(BUILD)/libpfshim.so
CLI := $(BUILD)/pfshim
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all check unit integration demo install bench clean deps
all: $(LIB) $(CLI)

# A fresh machine lacks the -dev packages: install them (root) or say which.
$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_OK)

$(BUILD)/preload/%.o: preload/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CC      $<')
	$(Q)$(CC) $(PRELOAD_CFLAGS) -c $< -o $@

$(LIB): $(PRELOAD_OBJ) preload/exports.map
	@$(if $(Q),echo '  LD      $@')
	$(Q)$(CC) -shared -Wl,--version-script=preload/exports.map -Wl,-z,nodelete -o $@ \
		$(PRELOAD_OBJ) $(PRELOAD_LIBS)

$(BUILD)/analyzer/%.o: analyzer/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CC      $<')
	$(Q)$(CC) $(ANALYZER_CFLAGS) -c $< -o $@

$(CLI): $(ANALYZER_OBJ)
	@$(if $(Q),echo '  LD      $@')
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $(ANALYZER_OBJ) $(ANALYZER_LIBS)

# Unit tests link the core modules of both sides directly.  With SANITIZE
# set, the shim's core is built a second time, instrumented, for them only
# (the library itself never is: it runs inside other programs).
ifneq ($(SANITIZE),)
UNIT_CORE_OBJ := $(PRELOAD_CORE_SRC:%.c=$(BUILD)/unitcore/%.o)
.SECONDARY: $(UNIT_CORE_OBJ)
$(BUILD)/unitcore/preload/%.o: preload/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CC      $< (sanitized)')
	$(Q)$(CC) $(PRELOAD_CFLAGS) $(SAN_FLAGS) -c $< -o $@
else
UNIT_CORE_OBJ := $(PRELOAD_CORE_OBJ)
endif
$(BUILD)/tests/%: tests/unit/%.c $(UNIT_CORE_OBJ) $(ANALYZER_CORE_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  TEST    $@')
	$(Q)$(CC) $(ANALYZER_CFLAGS) -Ipreload -Ianalyzer -o $@ $< \
		$(UNIT_CORE_OBJ) $(ANALYZER_CORE_OBJ) $(PRELOAD_LIBS) $(ANALYZER_LIBS) -lcmocka

# Target programs for the integration tests and the examples: plain C,
# symbols and line tables kept so the reports can name them.
$(BUILD)/tests/preload/%: tests/preload/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) -std=gnu11 -O1 -g -fno-inline -fno-builtin -fno-omit-frame-pointer -Wall -Wextra -Werror -MMD -MP -o $@ $< -lpthread -ldl

# Built as users build theirs (-O2 -g, inlining on): C as opt_*.c, and C++.
CXX ?= g++
$(BUILD)/tests/preload/opt_%: tests/preload/opt_%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -MMD -MP -o $@ $< $(OPT_LIBS)
$(BUILD)/tests/preload/opt_jemalloc: OPT_LIBS := -ljemalloc
$(BUILD)/tests/preload/%: tests/preload/%.cpp
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CXX) -std=gnu++17 -O2 -g -Wall -Wextra -Werror -MMD -MP -o $@ $<

$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) -std=gnu11 -O1 -g -fno-inline -Wall -Wextra -Werror -o $@ $< -lpthread

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do $$t || fail=1; done; exit $$fail

integration: $(LIB) $(CLI) $(PRELOAD_TEST_BIN) $(EXAMPLE_BIN)
	@BUILD=$(BUILD) bash tests/run-integration.sh

check: all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory check-sanitize
	@$(MAKE) --no-print-directory fuzz-check

demo: $(LIB) $(CLI) $(BUILD)/examples/storm
	@sh examples/demo.sh $(BUILD)

bench: $(LIB) $(CLI)
	@bash bench/run.sh $(BUILD)

# pfshim's fault counts against the kernel's on real programs; rewrites docs/fidelity.md's figures.
.PHONY: fidelity
fidelity: $(LIB) $(CLI)
	@python3 tools/fidelity.py --build $(BUILD) --doc docs/fidelity.md

install: $(LIB) $(CLI)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/include/pfshim $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libpfshim.so
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/pfshim
	install -m 0644 include/pfshim/log_format.h $(DESTDIR)$(PREFIX)/include/pfshim/
	for m in docs/*.1; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done; true
	for m in docs/*.7; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man7/; done; true

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- analyzer robustness: fuzzing and sanitizers (docs/analyzer.md) ----------
# A libFuzzer harness for the log reader (clang), run briefly by `make check`
# (FUZZ_CHECK_SECONDS) and for FUZZ_SECONDS by `make fuzz`, on a seed corpus
# of real logs written at build time by example programs under the shim.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_CHECK_SECONDS ?= 20
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_BIN := $(FUZZ_DIR)/fuzz_logread
FUZZ_AN_SRC := analyzer/an_common.c analyzer/blocks.c analyzer/logread.c analyzer/model.c analyzer/model_load.c analyzer/model_finish.c \
	analyzer/storms.c analyzer/faults.c
FUZZ_AN_OBJ := $(FUZZ_AN_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_CFLAGS := -std=gnu11 $(WARN) -g -O1 -Iinclude -MMD -MP -D_GNU_SOURCE \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_SEED_PROGS := $(BUILD)/examples/storm $(BUILD)/tests/preload/touch_threads \
	$(BUILD)/tests/preload/touch_fork $(BUILD)/tests/preload/three_sites \
	$(BUILD)/tests/preload/exec_chain $(BUILD)/tests/preload/policy_storm
FUZZ_SEEDS := $(FUZZ_DIR)/seeds/.done

.PHONY: fuzz fuzz-build fuzz-check check-sanitize
$(FUZZ_DIR)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  FUZZCC  $<')
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BIN): $(FUZZ_DIR)/tests/fuzz/fuzz_logread.o $(FUZZ_AN_OBJ)
	@$(if $(Q),echo '  FUZZLD  $@')
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ -lm

# Seeds: the logs of a few programs under the shim (nothing binary is committed).
$(FUZZ_SEEDS): $(LIB) $(FUZZ_SEED_PROGS)
	@rm -rf $(FUZZ_DIR)/seeds $(FUZZ_DIR)/seedruns
	@mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/seedruns
	@for p in $(FUZZ_SEED_PROGS); do \
		PFSHIM_OUT=$(FUZZ_DIR)/seedruns/$$(basename $$p) PFSHIM_QUIET=1 PFSHIM_POLICY='populate if site=heap_site' \
		LD_PRELOAD=$(abspath $(LIB)) $$p >/dev/null 2>&1 || true; \
		PFSHIM_OUT=$(FUZZ_DIR)/seedruns/exact-$$(basename $$p) PFSHIM_QUIET=1 PFSHIM_MODE=exact \
		LD_PRELOAD=$(abspath $(LIB)) $$p >/dev/null 2>&1 || true; \
	done
	@PFSHIM_OUT=$(FUZZ_DIR)/seedruns/python PFSHIM_QUIET=1 LD_PRELOAD=$(abspath $(LIB)) \
		/usr/bin/python3 tests/python/versions.py >/dev/null 2>&1 || true # PYCODE, Python frames
	@i=0; for f in $(FUZZ_DIR)/seedruns/*/*.pfslog; do \
		[ -f "$$f" ] && cp "$$f" $(FUZZ_DIR)/seeds/seed$$i.pfslog && i=$$((i+1)); \
	done; echo "  SEEDS   $$i logs in $(FUZZ_DIR)/seeds"
	@touch $@

fuzz-build: $(FUZZ_BIN) $(FUZZ_SEEDS)

# A working corpus in the build dir grows from the seeds; crashes land there too.
fuzz-run = @mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts && \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(FUZZ_BIN) -max_total_time=$(1) \
	-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds \
	2>$(FUZZ_DIR)/last.log || { tail -40 $(FUZZ_DIR)/last.log; exit 1; }; \
	grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_DIR)/last.log | sed 's/^/  FUZZ    /'

fuzz: fuzz-build $(CLI)
	$(call fuzz-run,$(FUZZ_SECONDS))
	@BUILD=$(BUILD) PFS_PY_RUNS=500 PFS_TESTS=t_python_threads_and_a_c_thread_without_the_gil \
		bash tests/run-integration.sh

fuzz-check: fuzz-build
	$(call fuzz-run,$(FUZZ_CHECK_SECONDS))

# The analyzer's unit tests built with ASan + UBSan in their own build dir.
SAN_BUILD := $(BUILD)/san
check-sanitize:
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SANITIZE=address,undefined \
		$(patsubst $(BUILD)/%,$(SAN_BUILD)/%,$(UNIT_BIN))
	@fail=0; for t in $(patsubst $(BUILD)/%,$(SAN_BUILD)/%,$(UNIT_BIN)); do \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		$$t >/dev/null 2>$(SAN_BUILD)/$$(basename $$t).err || { cat $(SAN_BUILD)/$$(basename $$t).err; fail=1; }; \
	done; [ $$fail = 0 ] && echo "  SAN     unit tests (analyzer and shim core) clean under ASan+UBSan"; exit $$fail
