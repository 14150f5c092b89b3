# Build, test and run extrainterpreters with every CPython >= 3.12 on this machine.
# Start with `make demo` or `make test`; `make help` lists the targets.
#
# Each found Python 3.X gets its own virtualenv .venv-3.X holding
# requirements-dev.txt and the package, installed (not editable) from this tree.
# The C core is rebuilt from scratch on every install: it takes seconds, and an
# installed package then never lags behind csrc/ or src/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The interpreters, newest first, one per minor version (tools/find-pythons.sh).
# FETCH: versions unpacked from Debian's packages (tools/fetch-python.sh) when this
# machine has no interpreter of its own for them. REQUIRE: versions without which
# the run fails (in CI: all four; elsewhere none, and every version found is used).
FETCH   ?= 3.14,3.15
REQUIRE ?= $(if $(CI),3.12$(,)3.13$(,)3.14$(,)3.15)
, := ,
ifneq ($(filter-out help clean demo layers,$(or $(MAKECMDGOALS),help)),)
PYTHONS  := $(shell tools/find-pythons.sh --fetch '$(FETCH)' --require '$(REQUIRE)' || echo MISSING)
ifneq ($(filter MISSING,$(PYTHONS)),)
$(error some required CPython versions were not found (see above))
endif
else
PYTHONS  := $(shell tools/find-pythons.sh 2>/dev/null)
endif
VERSIONS := $(patsubst python%,%,$(notdir $(PYTHONS)))
NEWEST   := $(firstword $(VERSIONS))
python_for = $(filter %/python$(1),$(PYTHONS))

ifeq ($(PYTHONS),)
ifneq ($(filter-out help clean layers,$(MAKECMDGOALS)),)
$(shell tools/find-pythons.sh >&2)
$(error no CPython >= 3.12 found (see above))
endif
endif

# Settings (make VAR=value): PYTEST_ARGS, ASAN_PYTEST_ARGS, ASAN_VERSION, TEST_TIMEOUT,
# TEST_JOBS, FUZZ_SECONDS, FUZZ_SECONDS_SHORT.
# Time limit of one pytest pass, so that a hang fails instead of stalling
# (SIGABRT: the fault handler prints every thread's Python stack).
TEST_TIMEOUT ?= 10m
PYTEST_ARGS ?=
# Each suite runs in two passes (tools/run-pytest.sh): the tests not marked serial in
# TEST_JOBS pytest-xdist workers, then those marked serial alone. TEST_JOBS=1: one
# pass, no xdist.
TEST_JOBS ?= 2
# Seconds of byte-level fuzzing of the decoder (tests/test_fuzz.py): the full time in
# the newest version's run and under the sanitizers, a shorter one in the other runs
# (the same C code, built for another CPython).
FUZZ_SECONDS ?= 30
FUZZ_SECONDS_SHORT ?= 10
# $(call run_pytest,VENV[,TIMEOUT[,PYTHON OPTIONS]]) PYTEST ARGS. The results go to
# VENV/junit.xml and VENV/junit-serial.xml, summed up by tools/junit_counts.py.
run_pytest = tools/run-pytest.sh $(or $(2),$(TEST_TIMEOUT)) $(TEST_JOBS) $(1) $(3) --
junit = $(1)/junit.xml $(1)/junit-serial.xml
counts = $(firstword $(PYTHONS)) tools/junit_counts.py

# The sanitizer run uses the newest Python only (.venv-asan-3.X; another one
# with ASAN_VERSION=3.12). Tests marked slow are left out by default;
# ASAN_PYTEST_ARGS= runs them all.
ASAN_VERSION ?= $(NEWEST)
ASAN_VENV := .venv-asan-$(ASAN_VERSION)
ASAN_PYTEST_ARGS ?= -m "not slow"

