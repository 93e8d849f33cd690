"""How the window starts, as a real process: migrations before any window, SQLAlchemy after the first paint.

The child runs ``edge-station`` with ``EDGE_STATION_EXIT_AFTER_PAINT=1`` (it quits
once the window has painted, closing the station) and an audit hook that says on
stderr when SQLAlchemy and Alembic are first imported, so the order of the lines
shows what happened before the first paint.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from app.platform.paths import sqlite_url
from app.store.preflight import SCHEMA_HEAD, preflight
from tests.conftest import REPO_ROOT
from tests.support.dbdump import content

pytestmark = pytest.mark.slow

CHILD = r"""
import sys
seen = set()

def hook(event, args):
    if event == "import":
        top = str(args[0]).split(".")[0]
        if top in ("sqlalchemy", "alembic") and top not in seen:
            seen.add(top)
            sys.stderr.write(f"IMPORT {top}\n")
            sys.stderr.flush()

sys.addaudithook(hook)
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start(data_dir: Path, *extra: str) -> tuple[int, list[str]]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EDGE_STATION_EXIT_AFTER_PAINT": "1",
           "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    proc = subprocess.run([sys.executable, "-c", CHILD, "--data-dir", str(data_dir), "--no-demo", *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORT ") or "first paint" in ln
             or ln.startswith("edge-station: error")]
    return proc.returncode, lines


def index(lines: list[str], what: str) -> int:
    hits = [i for i, ln in enumerate(lines) if what in ln]
    assert hits, f"{what!r} not in {lines}"
    return hits[0]


def no_process_on(data_dir: Path) -> list[psutil.Process]:
    left = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(data_dir) in " ".join(p.info["cmdline"] or []):
                left.append(p)
        except psutil.Error:
            pass
    return left


def test_first_start_migrates_before_the_window_shows(tmp_path):
    d = tmp_path / "data"
    code, lines = start(d)
    assert code == 0, lines
    assert index(lines, "IMPORT alembic") < index(lines, "first paint"), lines
    assert preflight(sqlite_url(d / "station.db")).ready
    assert not no_process_on(d)


def test_usual_start_paints_before_sqlalchemy_loads(tmp_path):
    d = tmp_path / "data"
    assert start(d)[0] == 0  # creates and migrates the database
    code, lines = start(d)
    assert code == 0, lines
    # The station opens (and loads SQLAlchemy) on a background thread after the first paint.
    assert index(lines, "first paint") < index(lines, "IMPORT sqlalchemy"), lines
    assert not no_process_on(d)


def test_a_newer_database_is_refused_before_any_window(tmp_path):
    d = tmp_path / "data"
    assert start(d)[0] == 0
    with sqlite3.connect(d / "station.db") as c:
        c.execute("UPDATE alembic_version SET version_num = '0999'")
    c.close()
    before = content(d / "station.db")
    code, lines = start(d)
    assert code == 3, lines
    assert not any("first paint" in ln for ln in lines), lines
    assert "newer than this Edge Station" in lines[-1] and SCHEMA_HEAD in lines[-1]
    assert content(d / "station.db") == before
