# coordhub: `make run` serves it, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := run

HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint check bench screenshots

$(PY): .python-version
	@python="$$(scripts/python-for-venv.sh)" && echo "Creating $(VENV) with $$python" && \
		"$$python" -m venv --clear $(VENV)
	@touch $(PY)

.python-version:
	@echo "error: .python-version is missing; it names the Python (3.12 or newer) to use." >&2
	@exit 1

$(VENV)/.installed: $(PY) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check --editable .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check --editable '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --no-input
	$(PY) manage.py serve --host "$(HOST)" --port "$(PORT)"

test: $(VENV)/.installed-test
	scripts/install-test-services.sh
	$(PY) -m ruff check .
	$(PY) scripts/run_tests.py $(PYTEST_ARGS)

$(VENV)/.installed-bench: $(VENV)/.installed-test pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check --editable '.[test,bench]'
	@touch $@

bench: $(VENV)/.installed-bench
	scripts/install-test-services.sh wrk
	$(PY) bench/run.py $(BENCH_ARGS)

# A throwaway coordhub, photographed by Chromium into docs/screenshots/ (the README shows them).
screenshots: $(VENV)/.installed-test
	$(PY) scripts/screenshots.py $(SCREENSHOTS_ARGS)

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
