# spikeforge quick start: `make flow` and `make test` install what they need on first use.
# Run with the system python3 (no virtualenv needs to be active); override with PYTHON=python3.11.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# -n auto uses every core (2 in CI); slow tests (full regressions, long training) are opt-in.
PYTEST := $(PY) -m pytest -n auto -q

.DEFAULT_GOAL := help
.PHONY: help venv flow test test-all doctor lint clean distclean

help:
	@echo "make flow      train -> quantize -> generate -> verify -> estimate on the default (out/flow)"
	@echo "make test      fast test suite (not slow), in parallel"
	@echo "make test-all  every test, slow ones included"
	@echo "make doctor    which Verilator/Yosys/nextpnr/cocotb spikeforge uses, and fixes"
	@echo "make lint      ruff check"
	@echo "make clean     remove build outputs; make distclean also removes $(VENV)"

# Reinstall whenever the dependency list or the pins change; the stamp makes it install once otherwise.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "spikeforge needs Python >= 3.11 ($(PYTHON) is older); fix: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

flow: $(STAMP)
	$(VENV)/bin/spikeforge flow

# pytest exits 5 when it collected no test; make treats any non-zero exit as a failure.
test: $(STAMP)
	$(PYTEST) -m "not slow"

test-all: $(STAMP)
	$(PYTEST)

doctor: $(STAMP)
	$(VENV)/bin/spikeforge doctor

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf out build sim_build .pytest_cache .hypothesis .ruff_cache

distclean: clean
	rm -rf $(VENV) *.egg-info
