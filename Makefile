# The two commands: `make demo` and `make test`. Each sets itself up from a fresh clone.
# `make test` runs every test (and prints the 15 slowest); `make test-fast` leaves out the ones
# marked slow (they start processes: the command line as a subprocess, torchrun, signals).
# TORCH pins the CPU wheel this project is developed with; override it elsewhere, e.g.
#   make test TORCH='torch>=2.1,<3'
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradfit-installed

.PHONY: demo test test-fast lint layers typecheck bench clean test-r

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gradfit demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The import-linter contracts in pyproject.toml: imports point down the layers only.
layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy src

test: lint layers typecheck
	$(BIN)/python -m pytest --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_solvers.py

# `make test-r`: gradfit from R through reticulate (r/; not part of `make test`). Installs R and
# reticulate with apt-get where it can (r/setup-r.sh), builds the Python R uses in r/.venv
# (torch as above, NumPy < 2 for Debian's reticulate 1.28: r/requirements-r.txt; the main .venv
# keeps its NumPy 2), and runs r/tests/test_gradfit.R against it.
R_VENV := r/.venv
R_STAMP := $(R_VENV)/.gradfit-installed
R_PIP := $(R_VENV)/bin/python -m pip install -qq --disable-pip-version-check

$(R_STAMP): pyproject.toml r/requirements-r.txt Makefile
	@echo "test-r: building $(R_VENV), the Python that R uses (NumPy < 2, $(TORCH), gradfit -e) ..."
	@test -x $(R_VENV)/bin/python || $(PYTHON) -m venv $(R_VENV)
	@$(R_PIP) "$(TORCH)" -r r/requirements-r.txt
	@$(R_PIP) -r r/requirements-r.txt -e .
	@touch $(R_STAMP)

test-r:
	@sh r/setup-r.sh
	@$(MAKE) --no-print-directory -s $(R_STAMP)
	@RETICULATE_PYTHON="$(CURDIR)/$(R_VENV)/bin/python" Rscript r/tests/test_gradfit.R

clean:
	rm -rf $(VENV) $(R_VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
