# pfshim: page-fault profiler.  `make`, `make demo`, `make check`, `make install`.
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
SANITIZE ?=
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
NPROC := $(shell nproc 2>/dev/null || echo 2)

# Warnings are errors in `make check` and CI (WERROR=1), not in a user's plain `make`:
# a newer compiler's new warning must not stop a build.  Every compile keeps its
# warnings in OBJ.warn, and `make check` fails on any, however old the object.
WERROR ?=
WARN := -Wall -Wextra -Wno-missing-field-initializers $(if $(filter 1,$(WERROR)),-Werror)
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 -Iinclude -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP

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
# The library's layout (issue 21: each fresh page is a page fault at every process start).
# Its tables over 4 KiB go to .lbss, after the small variables, which then share three pages
# instead of lying between the tables on fourteen.  Not in the sanitized build of the core
# the unit tests link.  Only where the compiler has it (x86-64; clang before 17 does not).
PRELOAD_LAYOUT := $(shell $(CC) -mcmodel=medium -mlarge-data-threshold=4096 -fPIC -x c -c -o /dev/null /dev/null \
	2>/dev/null && echo -mcmodel=medium -mlarge-data-threshold=4096)
PRELOAD_LIBS := -ldl -lpthread -liberty
# libunwind: linked into the shim from Debian's source, its names hidden (tools/libunwind.sh says
# why; the shared library where it cannot be built).  The unit tests link the shared one.
UNWIND_LINK := $(BUILD)/unwind/link

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
PRELOAD_TEST_LIB_SRC := $(wildcard tests/preload/lib/*.c)
PRELOAD_TEST_LIB := $(PRELOAD_TEST_LIB_SRC:tests/preload/lib/%.c=$(BUILD)/tests/preload/lib%.so)
PRELOAD_TEST_LIB_CXX_SRC := $(wildcard tests/preload/lib/*.cpp)
PRELOAD_TEST_LIB += $(PRELOAD_TEST_LIB_CXX_SRC:tests/preload/lib/%.cpp=$(BUILD)/tests/preload/lib%.so)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
TEST_PROGS := $(PRELOAD_TEST_BIN) $(PRELOAD_TEST_LIB) $(EXAMPLE_BIN)

LIB := $(BUILD)/libpfshim.so
CLI := $(BUILD)/pfshim

# Flags in a file, rewritten only when they change: objects built with other
# CFLAGS/CPPFLAGS/LDFLAGS are rebuilt (WERROR is left out: it changes no object).
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(filter-out -Werror,$(ALL_CFLAGS)) $(LDFLAGS) $(SAN_FLAGS) $(PRELOAD_LAYOUT)
ifneq ($(filter-out clean deps deps-test deps-bench,$(or $(MAKECMDGOALS),all)),)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = '$(FLAGS_NOW)' ] || echo '$(FLAGS_NOW)' >$(FLAGS_STAMP); })
endif

# compile CC, FLAGS: $< to $@, its warnings kept in $@.warn (and shown).
compile = mkdir -p $(@D) && { $(1) $(2) -c $< -o $@ 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc; }

.PHONY: all check unit integration smoke demo install bench clean deps deps-test deps-bench \
	test-progs warnings
all: $(LIB) $(CLI)

# Each command installs only what it needs (tools/deps.sh): the build's -dev
# packages for `make`/`make demo`, the test tools for `make check`.  As root
# they are installed; otherwise one apt-get line is printed and make stops.
DEPS_OK := $(BUILD)/.deps-build
DEPS_TEST_OK := $(BUILD)/.deps-test
DEPS_BENCH_OK := $(BUILD)/.deps-bench
$(BUILD)/.deps-%: tools/deps.sh
	@sh tools/deps.sh $*
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_OK)
deps-test: $(DEPS_TEST_OK)
deps-bench: $(DEPS_BENCH_OK)

$(BUILD)/preload/%.o: preload/%.c $(FLAGS_STAMP) | $(DEPS_OK)
	@$(if $(Q),echo '  CC      $<')
	$(Q)$(call compile,$(CC),$(PRELOAD_CFLAGS) $(PRELOAD_LAYOUT))

# -z now: the library's calls into libc are bound when it loads, once, in the first process;
# bound lazily, each forked child bound again those its parent never made (the fork handlers'),
# 18 page faults of every fork of a bash loop.
$(LIB): $(PRELOAD_OBJ) preload/exports.map $(UNWIND_LINK)
	@$(if $(Q),echo '  LD      $@')
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,--version-script=preload/exports.map -Wl,-z,nodelete -Wl,-z,now -o $@ \
		$(PRELOAD_OBJ) $$(cat $(UNWIND_LINK)) $(PRELOAD_LIBS)

$(UNWIND_LINK): tools/libunwind.sh | $(DEPS_OK)
	@CC='$(CC)' sh tools/libunwind.sh $(@D)

$(BUILD)/analyzer/%.o: analyzer/%.c $(FLAGS_STAMP) | $(DEPS_OK)
	@$(if $(Q),echo '  CC      $<')
	$(Q)$(call compile,$(CC),$(ANALYZER_CFLAGS))

# The kernel's fault-event reader is a unit of the shim's, built into the analyzer too (pfshim record's
# kevents.c); unit tests get it from the shim's core.
ANALYZER_SHARED_OBJ := $(BUILD)/analyzer/shared/pevent_ring.o
$(BUILD)/analyzer/shared/%.o: preload/%.c $(FLAGS_STAMP) | $(DEPS_OK)
	@$(if $(Q),echo '  CC      $< (for the analyzer)')
	$(Q)$(call compile,$(CC),$(ANALYZER_CFLAGS))

$(CLI): $(ANALYZER_OBJ) $(ANALYZER_SHARED_OBJ)
	@$(if $(Q),echo '  LD      $@')
	$(Q)$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $(ANALYZER_OBJ) $(ANALYZER_SHARED_OBJ) $(ANALYZER_LIBS) -lpthread

# Unit tests link the core modules of both sides directly.  With SANITIZE
# set, the shim's core is built a second time, instrumented, for them only
# (the library itself never is: it runs inside other programs).
ifneq ($(SANITIZE),)
UNIT_CORE_OBJ := $(PRELOAD_CORE_SRC:%.c=$(BUILD)/unitcore/%.o)
.SECONDARY: $(UNIT_CORE_OBJ)
$(BUILD)/unitcore/preload/%.o: preload/%.c $(FLAGS_STAMP) | $(DEPS_OK)
	@$(if $(Q),echo '  CC      $< (sanitized)')
	$(Q)$(call compile,$(CC),$(PRELOAD_CFLAGS) $(SAN_FLAGS))
else
UNIT_CORE_OBJ := $(PRELOAD_CORE_OBJ)
endif
# The core modules in one archive: each test binary links the modules it calls, not all of them
# (a third of the link's time; none of them has a constructor of its own).
UNIT_CORE_LIB := $(BUILD)/tests/core.a
$(UNIT_CORE_LIB): $(UNIT_CORE_OBJ) $(ANALYZER_CORE_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/tests/%: tests/unit/%.c $(UNIT_CORE_LIB) | $(DEPS_TEST_OK)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  TEST    $@')
	$(Q)$(CC) $(ANALYZER_CFLAGS) -Ipreload -Ianalyzer $(LDFLAGS) -o $@ $< \
		$(UNIT_CORE_LIB) -lunwind $(PRELOAD_LIBS) $(ANALYZER_LIBS) -lcmocka 2>$@.warn; \
		rc=$$?; cat $@.warn >&2; exit $$rc

# Target programs for the integration tests and the examples: plain C,
# symbols and line tables kept so the reports can name them.  A library of
# tests/preload/lib/ is built as lib<name>.so beside them.
PROG_CFLAGS := -std=gnu11 -O1 -g -fno-inline -fno-omit-frame-pointer $(WARN) $(CPPFLAGS) -MMD -MP
$(BUILD)/tests/preload/lib%.so: tests/preload/lib/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROGLIB $@')
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $< 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc

# Built as users build theirs (-O2 -g, inlining on): C as opt_*.c, and C++.
CXX ?= g++
OPT_CFLAGS := -O2 -g -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) $(CPPFLAGS) -MMD -MP
$(BUILD)/tests/preload/opt_%: tests/preload/opt_%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) -std=gnu11 $(OPT_CFLAGS) $(LDFLAGS) -o $@ $< $(OPT_LIBS) 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc
$(BUILD)/tests/preload/opt_jemalloc $(BUILD)/tests/preload/opt_jemalloc_sites $(BUILD)/tests/preload/opt_jemalloc_early: OPT_LIBS := -ljemalloc
$(BUILD)/tests/preload/lib%.so: tests/preload/lib/%.cpp $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROGLIB $@')
	$(Q)$(CXX) -std=gnu++17 $(OPT_CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $< 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc
$(BUILD)/tests/preload/%: tests/preload/%.cpp $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CXX) -std=gnu++17 $(OPT_CFLAGS) $(LDFLAGS) -o $@ $< 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc

# atfork_early and the ctor_* and own_malloc_lock programs link their libraries (found beside them at run time).
$(BUILD)/tests/preload/atfork_early: $(BUILD)/tests/preload/libatforkearly.so
$(BUILD)/tests/preload/atfork_early: PROG_LIBS := -L$(BUILD)/tests/preload -latforkearly -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/ctor_heap: $(BUILD)/tests/preload/libctorheap.so
$(BUILD)/tests/preload/ctor_heap: PROG_LIBS := -L$(BUILD)/tests/preload -lctorheap -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/ctor_gettext: $(BUILD)/tests/preload/libctorgettext.so
$(BUILD)/tests/preload/ctor_gettext: PROG_LIBS := -L$(BUILD)/tests/preload -lctorgettext -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/ctor_gettext_alloc: $(BUILD)/tests/preload/libctorgettext.so $(BUILD)/tests/preload/libbumpalloc.so
$(BUILD)/tests/preload/ctor_gettext_alloc: PROG_LIBS := -L$(BUILD)/tests/preload -lctorgettext -lbumpalloc -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/own_malloc_lock: $(BUILD)/tests/preload/libctorheap.so
$(BUILD)/tests/preload/own_malloc_lock: PROG_LIBS := -L$(BUILD)/tests/preload -lctorheap -Wl,-rpath,'$$ORIGIN' -pthread
$(BUILD)/tests/preload/ctor_early: $(BUILD)/tests/preload/libctorearly.so
$(BUILD)/tests/preload/ctor_early: PROG_LIBS := -L$(BUILD)/tests/preload -lctorearly -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/ctor_stdio_fork: $(BUILD)/tests/preload/libctorstdio.so
$(BUILD)/tests/preload/ctor_stdio_fork: PROG_LIBS := -L$(BUILD)/tests/preload -lctorstdio -Wl,-rpath,'$$ORIGIN'
$(BUILD)/tests/preload/cxx_from_c: $(BUILD)/tests/preload/libcxxthrow.so
$(BUILD)/tests/preload/cxx_from_c: PROG_LIBS := -L$(BUILD)/tests/preload -lcxxthrow -Wl,-rpath,'$$ORIGIN'

$(BUILD)/tests/preload/%: tests/preload/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) $(PROG_CFLAGS) -fno-builtin $(LDFLAGS) -o $@ $< $(PROG_LIBS) -lpthread -ldl 2>$@.warn; \
		rc=$$?; cat $@.warn >&2; exit $$rc

$(BUILD)/examples/%: examples/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) $(PROG_CFLAGS) $(LDFLAGS) -o $@ $< -lpthread 2>$@.warn; rc=$$?; cat $@.warn >&2; exit $$rc

test-progs: $(TEST_PROGS)

# Every compile's warnings, kept beside its object: none allowed in `make check`.
warnings:
	@w=$$(find $(BUILD) -name '*.warn' -size +0 2>/dev/null | sort); \
	[ -z "$$w" ] || { echo "warnings (make check treats them as errors):"; for f in $$w; do cat $$f; done; exit 1; }

# ---- the checks -------------------------------------------------------------
# `make check`: the test tools, everything built with -Werror, then each part in
# turn, all of them run whatever fails; the totals last.  Parts: `make unit`, `make
# integration`, `make check-sanitize`, `make smoke` and `make fuzz-check` (at once: the
# fuzzer takes one core, the smoke programs mostly wait).  The sanitized unit tests and the
# fuzzer are built beside the unit and integration tests at a lower priority (nice 10): the compiler
# takes the CPU the tests leave (their sleeps, their waits on children), and little else.
SUMMARY := $(BUILD)/tests/summary

unit: $(UNIT_BIN)
	@mkdir -p $(SUMMARY)
	@bash tests/lib/run-unit.sh unit $(SUMMARY)/1-unit $(UNIT_BIN)

integration: $(LIB) $(CLI) $(TEST_PROGS) | $(DEPS_TEST_OK)
	@mkdir -p $(SUMMARY)
	@BUILD=$(BUILD) PFS_SUMMARY=$(SUMMARY)/3-integration bash tests/run-integration.sh

# The smoke gauntlet (issue 24): the system's programs with --version under the shim, both modes.
smoke: $(LIB) | $(DEPS_TEST_OK)
	@mkdir -p $(SUMMARY)
	@/usr/bin/python3 tests/lib/smoke.py $(LIB) --summary $(SUMMARY)/4-smoke

# quietly LOG, MAKE-ARGS: a sub-make whose output goes to LOG, shown only when it fails
quietly = $(MAKE) --no-print-directory $(2) >$(1) 2>&1 || { cat $(1); echo "(log: $(1))"; exit 1; }

# make check ends with the time each part took ("times: ..."), its build included; libunwind, a
# dependency built from Debian's source once a build directory, comes first, as the packages do.
check: $(DEPS_TEST_OK) $(UNWIND_LINK)
	@rm -rf $(SUMMARY)
	@date +%s >$(BUILD)/.check-start
	@rc=0; t0=$$(cat $(BUILD)/.check-start); mark=$$t0; times=""; cmark=0; \
	took() { now=$$(date +%s); times >$(BUILD)/.check-cpu; \
		set -- "$$1" $$(awk 'NR == 2 { split($$1, u, /[ms]/); split($$2, s, /[ms]/); \
			printf "%d %d", u[1] * 60 + u[2], s[1] * 60 + s[2] }' $(BUILD)/.check-cpu); \
		times="$$times, $$1 $$((now - mark)) s ($$(($$2 + $$3 - cmark)) CPU-s)"; mark=$$now; \
		cmark=$$(($$2 + $$3)); cpus="user $$2 s, sys $$3 s"; }; \
	echo "  BUILD   all, unit tests, test programs, warnings as errors ($(BUILD)/check-build.log)"; \
	$(call quietly,$(BUILD)/check-build.log,-j$(NPROC) WERROR=1 all $(UNIT_BIN) $(TEST_PROGS)); \
	took build; \
	{ nice -n 10 $(MAKE) -k --no-print-directory WERROR=1 sanitize-build fuzz-build >$(BUILD)/check-build2.out 2>&1 & }; \
	bg=$$!; \
	$(MAKE) --no-print-directory warnings || rc=1; \
	$(MAKE) --no-print-directory unit || rc=1; took unit; \
	$(MAKE) --no-print-directory integration || rc=1; took integration; \
	wait $$bg || rc=1; cat $(BUILD)/check-build2.out; took "rest of the builds"; \
	$(MAKE) --no-print-directory WERROR=1 check-sanitize || rc=1; took sanitized; \
	{ $(MAKE) --no-print-directory fuzz-check >$(BUILD)/fuzz-check.out 2>&1 & }; \
	$(MAKE) --no-print-directory smoke || rc=1; \
	wait $$! || rc=1; cat $(BUILD)/fuzz-check.out; took "smoke and fuzz"; \
	echo "== make check:"; cat $(SUMMARY)/* 2>/dev/null; \
	echo "times: $$((mark - t0)) s in all$$times"; \
	echo "CPU in all: $$cpus"; \
	[ $$rc = 0 ] && echo "make check: all passed" || echo "make check: FAILED"; exit $$rc

demo: $(LIB) $(CLI) $(BUILD)/examples/storm
	@sh examples/demo.sh $(BUILD)

bench: $(LIB) $(CLI) | $(DEPS_BENCH_OK)
	@bash bench/run.sh $(BUILD)

# Real programs and growing workloads (issue 21's table): python3, sqlite3, gcc, git, threads, fork.
.PHONY: bench-real
bench-real: $(LIB) $(CLI) | $(DEPS_BENCH_OK) $(DEPS_TEST_OK)
	@bash bench/real.sh $(BUILD)

# pfshim's fault counts against the kernel's on real programs; rewrites docs/fidelity.md's figures.
.PHONY: fidelity
fidelity: $(LIB) $(CLI) | $(DEPS_TEST_OK)
	@python3 tools/fidelity.py --build $(BUILD) --doc docs/fidelity.md

# ---- install ----------------------------------------------------------------
# pfshim.pc: the installed header's include path, and where the shim and the
# analyzer are (`pkg-config --variable=preload pfshim`).
LIBDIR := $(PREFIX)/lib
DOCDIR := $(PREFIX)/share/doc/pfshim
DOCS := README.md $(wildcard docs/*.md)
VERSION = $(shell git describe --always --dirty 2>/dev/null || echo 0)
install: $(LIB) $(CLI)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/include/pfshim $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(DOCDIR)
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libpfshim.so
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/pfshim
	install -m 0644 include/pfshim/log_format.h $(DESTDIR)$(PREFIX)/include/pfshim/
	install -m 0644 docs/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 docs/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$(LIBDIR)' \
		'preload=$${libdir}/libpfshim.so' 'analyzer=$${prefix}/bin/pfshim' '' \
		'Name: pfshim' 'Description: page-fault profiler: the log format header (pfshim/log_format.h)' \
		'Version: $(VERSION)' 'Cflags: -I$${includedir}' >$(DESTDIR)$(LIBDIR)/pkgconfig/pfshim.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/pfshim.pc

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- analyzer robustness: fuzzing and sanitizers (docs/analyzer.md) ----------
# A libFuzzer harness for the log reader (clang), run briefly by `make check`
# (FUZZ_CHECK_SECONDS) and for FUZZ_SECONDS by `make fuzz`, on a seed corpus
# of real logs written at build time by example programs under the shim.
# `make fuzz` also runs the full mutation sweep of real logs (tests/lib/mutate_logs.py);
# `make check` runs a sample of it.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_CHECK_SECONDS ?= 10
FUZZ_MUTANTS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_BIN := $(FUZZ_DIR)/fuzz_logread
FUZZ_AN_SRC := analyzer/an_common.c analyzer/blocks.c analyzer/logdir.c analyzer/logread.c analyzer/model.c analyzer/model_load.c analyzer/model_finish.c \
	analyzer/storms.c analyzer/faults.c
FUZZ_AN_OBJ := $(FUZZ_AN_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_CFLAGS := -std=gnu11 -Iinclude -D_GNU_SOURCE $(WARN) $(CPPFLAGS) -g -O1 -MMD -MP \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_SEED_PROGS := $(BUILD)/examples/storm $(BUILD)/tests/preload/touch_threads \
	$(BUILD)/tests/preload/touch_fork $(BUILD)/tests/preload/three_sites \
	$(BUILD)/tests/preload/exec_chain $(BUILD)/tests/preload/policy_storm
FUZZ_SEEDS := $(FUZZ_DIR)/seeds/.done

.PHONY: fuzz fuzz-build fuzz-check check-sanitize sanitize-build
$(FUZZ_DIR)/%.o: %.c $(FLAGS_STAMP) | $(DEPS_TEST_OK)
	@$(if $(Q),echo '  FUZZCC  $<')
	$(Q)$(call compile,$(FUZZ_CC),$(FUZZ_CFLAGS))

$(FUZZ_BIN): $(FUZZ_DIR)/tests/fuzz/fuzz_logread.o $(FUZZ_AN_OBJ)
	@$(if $(Q),echo '  FUZZLD  $@')
	$(Q)$(FUZZ_CC) $(LDFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ -lm

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

fuzz-build:
	@mkdir -p $(FUZZ_DIR)
	@echo "  BUILD   the fuzzer and its seeds ($(FUZZ_DIR).log)"
	@$(call quietly,$(FUZZ_DIR).log,-j$(NPROC) $(FUZZ_BIN) $(FUZZ_SEEDS))

# A working corpus in the build dir grows from the seeds; crashes land there too.
# fuzz-run SECONDS: libFuzzer for so long; its totals in one line, also in the check's summary.
fuzz-run = @mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts $(SUMMARY) && \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(FUZZ_BIN) -max_total_time=$(1) \
	-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds \
	2>$(FUZZ_DIR)/last.log || { tail -40 $(FUZZ_DIR)/last.log; echo "fuzz: FAILED (crash input in $(FUZZ_DIR)/artifacts)" \
	>$(SUMMARY)/5-fuzz; exit 1; }; \
	echo "fuzz: $$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/last.log) inputs in $(1) s, no crash" \
	| tee $(SUMMARY)/5-fuzz

fuzz: fuzz-build $(CLI) $(BUILD)/examples/storm
	$(call fuzz-run,$(FUZZ_SECONDS))
	@BUILD=$(BUILD) PFS_MUTANTS=$(FUZZ_MUTANTS) PFS_TESTS=analyzer_survives_mutated_logs \
		bash tests/run-integration.sh
	@BUILD=$(BUILD) PFS_PY_RUNS=500 PFS_TESTS=python_threads_and_a_c_thread_without_the_gil \
		bash tests/run-integration.sh
	@BUILD=$(BUILD) PFS_SOAK=1 PFS_TESTS="$(SOAK_TESTS)" bash tests/run-integration.sh

# The stress test `make check` runs a sample of (tests/run-integration.sh, soak); `make fuzz` whole.
SOAK_TESTS := log_memory_bounded

fuzz-check: fuzz-build
	$(call fuzz-run,$(FUZZ_CHECK_SECONDS))

# The unit tests (analyzer and shim core) built with ASan + UBSan in their own build dir.
SAN_BUILD := $(BUILD)/san
# (a variable: a comma in $(call ...)'s arguments would split them)
SAN_KINDS := address,undefined
sanitize-build:
	@mkdir -p $(SAN_BUILD)
	@echo "  BUILD   unit tests with ASan+UBSan ($(SAN_BUILD).log)"
	@$(call quietly,$(SAN_BUILD).log,-j$(NPROC) BUILD=$(SAN_BUILD) SANITIZE=$(SAN_KINDS) CFLAGS="-O0 -g" \
		$(patsubst $(BUILD)/%,$(SAN_BUILD)/%,$(UNIT_BIN)))

check-sanitize: sanitize-build
	@mkdir -p $(SUMMARY)
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		bash tests/lib/run-unit.sh "unit (ASan+UBSan)" $(SUMMARY)/2-unit-sanitized \
		$(patsubst $(BUILD)/%,$(SAN_BUILD)/%,$(UNIT_BIN))
