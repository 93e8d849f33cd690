# Edge Station — the two quick-start commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
export QT_LOGGING_RULES ?= qt.qpa.*=false

.PHONY: run test lint venv bench screenshots clean doctor headless

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

## Start the app: a SQLite file in the user data dir, demo cameras on synthetic sources.
run: venv
	$(VENV)/bin/edge-station

headless: venv
	$(VENV)/bin/edge-station headless

doctor: venv
	$(VENV)/bin/edge-station doctor

## The whole test suite (lint, architecture check, unit, integration, UI, reliability).
test: venv
	$(VENV)/bin/ruff check app tests
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: venv
	$(PIP) install --quiet -e '.[dev,bench]'
	@for b in tests/bench/bench_*.py; do echo "== $$b"; QT_QPA_PLATFORM=offscreen $(PY) $$b || exit 1; done

lint: venv
	$(VENV)/bin/ruff check app tests
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
