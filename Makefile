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
PRELOAD_LIBS := -lunwind -ldl -lpthread

ANALYZER_SRC := $(wildcard analyzer/*.c)
ANALYZER_CORE_SRC := $(filter-out analyzer/main.c,$(ANALYZER_SRC))
ANALYZER_OBJ := $(ANALYZER_SRC:%.c=$(BUILD)/%.o)
ANALYZER_CORE_OBJ := $(ANALYZER_CORE_SRC:%.c=$(BUILD)/%.o)
ANALYZER_CFLAGS := $(ALL_CFLAGS) $(SAN_FLAGS)
ANALYZER_LIBS := -ldw -lelf -lz -lm

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PRELOAD_TEST_SRC := $(wildcard tests/preload/*.c)
PRELOAD_TEST_BIN := $(PRELOAD_TEST_SRC:tests/preload/%.c=$(BUILD)/tests/preload/%)
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

# Unit tests link the core modules of both sides directly.
$(BUILD)/tests/%: tests/unit/%.c $(PRELOAD_CORE_OBJ) $(ANALYZER_CORE_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  TEST    $@')
	$(Q)$(CC) $(ANALYZER_CFLAGS) -Ipreload -Ianalyzer -o $@ $< \
		$(PRELOAD_CORE_OBJ) $(ANALYZER_CORE_OBJ) $(PRELOAD_LIBS) $(ANALYZER_LIBS) -lcmocka

# Target programs for the integration tests and the examples: plain C,
# symbols and line tables kept so the reports can name them.
$(BUILD)/tests/preload/%: tests/preload/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo '  PROG    $@')
	$(Q)$(CC) -std=gnu11 -O1 -g -fno-inline -fno-builtin -fno-omit-frame-pointer -Wall -Wextra -Werror -o $@ $< -lpthread -ldl

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

demo: $(LIB) $(CLI) $(BUILD)/examples/storm
	@sh examples/demo.sh $(BUILD)

bench: $(LIB) $(CLI)
	@sh bench/run.sh $(BUILD)

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