# $(call install,VENV[,ENV]): build the C core from scratch with the build
# switches ENV (see setup.py) and install the package into VENV. Each venv
# builds in its own VENV/build (set through DIST_EXTRA_CONFIG), never in ./build.
install = { rm -rf $(1)/build && mkdir $(1)/build && \
	printf '[build]\nbuild_base = %s\n[egg_info]\negg_base = %s\n' $(CURDIR)/$(1)/build $(CURDIR)/$(1)/build > $(1)/build.cfg && \
	DIST_EXTRA_CONFIG=$(1)/build.cfg $(2) \
	$(1)/bin/python -m pip install -q --no-build-isolation --no-deps --force-reinstall . ; }

# $(call install_user,VENV): install the package as a user does (pip builds it in an
# isolated environment, with its run-time dependencies only), building in VENV/build.
install_user = { rm -rf $(1)/build && mkdir $(1)/build && \
	printf '[build]\nbuild_base = %s\n[egg_info]\negg_base = %s\n' $(CURDIR)/$(1)/build $(CURDIR)/$(1)/build > $(1)/build.cfg && \
	DIST_EXTRA_CONFIG=$(CURDIR)/$(1)/build.cfg $(1)/bin/python -m pip install -q --force-reinstall . ; }

help:  ## list the targets
	@grep -E '^[a-z -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12
	echo "Pythons found: $(or $(PYTHONS),none)"

# A venv with the development requirements for Python $*; made again when they
# or the base interpreter change.
define make_venv
	$(if $(call python_for,$*),,$(error no Python $* among: $(PYTHONS)))
	rm -rf $(@D)
	$(call python_for,$*) -m venv $(@D)
	$(@D)/bin/python -m pip install -q -r requirements-dev.txt
	touch $@
endef
.SECONDEXPANSION:
.venv-%/.deps: requirements-dev.txt $$(call python_for,$$*)
	$(make_venv)
.venv-asan-%/.deps: requirements-dev.txt $$(call python_for,$$*)
	$(make_venv)

venv build: $(foreach v,$(VERSIONS),.venv-$v/.deps)  ## venv per Python + build and install the package
	for v in $(VERSIONS); do
		echo "== Python $$v: build and install into .venv-$$v"
		$(call install,.venv-$$v)
	done

