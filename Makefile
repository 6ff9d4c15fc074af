# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/lock-py311.txt
TORCH_LOCK := requirements/torch-py311.txt
STAMP := $(VENV)/.switch_mtf_installed
PYTEST_ARGS ?=

.PHONY: setup setup-torch test test-all demo distill-demo bench bench-quick clean-venv

setup: $(STAMP)

# Re-runs only when the lock or setup.py change; otherwise `make setup` is a
# no-op. The project is installed editable and without dependencies: every
# dependency comes from the lock, and `pip check` proves the set is whole.
$(STAMP): $(LOCK) setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check pip==23.2.1
	$(BIN)/python -m pip install -q --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $@

# Optional: torch 2.1.2 (a 4.5 GB CUDA build), only for the stock
# `t5_mesh_transformer` console script; `switch_mtf_transformer` needs none.
setup-torch: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r $(LOCK) -r $(TORCH_LOCK)
	$(BIN)/python -m pip check

# One pytest process per test module, two modules at a time (tools/run_tests.py
# says why); `make test PYTEST_ARGS=-x TEST_JOBS=1` passes flags through.
TEST_MARKS ?= not slow
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python tools/run_tests.py --marks="$(TEST_MARKS)" --jobs=$(TEST_JOBS) -- $(PYTEST_ARGS)

test-all: $(STAMP)
	$(MAKE) test TEST_MARKS=""

demo: $(STAMP)
	$(BIN)/python tools/demo.py $(DEMO_ARGS)

distill-demo: $(STAMP)
	$(BIN)/python tools/distill_demo.py $(DISTILL_ARGS)

bench: $(STAMP)
	$(BIN)/python tools/bench.py $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python tools/bench.py --quick $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
