"""The database preflight: what the window learns with sqlite3 alone, before any window shows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.kiosk.settings import K_ENABLED, K_LANGUAGE, read_startup_settings
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.db import head_revision
from app.store.preflight import SCHEMA_HEAD, preflight, sqlite_file
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
