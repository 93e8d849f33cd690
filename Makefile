# Edge Station — the two quick-start commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
export QT_LOGGING_RULES ?= qt.qpa.*=false

.PHONY: run test lint venv bench screenshots clean doctor headless translations lupdate package smoke

# Qt Linguist catalogues (.ts, in git) compile to .qm (built, shipped, not in git).
QM := $(patsubst %.ts,%.qm,$(wildcard resources/translations/*.ts))

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

translations: $(QM)

## Re-extract the window's texts into the .ts catalogues (then translate the new entries).
lupdate: venv
	$(VENV)/bin/pyside6-lupdate -locations none -extensions py app/ui -ts $(wildcard resources/translations/*.ts)

resources/translations/%.qm: resources/translations/%.ts $(STAMP)
	$(VENV)/bin/pyside6-lrelease -silent $< -qm $@

## Start the app: a SQLite file in the user data dir, demo cameras on synthetic sources.
## On a machine without Qt's X11 libraries the window names them and the install command;
## 'make doctor' checks the rest (nothing of Qt's own output is hidden).
run: venv translations
	@$(VENV)/bin/edge-station || { code=$$?; echo "make run: edge-station exited with $$code; 'make doctor' checks this machine" >&2; exit $$code; }

headless: venv
	$(VENV)/bin/edge-station headless

doctor: venv
	$(VENV)/bin/edge-station doctor

## The whole test suite (lint, architecture check, unit, integration, UI, reliability).
## TEST_WORKERS: pytest processes (pytest-xdist); each test file stays on one of them.
TEST_WORKERS ?= 2
test: venv translations
	$(VENV)/bin/ruff check app tests scripts
	$(VENV)/bin/mypy
	@QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15; code=$$?; \
	  if [ $$code = 5 ]; then echo "make test: pytest collected no tests (exit 5): the suite is missing, which is a failure" >&2; exit 1; fi; \
	  exit $$code

## Every tests/bench/bench_*.py, each in its own process: a bench that cannot run here says why
## (SKIP:, exit 77) and the others still run; a summary at the end; fails if any bench failed.
## BENCH_QUICK=1: smaller sizes and shorter windows. BENCH_TIMEOUT: seconds per bench.
bench: venv
	$(PIP) install --quiet -e '.[dev,bench]'
	QT_QPA_PLATFORM=offscreen $(PY) scripts/run_benches.py $(if $(BENCH_TIMEOUT),--timeout $(BENCH_TIMEOUT))

## The PyInstaller bundle (dist/edge-station/) and the Debian package (dist/edge-station_*.deb).
package: venv translations
	bash packaging/build.sh
	bash packaging/deb/build_deb.sh

## Install the built .deb (and over itself: the upgrade path), check the installed program, remove it.
smoke:
	bash packaging/smoke_test.sh --install "$$(ls -t dist/edge-station_*.deb | head -n 1)" --remove

screenshots: venv translations
	$(PY) scripts/screenshots.py

lint: venv
	$(VENV)/bin/ruff check app tests
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
