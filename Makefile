# Two commands matter: `make test` and `make book` (see README). Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
# Real-data tests read ../shared/data when it exists (never the network).
SHARED_DATA := $(abspath ../shared/data)
export MNISTND_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),)

.PHONY: install test lint book bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check mnistnd tests

test: $(STAMP) lint
	$(PY) -m pytest

book: $(STAMP)
	$(VENV)/bin/mnistnd book --profile $(PROFILE)

bench: $(STAMP)
	for f in tests/benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf _build _runs .pytest_cache .ruff_cache
