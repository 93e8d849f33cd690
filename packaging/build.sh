#!/usr/bin/env bash
# Build the PyInstaller one-folder bundle: dist/edge-station/ (executable dist/edge-station/edge-station).
#
# Uses the project's .venv (created by `make venv`); installs PyInstaller into it when missing.
# Compiles Qt Linguist translations (resources/translations/*.ts -> *.qm) so the bundle carries them.
# Environment: PYTHON (default .venv/bin/python), DIST (default dist), WORK (default build/pyinstaller).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
PYINSTALLER_SPEC="pyinstaller>=6.10,<7"

die() { echo "packaging/build.sh: error: $*" >&2; exit 1; }

[ -x "$PY" ] || die "$PY not found: run 'make venv' first (or set PYTHON)"
"$PY" -c 'import app, PySide6, av' 2>/dev/null || die "$PY cannot import the app and its dependencies: run 'make venv'"

if ! "$PY" -m PyInstaller --version >/dev/null 2>&1; then
  echo "== installing PyInstaller into $(dirname "$(dirname "$PY")")"
  "$PY" -m pip install --quiet "$PYINSTALLER_SPEC"
fi

# Translations: compile every .ts that has no up-to-date .qm (the .qm files are not in git).
shopt -s nullglob
ts_files=(resources/translations/*.ts)
if [ ${#ts_files[@]} -gt 0 ]; then
  LRELEASE=$(dirname "$PY")/pyside6-lrelease
  [ -x "$LRELEASE" ] || die "pyside6-lrelease not found beside $PY (it ships with PySide6)"
  for ts in "${ts_files[@]}"; do
    qm=${ts%.ts}.qm
    if [ ! -f "$qm" ] || [ "$ts" -nt "$qm" ]; then
      "$LRELEASE" -silent "$ts" -qm "$qm" || die "cannot compile $ts"
    fi
  done
  echo "== translations: ${#ts_files[@]} compiled"
fi

version=$("$PY" -c 'import app; print(app.__version__)')
echo "== building Edge Station $version bundle in $DIST/edge-station ($("$PY" -m PyInstaller --version 2>/dev/null | tail -1))"
start=$(date +%s)
"$PY" -m PyInstaller packaging/edge-station.spec \
  --distpath "$DIST" --workpath "$WORK" --noconfirm --clean --log-level "${PYI_LOG_LEVEL:-WARN}"

exe="$DIST/edge-station/edge-station"
[ -x "$exe" ] || die "PyInstaller did not produce $exe"
got=$("$exe" --version) || die "$exe --version failed"
[ "$got" = "edge-station $version" ] || die "$exe --version printed '$got', expected 'edge-station $version'"
echo "== bundle ready: $exe ($(du -sh "$DIST/edge-station" | cut -f1), built in $(( $(date +%s) - start )) s)"
