"""The database preflight: what the window learns with sqlite3 alone, before any window shows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.domain import Camera, MotionSettings
from app.kiosk.settings import K_ENABLED, K_LANGUAGE, read_startup_settings
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.db import head_revision
from app.store.preflight import SCHEMA_HEAD, preflight, read_cameras, sqlite_file
from tests.support.dbdump import content


def _migrated(tmp_path: Path, settings: dict | None = None) -> Path:
    db = tmp_path / "station.db"
    store = open_store(sqlite_url(db))
    try:
        with store.uow() as uow:
            for key, value in (settings or {}).items():
                uow.settings.set(key, value)
            uow.commit()
    finally:
        store.dispose()
    return db


def test_schema_head_is_the_newest_migration():
    assert SCHEMA_HEAD == head_revision(), "a migration was added: move SCHEMA_HEAD in app/store/preflight.py"


def test_a_migrated_database_is_ready_and_its_settings_are_read(tmp_path):
    db = _migrated(tmp_path, {K_ENABLED: True, K_LANGUAGE: "zh_CN", "kiosk.grid": 3, "unset.later": None})
    pre = preflight(sqlite_url(db), [K_ENABLED, K_LANGUAGE, "kiosk.grid", "unset.later", "never.set"])
    assert pre.ready and pre.reason == ""
    assert pre.settings == {K_ENABLED: True, K_LANGUAGE: "zh_CN", "kiosk.grid": 3}


def test_read_startup_settings_agrees_on_both_paths(tmp_path, monkeypatch):
    db = _migrated(tmp_path, {K_ENABLED: True, K_LANGUAGE: "en"})
    fast = read_startup_settings(sqlite_url(db))
    # The same file through SQLAlchemy: the URL form the preflight does not parse takes the store path.
    monkeypatch.setattr("app.store.preflight.sqlite_file", lambda url: None)
    slow = read_startup_settings(sqlite_url(db))
    assert fast == slow == {K_ENABLED: True, K_LANGUAGE: "en"}


@pytest.mark.parametrize("change, reason", [
    ("DELETE FROM alembic_version", "schema none"),
    ("UPDATE alembic_version SET version_num = '0999'", "is not"),
    ("DROP TABLE alembic_version", "no schema version"),
])
def test_an_older_or_newer_schema_is_not_ready(tmp_path, change, reason):
    db = _migrated(tmp_path)
    with sqlite3.connect(db) as c:
        c.execute(change)
    c.close()
    pre = preflight(sqlite_url(db))
    assert not pre.ready and reason in pre.reason


def test_unknown_databases_are_not_ready_and_nothing_is_written(tmp_path):
    missing = tmp_path / "nope" / "station.db"
    assert not preflight(sqlite_url(missing)).ready
    assert not missing.parent.exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    assert not preflight(sqlite_url(garbage)).ready
    assert garbage.read_bytes() == b"this is not a database" * 100
    for url in ("sqlite://", "sqlite:///:memory:", f"sqlite:///{tmp_path}/a.db?mode=ro",
                "postgresql+psycopg://u@localhost/edge", "nosuchdialect://x"):
        assert not preflight(url).ready, url
        assert sqlite_file(url) is None, url


def test_preflight_reads_without_writing(tmp_path):
    db = _migrated(tmp_path, {K_LANGUAGE: "en"})
    before = (content(db), db.stat().st_mtime_ns)
    for _ in range(3):
        assert preflight(sqlite_url(db), [K_LANGUAGE]).ready
    assert (content(db), db.stat().st_mtime_ns) == before
    wal = tmp_path / "station.db-wal"  # SQLite may leave its empty WAL sidecar for a reader; no data in it
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_stations_own_settings_are_read_over_those_of_no_station_on_both_paths(tmp_path, monkeypatch):
    from app.platform.identity import station_id

    db = _migrated(tmp_path, {K_ENABLED: True, K_LANGUAGE: "en"})  # written naming no station
    box = tmp_path / "box"
    box.mkdir()
    mine = station_id(box)
    store = open_store(sqlite_url(db), station_id=mine)
    try:
        with store.uow() as uow:
            uow.settings.set(K_LANGUAGE, "zh_CN")  # this station's own
            uow.commit()
    finally:
        store.dispose()
    fast = read_startup_settings(sqlite_url(db), box)
    monkeypatch.setattr("app.store.preflight.sqlite_file", lambda url: None)
    slow = read_startup_settings(sqlite_url(db), box)
    assert fast == slow == {K_ENABLED: True, K_LANGUAGE: "zh_CN"}
    other = tmp_path / "other-box"
    other.mkdir()
    station_id(other)
    assert read_startup_settings(sqlite_url(db), other) == {K_ENABLED: True, K_LANGUAGE: "en"}


def test_read_cameras_is_the_store_read(tmp_path):
    db = _migrated(tmp_path)
    store = open_store(sqlite_url(db))
    try:
        with store.uow() as uow:
            for cam in (
                Camera(name="Lobby", source="test://moving"),
                Camera(name="Yard é", source="rtsp://10.0.0.7/stream", active=False, max_fps=7.5, loop=True,
                       motion=MotionSettings(False, 0.125, 3), stall_timeout=4.0, location="north gate",
                       tags=("outdoor", "gate")),
                Camera(name="Dock", source="file:///clips/dock.mp4", max_fps=15, stall_timeout=30,
                       motion=MotionSettings(True, 1, 0)),
            ):
                uow.cameras.add(cam)
            uow.commit()
        with store.uow() as uow:
            uow.cameras.remove(uow.cameras.get_by_name("Lobby").id)  # a gap in the ids
            uow.cameras.add(Camera(name="Lobby 2", source="test://bars"))
            uow.commit()
        with store.uow() as uow:
            stored = uow.cameras.list()
    finally:
        store.dispose()
    early = read_cameras(sqlite_url(db))
    assert early == stored and [c.id for c in early] == sorted(c.id for c in stored)
    assert [type(c.max_fps) for c in early] == [type(c.max_fps) for c in stored]


def test_read_cameras_knows_nothing_of_other_databases(tmp_path):
    assert read_cameras(sqlite_url(_migrated(tmp_path))) == []
    assert read_cameras(sqlite_url(tmp_path / "missing.db")) is None
    assert read_cameras("postgresql+psycopg://u@localhost/edge") is None
    older = tmp_path / "older"
    older.mkdir()
    db = _migrated(older)
    with sqlite3.connect(db) as c:
        c.execute("UPDATE alembic_version SET version_num = '0001'")
    c.close()
    assert read_cameras(sqlite_url(db)) is None
    bad = tmp_path / "bad"
    bad.mkdir()
    db = _migrated(bad)
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO cameras (name, source, active, loop, motion_enabled, motion_threshold, motion_warmup,"
                  " stall_timeout, location, tags, created_at, updated_at)"
                  " VALUES ('x', 'test://moving', 1, 0, 1, 0.02, 10, 10.0, '', 'not json', '', '')")
    c.close()
    assert read_cameras(sqlite_url(db)) is None, "a row it cannot read: the store's read decides"


def test_read_cameras_for_a_station_is_its_stores_read(tmp_path):
    db = _migrated(tmp_path)
    a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    store = open_store(sqlite_url(db))
    try:
        for sid, name in ((a, "A1"), (b, "B1"), (None, "Nobody's")):
            with store.for_station(sid).uow() as uow:
                uow.cameras.add(Camera(name=name, source="test://still"))
                uow.commit()
        for sid in (a, b, None):
            assert read_cameras(sqlite_url(db), sid) == list(store.for_station(sid).camera_snapshot()), sid
        assert [c.name for c in read_cameras(sqlite_url(db), a) or []] == ["A1", "Nobody's"]
    finally:
        store.dispose()