# pytest runs with CPython's debug allocator: a block freed by the wrong interpreter's
# allocator (each subinterpreter has its own) fails loudly there. Not on 3.12, whose
# own races between subinterpreters running in parallel (in the interpreter itself,
# not in this library) make that allocator abort now and then.
test: $(foreach v,$(VERSIONS),.venv-$v/.deps)  ## layers, then strict build + pytest + stubtest on every Python, then test-asan, test-debug and test-release
	@summary=(); failed=0
	if $(MAKE) --no-print-directory layers; then summary+=("PASS  C core layers (tools/csrc_layers.py)")
	else summary+=("FAIL  C core layers: circles or misplaced declarations (see above)"); failed=1; fi
	for v in $(VERSIONS); do
		echo "== Python $$v: build (XI_WERROR=1) and pytest"
		rm -f $(call junit,.venv-$$v)
		if ! $(call install,.venv-$$v,XI_WERROR=1); then
			summary+=("FAIL  Python $$v: build failed"); failed=1; continue
		fi
		malloc=pymalloc_debug; [[ $$v == 3.12 ]] && malloc=pymalloc
		fuzz=$(FUZZ_SECONDS_SHORT); [[ $$v == $(NEWEST) ]] && fuzz=$(FUZZ_SECONDS)
		rc=0; PYTHONMALLOC=$$malloc XI_FUZZ_SECONDS=$$fuzz $(call run_pytest,.venv-$$v) $(PYTEST_ARGS) || rc=$$?
		n=$$($(counts) $(call junit,.venv-$$v))
		case $$rc in
			0) summary+=("PASS  Python $$v: $$n") ;;
			124) summary+=("FAIL  Python $$v: timed out after $(TEST_TIMEOUT); $$n"); failed=1 ;;
			*) summary+=("FAIL  Python $$v: pytest exit status $$rc; $$n"); failed=1 ;;
		esac
		if $(MAKE) --no-print-directory typecheck-$$v; then summary+=("PASS  Python $$v: stubtest")
		else summary+=("FAIL  Python $$v: stubtest (see above)"); failed=1; fi
		if [[ $$v != 3.12 && $$v != 3.13 ]]; then
			echo "== Python $$v: CPython's own concurrent.interpreters tests, with this library in its place"
			rc=0; $(MAKE) --no-print-directory stdlib-suite-$$v || rc=$$?
			if ((rc)); then summary+=("FAIL  Python $$v: CPython's interpreter tests (see above)"); failed=1
			else summary+=("PASS  Python $$v: CPython's interpreter tests, $$(tail -n 1 .venv-$$v/stdlib-suite.txt)"); fi
		fi
		if [[ $$v == $(NEWEST) && $$v != 3.12 && $$v != 3.13 ]]; then
			echo "== Python $$v: CPython's interpreter tests, this library in the main interpreter only"
			rc=0; $(MAKE) --no-print-directory stdlib-suite-main-only-$$v || rc=$$?
			if ((rc)); then summary+=("FAIL  Python $$v: CPython's interpreter tests, main interpreter only (see above)"); failed=1
			else summary+=("PASS  Python $$v: CPython's interpreter tests, main interpreter only, $$(tail -n 1 .venv-$$v/stdlib-suite-main-only.txt)"); fi
		fi
		if [[ $$v == $(NEWEST) ]]; then
			echo "== Python $$v: joblib's Parallel tests with the backend \"interpreters\""
			rc=0; $(MAKE) --no-print-directory joblib-suite-$$v || rc=$$?
			if ((rc)); then summary+=("FAIL  Python $$v: joblib's Parallel tests (see above)"); failed=1
			else summary+=("PASS  Python $$v: joblib's Parallel tests, $$(tail -n 1 .venv-$$v/joblib-suite.txt)"); fi
		fi
	done
	if $(MAKE) --no-print-directory test-asan; then
		summary+=("PASS  Python $(ASAN_VERSION) ASan+UBSan: $$($(counts) $(call junit,$(ASAN_VENV)))")
	else
		summary+=("FAIL  Python $(ASAN_VERSION) ASan+UBSan: see test-asan above; $$($(counts) $(call junit,$(ASAN_VENV)))"); failed=1
	fi
	if $(MAKE) --no-print-directory test-debug; then
		summary+=("PASS  Python $(DEBUG_VERSION) debug build -X dev: $$($(counts) $(call junit,$(DEBUG_VENV)))")
	else
		summary+=("FAIL  Python $(DEBUG_VERSION) debug build -X dev: see test-debug above; $$($(counts) $(call junit,$(DEBUG_VENV)))"); failed=1
	fi
	if [[ -n "$(RELEASE_VERSION)" ]]; then
		if $(MAKE) --no-print-directory test-release; then
			summary+=("PASS  Python $$(cat $(RELEASE_VENV)/version) (Debian): $$($(counts) $(call junit,$(RELEASE_VENV)))")
		else
			summary+=("FAIL  Python $(RELEASE_VERSION) (Debian): see test-release above; $$($(counts) $(call junit,$(RELEASE_VENV)))"); failed=1
		fi
	fi
	echo "== make test summary"
	printf '%s\n' "$${summary[@]}"
	echo "total: $$($(counts) $(foreach v,$(VERSIONS) asan-$(ASAN_VERSION) debug-$(DEBUG_VERSION) $(if $(RELEASE_VERSION),$(RELEASE_VERSION)-debian),$(call junit,.venv-$v)))"
	exit $$failed

# The include and call graph of csrc/: fails on a circle between its files (a .c and its
# .h are one unit) and on a function declared in one file's header and defined in
# another; prints the layers bottom-up (docs/design.md shows the same stack).
layers:  ## check that the C core's files form layers (tools/csrc_layers.py)
	@echo "== C core layers"
	python3 tools/csrc_layers.py csrc

