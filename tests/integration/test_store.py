"""The store on real SQLite files, through the migrations."""

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.domain import AlertRule, Camera, Comparator, ConstraintViolation, TargetKind
from app.domain.audit import AuditEntry
from app.platform.paths import ENV_DATA_DIR, ENV_DB, resolve_paths, sqlite_url
from app.store import SchemaTooNew, StoreError, open_store
from app.store.db import head_revision, is_migrated


@pytest.fixture
def store(tmp_path):
    s = open_store(sqlite_url(tmp_path / "station.db"))
    yield s
    s.dispose()


def test_migrations_create_every_table(store):
    with store.engine.connect() as c:
        names = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert {"cameras", "alert_rules", "alert_events", "audit_log", "settings", "metric_rollups"} <= names
    assert is_migrated(store.engine)


def test_sqlite_pragmas(store):
    with store.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_repository_round_trip(store):
    cam = Camera(name="Lobby", source="rtsp://u:p@h/x", max_fps=12.5, tags=("a", "b"), location="Hall")
    with store.uow() as uow:
        saved = uow.cameras.add(cam)
        uow.commit()
    assert saved.id is not None
    with store.uow() as uow:
        got = uow.cameras.get(saved.id)
    assert got == cam.with_changes(id=saved.id)


def test_unit_of_work_rolls_back_without_commit(store):
    with store.uow() as uow:
        uow.cameras.add(Camera(name="Ghost", source="test://still"))
    with store.uow() as uow:
        assert uow.cameras.list() == []


def test_unit_of_work_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.uow() as uow:
        uow.cameras.add(Camera(name="A", source="test://still"))
        raise RuntimeError("boom")
    with store.uow() as uow:
        assert uow.cameras.count() == 0


def test_unique_camera_names(store):
    with store.uow() as uow:
        uow.cameras.add(Camera(name="A", source="test://still"))
        uow.commit()
    with pytest.raises(ConstraintViolation) as ei, store.uow() as uow:
        uow.cameras.add(Camera(name="A", source="test://moving"))
    assert ei.value.constraint == "unique" and isinstance(ei.value.__cause__, IntegrityError)


def test_rules_cascade_with_their_camera(store):
    with store.uow() as uow:
        cam = uow.cameras.add(Camera(name="A", source="test://still"))
        uow.rules.add(AlertRule(name="r", metric="fps", comparator=Comparator.LT, threshold=1,
                                target=TargetKind.CAMERA, camera_id=cam.id))
        uow.commit()
    with store.uow() as uow:
        uow.cameras.remove(cam.id)
        uow.commit()
    with store.uow() as uow:
        assert uow.rules.list() == []


def test_settings_and_audit(store):
    with store.uow() as uow:
        uow.settings.set("rollout.percent", 25)
        uow.settings.set("kiosk", {"layout": "2x2"})
        uow.audit.add(AuditEntry(op="settings.set", outcome="ok", actor="cli", detail={"k": 1}))
        uow.commit()
    with store.uow() as uow:
        assert uow.settings.get("rollout.percent") == 25
        assert uow.settings.all()["kiosk"] == {"layout": "2x2"}
        (entry,) = uow.audit.recent()
    assert entry.op == "settings.set" and entry.detail == {"k": 1} and entry.at is not None


def test_reopen_is_idempotent(tmp_path):
    url = sqlite_url(tmp_path / "s.db")
    open_store(url).dispose()
    s = open_store(url)
    assert is_migrated(s.engine)
    s.dispose()


def test_newer_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.db"
    open_store(sqlite_url(path)).dispose()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE alembic_version SET version_num='9999_future'")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew, match="newer than this Edge Station"):
        open_store(sqlite_url(path))
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "9999_future"
    assert head_revision() != "9999_future"
    assert len(before) > 0


def test_unreadable_database_gives_store_error(tmp_path):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        open_store(sqlite_url(bad))


def test_paths_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path / "env"))
    assert resolve_paths().data_dir == (tmp_path / "env").resolve()
    assert resolve_paths(tmp_path / "arg").data_dir == (tmp_path / "arg").resolve()
    assert resolve_paths(tmp_path / "arg").db_url.endswith("/arg/station.db")
    monkeypatch.setenv(ENV_DB, "sqlite:////elsewhere/x.db")
    assert resolve_paths().db_url == "sqlite:////elsewhere/x.db"
    assert resolve_paths(db_url="sqlite:///y.db").db_url == "sqlite:///y.db"
