# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs the pinned CPU torch and the project, runs the main demo
#               (its figures go to build/demo)
#   make test   same set-up, then the full test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt

.PHONY: demo test lint examples docs mutation hyperimpute-env clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	# The pinned CPU build of torch first, so nothing can pull a CUDA build.
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) torch
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

# The demo writes its figures to build/demo, so it never changes a tracked file.
DEMO_DIR := build/demo

demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	cd $(DEMO_DIR) && $(CURDIR)/$(BIN)/python $(CURDIR)/examples/plot_digits_density.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Mutation testing of the numerical modules ([tool.mutmut] in pyproject.toml) on the
# fast tests, niced, one torch thread per worker; then the per-module scores.
mutation: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 10 $(BIN)/mutmut run --max-children 2
	$(BIN)/python tools/mutation_scores.py

examples: $(STAMP)
	cd examples && for f in plot_*.py; do echo "== $$f"; ../$(BIN)/python $$f || exit 1; done

# The documentation site, with every gallery script executed (several minutes), niced,
# one torch thread; any Sphinx warning fails it. Open docs/_build/html/index.html.
# tests/test_docs.py builds the same site without running the gallery.
docs: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 5 $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# HyperImpute's own environment (pandas < 3) for benchmarks/bench_imputation.py, which
# runs it when the environment exists. Several GB: tensorflow, xgboost, catboost, ...
HYPERIMPUTE_VENV := .venv-hyperimpute
HYPERIMPUTE_LOCK := requirements/hyperimpute.txt

$(HYPERIMPUTE_VENV)/.installed: $(HYPERIMPUTE_LOCK)
	$(PYTHON) -m venv $(HYPERIMPUTE_VENV)
	$(HYPERIMPUTE_VENV)/bin/python -m pip install --quiet -c $(HYPERIMPUTE_LOCK) torch
	$(HYPERIMPUTE_VENV)/bin/python -m pip install --quiet -c $(HYPERIMPUTE_LOCK) hyperimpute
	touch $@

hyperimpute-env: $(HYPERIMPUTE_VENV)/.installed

clean:
	rm -rf $(VENV) $(HYPERIMPUTE_VENV) build *.egg-info mutants docs/_build docs/auto_examples docs/generated
