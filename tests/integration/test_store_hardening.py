"""A damaged, empty or locked database: refused with the documented exit code and a plain message.

Exit code 3 is "the database cannot be opened" (README, ``edge-station --help``).
Nothing is written to a file that is refused; ``doctor`` runs ``PRAGMA quick_check``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

from app.domain import Camera
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.db import make_engine, storage_health
from tests.integration.test_cli import assert_one_line_error, run

EXIT_DATABASE = 3


def make_station_db(data_dir: Path, cameras: int = 200) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "station.db"
    store = open_store(sqlite_url(path))
    with store.uow() as uow:
        for i in range(cameras):
            uow.cameras.add(Camera(name=f"Cam {i}", source="test://moving", location="x" * 100))
        uow.commit()
    store.dispose()
    return path


def corrupt_cameras_table(path: Path) -> None:
    """Overwrite one leaf page of the cameras table with garbage (what a bad sector does)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'cameras'").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    victim = min(root + 1, pages)
    with open(path, "r+b") as f:
        f.seek((victim - 1) * page_size + 8)
        f.write(os.urandom(page_size - 16))


def test_an_empty_database_file_is_refused_not_reseeded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "station.db").write_bytes(b"")
    for args in (("migrate",), ("cameras", "list"), ("headless", "--duration", "1")):
        line = assert_one_line_error(run(*args, data_dir=data), EXIT_DATABASE)
        assert "is an empty file (0 bytes)" in line, line
    assert (data / "station.db").stat().st_size == 0  # untouched: no demo cameras written into it
    out = run("doctor", data_dir=data, env={"QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 5
    assert "[FAIL] database: " in out.stdout and "empty file" in out.stdout


def test_a_damaged_database_is_refused_and_doctor_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = make_station_db(data)
    corrupt_cameras_table(path)
    before = path.read_bytes()
    for args in (("migrate",), ("headless", "--duration", "1"), ("cameras", "list")):
        line = assert_one_line_error(run(*args, data_dir=data), EXIT_DATABASE)
        assert "is damaged" in line and "SELECT" not in line, line
    assert path.read_bytes() == before
    out = run("doctor", data_dir=data, env={"QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 5
    doctor_line = next(ln for ln in out.stdout.splitlines() if "] database: " in ln)
    assert doctor_line.startswith("[FAIL] database: ") and "quick_check" in doctor_line


def test_a_write_lock_held_by_another_process_says_busy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = make_station_db(data, cameras=1)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held
        engine = make_engine(sqlite_url(path))
        try:
            health = storage_health(engine)
        finally:
            engine.dispose()
        assert health["ok"] is False and health["problem"] == "the database is busy (held by another process)"
        t0 = time.monotonic()
        out = run("cameras", "add", "Porch", "test://still", data_dir=data)
        took = time.monotonic() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = assert_one_line_error(out, EXIT_DATABASE)
    assert "the database is busy (held by another process)" in line
    assert "INSERT" not in out.stderr and "OperationalError" not in out.stderr
    assert took < 30
    ok = run("cameras", "add", "Porch", "test://still", data_dir=data)  # the lock gone: it works
    assert ok.returncode == 0, ok.stderr
    engine = make_engine(sqlite_url(path))
    try:
        assert storage_health(engine)["ok"] is True
    finally:
        engine.dispose()


def test_data_dir_database_and_logs_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = run("migrate", data_dir=data)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "station.db").stat().st_mode) == 0o600
    for sub in ("logs", "run"):
        assert stat.S_IMODE((data / sub).stat().st_mode) == 0o700
