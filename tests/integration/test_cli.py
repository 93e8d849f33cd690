"""The command line, run as a user runs it: a subprocess, one line per error, exit codes."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from tests.support.dbdump import content

REPO = Path(__file__).resolve().parents[2]


def run(*args, data_dir=None, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    cmd = [sys.executable, "-m", "app", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=REPO)


def assert_one_line_error(out, code):
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines and lines[0].startswith("edge-station: error: ")
    return lines[0]


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"edge-station {__version__}"


def test_cameras_add_list_remove(tmp_path):
    d = tmp_path / "data"
    out = run("cameras", "add", "Porch", "rtsp://admin:hunter2@10.0.0.9/live", "--max-fps", "8", data_dir=d)
    assert out.returncode == 0, out.stderr
    assert "added camera 1: Porch" in out.stdout
    listing = run("cameras", "list", data_dir=d)
    assert "Porch" in listing.stdout and "hunter2" not in listing.stdout and "admin:***@" in listing.stdout
    assert "hunter2" in run("cameras", "list", "--show-secrets", data_dir=d).stdout
    dup = run("cameras", "add", "Porch", "test://still", data_dir=d)
    assert "already exists" in assert_one_line_error(dup, 2)
    bad = run("cameras", "add", "Bad", "ftp://nope", data_dir=d)
    assert "source: unsupported scheme 'ftp'" in assert_one_line_error(bad, 2)
    assert run("cameras", "remove", "Porch", data_dir=d).returncode == 0
    assert "no cameras" in run("cameras", "list", data_dir=d).stdout
    missing = run("cameras", "remove", "Porch", data_dir=d)
    assert "no camera named" in assert_one_line_error(missing, 1)


def test_import_export_round_trip(tmp_path):
    d = tmp_path / "data"
    out = run("import", str(REPO / "config" / "cameras.yaml"), data_dir=d)
    assert out.returncode == 0, out.stderr
    assert "3 added" in out.stdout
    exported = tmp_path / "export.yaml"
    assert run("export", str(exported), data_dir=d).returncode == 0
    again = run("import", str(exported), "--replace", data_dir=d)
    assert again.returncode == 0 and "3 unchanged" in again.stdout and "0 removed" in again.stdout


def test_bad_import_is_one_line_per_problem_and_changes_nothing(tmp_path):
    d = tmp_path / "data"
    assert run("cameras", "add", "Keep", "test://still", data_dir=d).returncode == 0
    db = d / "station.db"
    before = content(db)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: A\n    source: test://moving\n    fps: 3\n")
    out = run("import", str(bad), data_dir=d)
    assert f"{bad}:4: cameras[0].fps: unknown key" in assert_one_line_error(out, 2)
    missing = run("import", str(tmp_path / "none.yaml"), data_dir=d)
    assert "file not found" in assert_one_line_error(missing, 2)
    assert content(db) == before


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run("cameras", "list", data_dir=blocker / "sub")
    assert "cannot create" in assert_one_line_error(out, 4)


def test_newer_database_is_refused(tmp_path):
    d = tmp_path / "data"
    assert run("migrate", data_dir=d).returncode == 0
    with sqlite3.connect(d / "station.db") as c:
        c.execute("UPDATE alembic_version SET version_num='0999'")
    before = content(d / "station.db")
    out = run("cameras", "list", data_dir=d)
    assert "newer than this Edge Station" in assert_one_line_error(out, 3)
    assert content(d / "station.db") == before


def test_env_selects_data_dir_and_db(tmp_path):
    d = tmp_path / "envdata"
    out = run("cameras", "add", "A", "test://still", env={"EDGE_STATION_DATA_DIR": str(d)})
    assert out.returncode == 0 and (d / "station.db").exists()
    other = tmp_path / "other.db"
    out = run("cameras", "list", env={"EDGE_STATION_DATA_DIR": str(d), "EDGE_STATION_DB": f"sqlite:///{other}"})
    assert out.returncode == 0 and "no cameras" in out.stdout and other.exists()


def test_bad_db_url(tmp_path):
    out = run("cameras", "list", "--db", "nosuchdialect://x", data_dir=tmp_path / "d")
    assert "cannot use database URL" in assert_one_line_error(out, 3)


@pytest.mark.slow
def test_doctor_reports_each_check(tmp_path):
    d = tmp_path / "data"
    run("migrate", data_dir=d)
    out = run("doctor", data_dir=d, env={"QT_QPA_PLATFORM": "offscreen"}, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("python", "data dir", "database", "video (PyAV)", "test sources (lavfi)", "shared memory", "Qt platform"):
        assert f"[ok  ] {name}:" in out.stdout
    fresh = run("doctor", data_dir=tmp_path / "fresh", env={"QT_QPA_PLATFORM": "offscreen"}, timeout=90)
    assert fresh.returncode == 0 and "[info] database:" in fresh.stdout