# The C core built with -fsanitize=address,undefined (XI_SANITIZE=1) and run
# under an uninstrumented CPython: the sanitizer runtimes must be preloaded,
# and PYTHONMALLOC=malloc lets ASan see Python's allocations. Leak checks are
# off (CPython keeps memory at exit by design). Every report is fatal, and is
# also written to a log file (UBSan's through tools/asan_sitecustomize.py), so
# a report from any process, even one whose failure a test ignores, fails the run.
test-asan: $(ASAN_VENV)/.deps  ## pytest with ASan+UBSan (newest Python)
	@rm -f $(call junit,$(ASAN_VENV))
	libasan=$$(gcc -print-file-name=libasan.so); libubsan=$$(gcc -print-file-name=libubsan.so)
	[[ $$libasan == /* && $$libubsan == /* ]] || { echo "test-asan: gcc has no libasan.so/libubsan.so (Debian: apt-get install libasan8 libubsan1)" >&2; exit 1; }
	echo "== Python $(ASAN_VERSION): build (XI_SANITIZE=1) and pytest under ASan+UBSan"
	$(call install,$(ASAN_VENV),XI_SANITIZE=1)
	cp tools/asan_sitecustomize.py "$$($(ASAN_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/sitecustomize.py"
	logs=$$(mktemp -d); trap 'rm -rf "$$logs"' EXIT
	status=0
	LD_PRELOAD="$$libasan $$libubsan" PYTHONMALLOC=malloc \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$$logs/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1 \
	XI_UBSAN_LIB="$$libubsan" XI_UBSAN_LOG=$$logs/ubsan \
		XI_FUZZ_SECONDS=$(FUZZ_SECONDS) $(call run_pytest,$(ASAN_VENV)) $(ASAN_PYTEST_ARGS) || status=$$?
	if compgen -G "$$logs/*" >/dev/null; then cat "$$logs"/* >&2; fi
	# a report (not a warning such as a refused huge allocation) fails the run
	if compgen -G "$$logs/*" >/dev/null && grep -qE "ERROR: AddressSanitizer|runtime error:|SUMMARY: " "$$logs"/*; then
		echo "test-asan: sanitizer reports (above)" >&2; exit 1
	fi
	if ((status == 124)); then echo "test-asan: pytest timed out after $(TEST_TIMEOUT)" >&2; exit 1; fi
	if ((status)); then echo "test-asan: pytest exit status $$status" >&2; exit 1; fi
	echo "test-asan: no sanitizer report"

# mypy's stubtest: the type stubs (src/extrainterpreters/*.pyi) against the package
# installed in .venv-3.X, C core included (its text signatures). It runs in the venv's
# folder, so that it imports the installed package and leaves its cache there.
typecheck: $(foreach v,$(VERSIONS),.venv-$v/.deps)  ## build, then stubtest on every Python
	for v in $(VERSIONS); do
		$(call install,.venv-$$v)
		$(MAKE) --no-print-directory typecheck-$$v
	done

typecheck-%: .venv-%/.deps  ## stubtest on the package already installed in .venv-3.X
	@echo "== Python $*: stubtest"
	cd .venv-$* && bin/python -m mypy.stubtest --mypy-config-file $(CURDIR)/pyproject.toml extrainterpreters

# CPython's own tests of concurrent.interpreters and InterpreterPoolExecutor (3.14+),
# with this library in place of the standard modules (tests/stdlib_suite). Its Lib/test
# comes with the interpreter or from Debian's package (tools/fetch-python.sh --testsuite).
stdlib-suite-%: .venv-%/.deps  ## CPython's interpreter tests with this library in place (3.14+)
	@tests=$$(.venv-$*/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
	if [[ ! -d $$tests/test/test_interpreters ]]; then
		py=$$(tools/fetch-python.sh --testsuite $*); tests=$$(dirname "$$(dirname "$$py")")/lib/python$*
	fi
	XI_STDLIB_TESTS=$$tests timeout --signal=ABRT --kill-after=30s $(TEST_TIMEOUT) \
		.venv-$*/bin/python tests/stdlib_suite/run.py | tee .venv-$*/stdlib-suite.log
	grep -E '^(test_interpreters|executor):' .venv-$*/stdlib-suite.log | paste -sd ';' > .venv-$*/stdlib-suite.txt

# The same tests with the library in place in the main interpreter only: the code run in
# subinterpreters uses the standard library's module, on this library's interpreters and
# queues (run.py --main-only; test_api and test_queues, about 20 s).
stdlib-suite-main-only-%: .venv-%/.deps  ## the same, library in the main interpreter only (3.14+)
	@tests=$$(.venv-$*/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
	if [[ ! -d $$tests/test/test_interpreters ]]; then
		py=$$(tools/fetch-python.sh --testsuite $*); tests=$$(dirname "$$(dirname "$$py")")/lib/python$*
	fi
	XI_STDLIB_TESTS=$$tests timeout --signal=ABRT --kill-after=30s $(TEST_TIMEOUT) \
		.venv-$*/bin/python tests/stdlib_suite/run.py --main-only | tee .venv-$*/stdlib-suite-main-only.log
	grep -E '^test_interpreters:' .venv-$*/stdlib-suite-main-only.log > .venv-$*/stdlib-suite-main-only.txt

# joblib's own tests of Parallel (joblib/test/test_parallel.py, shipped with joblib) with
# the backend "interpreters" among those it tests (tests/joblib_suite).
joblib-suite-%: .venv-%/.deps  ## joblib's Parallel tests with the backend "interpreters"
	@timeout --signal=ABRT --kill-after=30s $(TEST_TIMEOUT) \
		.venv-$*/bin/python tests/joblib_suite/run.py | tee .venv-$*/joblib-suite.log
	grep -E '^joblib:' .venv-$*/joblib-suite.log | tail -n 1 > .venv-$*/joblib-suite.txt

# The suite on a debug build of CPython (Py_DEBUG: reference counts, GIL use and
# memory checks) in development mode (-X dev), with the C core built with its own
# assertions on (XI_DEBUG=1). python3.Xd from PATH, else Debian's (tools/fetch-python.sh).
DEBUG_VERSION ?= 3.15
DEBUG_VENV := .venv-debug-$(DEBUG_VERSION)
# (the tests marked slow run in the four versions' own runs)
DEBUG_PYTEST_ARGS ?= -m "not slow"
DEBUG_TIMEOUT ?= 25m
$(DEBUG_VENV)/.deps: requirements-dev.txt
	py=$$(command -v python$(DEBUG_VERSION)d || tools/fetch-python.sh --debug $(DEBUG_VERSION))
	rm -rf $(@D)
	$$py -m venv $(@D)
	PYTHONWARNINGS=ignore $(@D)/bin/python -m pip install -q -r requirements-dev.txt
	touch $@

test-debug: $(DEBUG_VENV)/.deps  ## pytest on a debug build of CPython with -X dev
	@rm -f $(call junit,$(DEBUG_VENV))
	echo "== Python $(DEBUG_VERSION) debug build: build (XI_WERROR=1 XI_DEBUG=1) and pytest -X dev"
	$(call install,$(DEBUG_VENV),XI_WERROR=1 XI_DEBUG=1)
	status=0
	XI_FUZZ_SECONDS=$(FUZZ_SECONDS_SHORT) $(call run_pytest,$(DEBUG_VENV),$(DEBUG_TIMEOUT),-X dev) $(DEBUG_PYTEST_ARGS) || status=$$?
	if ((status == 124)); then echo "test-debug: pytest timed out after $(DEBUG_TIMEOUT)" >&2; exit 1; fi
	if ((status)); then echo "test-debug: pytest exit status $$status" >&2; exit 1; fi

# The suite on Debian's build of the newest patch release of a minor version
# (tools/fetch-python.sh), beside the interpreter found for it above: users run the
# latest patch releases, and CPython fixes (or keeps) its defects in them. Empty
# RELEASE_VERSION= skips it.
RELEASE_VERSION ?= 3.13
# (the tests marked slow run in the four versions' own runs)
RELEASE_PYTEST_ARGS ?= -m "not slow"
RELEASE_VENV := .venv-$(RELEASE_VERSION)-debian
$(RELEASE_VENV)/.deps: requirements-dev.txt
	py=$$(tools/fetch-python.sh $(RELEASE_VERSION))
	rm -rf $(@D)
	$$py -m venv $(@D)
	$(@D)/bin/python -m pip install -q -r requirements-dev.txt
	$(@D)/bin/python -c 'import platform; print(platform.python_version())' > $(@D)/version
	touch $@

test-release: $(RELEASE_VENV)/.deps  ## pytest on Debian's newest 3.X patch release (RELEASE_VERSION)
	@rm -f $(call junit,$(RELEASE_VENV))
	echo "== Python $$(cat $(RELEASE_VENV)/version) (Debian): build (XI_WERROR=1) and pytest"
	$(call install,$(RELEASE_VENV),XI_WERROR=1)
	PYTHONMALLOC=pymalloc_debug XI_FUZZ_SECONDS=$(FUZZ_SECONDS_SHORT) $(call run_pytest,$(RELEASE_VENV)) $(RELEASE_PYTEST_ARGS)

# The demo's venv holds the package and what it needs at run time, nothing else:
# pip builds and installs it as a user's `pip install .` does. It uses the newest
# Python found, and fetches Debian's 3.15 only when none is found.
DEMO_VENV := .venv-demo
demo: examples/demo.py  ## install the package alone into .venv-demo and run examples/demo.py
	@py=$$(tools/find-pythons.sh 2>/dev/null | head -n 1) || true
	if [[ -z $$py ]]; then
		echo "== no CPython >= 3.12 found here: fetching Debian's 3.15 (tools/fetch-python.sh)"
		py=$$(tools/find-pythons.sh --fetch 3.15 | head -n 1)
	fi
	if [[ ! -x $(DEMO_VENV)/bin/python || "$$(cat $(DEMO_VENV)/base 2>/dev/null)" != "$$py" ]]; then
		rm -rf $(DEMO_VENV)
		$$py -m venv $(DEMO_VENV)
		echo "$$py" > $(DEMO_VENV)/base
	fi
	echo "== Python $$($$py -c 'import platform; print(platform.python_version())'): pip install . into $(DEMO_VENV)"
	$(call install_user,$(DEMO_VENV))
	$(DEMO_VENV)/bin/python examples/demo.py

# `make bench`: benchmarks/report.py on one Python, writing docs/benchmarks.md and its
# charts (docs/benchmarks/*.png). BENCH_PYTHON defaults to the newest 3.14+ found (the
# stdlib's concurrent.interpreters and InterpreterPoolExecutor are baselines there),
# else the newest; matplotlib (requirements-bench.txt) goes into that venv only here.
# BENCH_ARGS go to report.py (--quick, --only ..., --widths ...), e.g.
# `make bench BENCH_PYTHON=3.13 BENCH_ARGS=--quick`.
BENCH_PYTHON ?= $(firstword $(filter-out 3.12 3.13,$(VERSIONS)) $(NEWEST))
BENCH_ARGS ?=
bench: benchmarks/report.py requirements-bench.txt .venv-$(BENCH_PYTHON)/.deps  ## docs/benchmarks.md + charts (one Python)
	@echo "== Python $(BENCH_PYTHON): build, install requirements-bench.txt, run benchmarks/report.py"
	$(call install,.venv-$(BENCH_PYTHON))
	PYTHONWARNINGS=ignore .venv-$(BENCH_PYTHON)/bin/python -m pip install -q -r requirements-bench.txt
	.venv-$(BENCH_PYTHON)/bin/python benchmarks/report.py $(BENCH_ARGS)

# The tables of every benchmark on every Python (no document, no charts).
BENCH_ALL_ARGS ?=
bench-all: benchmarks/run_all.py $(foreach v,$(VERSIONS),.venv-$v/.deps)  ## benchmarks/run_all.py on every Python
	for v in $(VERSIONS); do
		echo "===== Python $$v"
		$(call install,.venv-$$v)
		.venv-$$v/bin/python benchmarks/run_all.py $(BENCH_ALL_ARGS)
	done

examples/demo.py benchmarks/run_all.py:
	@echo "$@ is missing: it is not written yet" >&2; exit 1

clean:  ## remove venvs and build products
	rm -rf .venv-3.* .venv-asan-3.* .venv-debug-3.* build src/*.egg-info .pytest_cache .hypothesis
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help venv build test layers typecheck test-asan test-debug test-release demo bench bench-all clean
