# gatehouse: a thin front door over Meson + ninja.
#   make            build build/gatehouse
#   make run        install deps, build, start gatehouse + demo app on :8080
#   make test       install deps, build, unit + integration tests
#   make SANITIZE=1 ...   ASan + UBSan build (in build-asan/)
#   make fuzz       libFuzzer targets, each run FUZZ_TIME seconds
#   make bench      benchmarks against nginx and HAProxy

CC ?= cc
PYTHON := /usr/bin/python3
ifeq ($(FUZZ),1)
  # libFuzzer targets (clang), instrumented library, ASan + UBSan
  BUILD := build-fuzz
  CC := clang
  MESON_OPTS := -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Ddebug_asserts=true
else ifeq ($(SANITIZE),1)
  BUILD := build-asan
  MESON_OPTS := -Db_sanitize=address,undefined -Db_lundef=false -Ddebug_asserts=true
  # any report stops the process with SIGABRT (the test harness sees the
  # signal and the report on stderr); leaks are checked at every exit,
  # workers included
  export ASAN_OPTIONS ?= halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:print_summary=1
  export UBSAN_OPTIONS ?= halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1
else
  BUILD := build
  MESON_OPTS :=
endif
FUZZ_TIME ?= 60

.PHONY: all deps run test unit integration fuzz bench clean format

all: $(BUILD)/gatehouse

deps:
	@scripts/deps.sh build

# re-run meson when a source file is added or removed
$(BUILD)/.srclist: FORCE
	@mkdir -p $(BUILD)
	@{ scripts/srclist.sh lib; scripts/srclist.sh unit; scripts/srclist.sh fuzz; } > $(BUILD)/.srclist.new
	@cmp -s $(BUILD)/.srclist.new $(BUILD)/.srclist || mv $(BUILD)/.srclist.new $(BUILD)/.srclist
	@rm -f $(BUILD)/.srclist.new

$(BUILD)/build.ninja: $(BUILD)/.srclist meson.build meson_options.txt
	@if [ -f $(BUILD)/build.ninja ]; then meson setup --reconfigure $(BUILD) $(MESON_OPTS) >$(BUILD)/.meson.out 2>&1; \
	 else CC=$(CC) meson setup $(BUILD) $(MESON_OPTS) >$(BUILD)/.meson.out 2>&1; fi \
	 || { cat $(BUILD)/.meson.out; exit 1; }
	@touch $(BUILD)/build.ninja

$(BUILD)/gatehouse: $(BUILD)/build.ninja FORCE
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(BUILD)/gatehouse

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

unit: $(BUILD)/gatehouse
	@meson test -C $(BUILD) --suite unit --print-errorlogs

integration: $(BUILD)/gatehouse
	@GATEHOUSE_BIN=$(abspath $(BUILD)/gatehouse) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# the same source-list tracking as the other builds, so that a new file
# (or a new fuzz_*.c) reconfigures build-fuzz too
fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory FUZZ=1 all
	@scripts/fuzz.sh build-fuzz $(FUZZ_TIME)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

FORCE:
