"""The status reads' snapshot of the cameras (app/store/catalog.py) on a real SQLite file.

It must follow every commit of this process that wrote the cameras (ORM unit of work, Core
transaction script, SQL text), and nothing else: a read, a rolled-back write and a write to
another table leave it loaded.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update

from app.domain.audit import AuditEntry
from app.domain.camera import Camera
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.catalog import ReadModel
from app.store.tables import cameras


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(sqlite_url(tmp_path / "station.db"))
    yield s
    s.dispose()


def names(store) -> list[str]:
    return [c.name for c in store.camera_snapshot()]


def add(store, name: str) -> Camera:
    with store.uow() as uow:
        cam = uow.cameras.add(Camera(name=name, source="testsrc"))
        uow.commit()
    return cam


def loads(store) -> int:
    return store._cameras.loads  # the snapshot's own count of database reads


def test_a_unit_of_work_commit_is_seen_by_the_next_read(store) -> None:
    assert names(store) == []
    cam = add(store, "gate")
    assert names(store) == ["gate"]
    with store.uow() as uow:
        uow.cameras.update(cam.with_changes(name="yard", active=False))
        uow.commit()
    assert [(c.name, c.active) for c in store.camera_snapshot()] == [("yard", False)]
    with store.uow() as uow:
        uow.cameras.remove(cam.id)
        uow.commit()
    assert names(store) == []


def test_core_transactions_and_sql_text_are_seen(store) -> None:
    add(store, "gate")
    assert names(store) == ["gate"]
    with store.engine.begin() as conn:  # a transaction script, as the legacy path writes
        conn.execute(update(cameras).where(cameras.c.name == "gate").values(name="door"))
    assert names(store) == ["door"]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cameras SET name = 'porch'"))
    assert names(store) == ["porch"]


def test_reads_rollbacks_and_other_tables_do_not_reload(store) -> None:
    add(store, "gate")
    names(store)
    before = loads(store)
    with store.uow() as uow:  # a read
        uow.cameras.list()
    with store.uow() as uow:  # a write to another table
        uow.audit.add(AuditEntry(op="list_status", outcome="ok"))
        uow.commit()
    with store.uow() as uow:  # a write to the cameras that is rolled back
        uow.cameras.add(Camera(name="never", source="testsrc"))
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        conn.execute(insert(cameras).values(name="never2", source="testsrc", active=True, loop=False,
                                            stall_timeout=10.0))
        raise RuntimeError("abandon the transaction")
    assert names(store) == ["gate"]
    assert loads(store) == before  # nothing above made it read the database again


def test_invalidate_reads_another_process_commit(store, tmp_path: Path) -> None:
    add(store, "gate")
    assert names(store) == ["gate"]
    other = open_store(sqlite_url(tmp_path / "station.db"))  # another engine: another process's commits
    try:
        add(other, "yard")
    finally:
        other.dispose()
    assert names(store) == ["gate"]  # not seen until the station's change watch says so
    store.invalidate()
    assert names(store) == ["gate", "yard"]


def test_a_commit_during_a_load_makes_the_next_read_load_again(store) -> None:
    """A load that read the rows just before a commit must not be kept as current."""
    add(store, "gate")
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []
    loaded: list[list[str]] = []

    def load() -> list[str]:
        with store.uow() as uow:
            rows = [c.name for c in uow.cameras.list()]
        calls.append(1)
        if len(calls) == 1:  # the first load is held after it read the rows
            entered.set()
            assert release.wait(10)
        return rows

    model = ReadModel(store.engine, load)
    t = threading.Thread(target=lambda: loaded.append(model.get()))
    t.start()
    assert entered.wait(10)
    add(store, "yard")  # commits while the load holds the old rows
    release.set()
    t.join(10)
    assert loaded == [["gate"]]
    assert model.get() == ["gate", "yard"] and len(calls) == 2


def test_the_change_watch_asks_after_a_commit_and_sees_only_the_cached_tables(store, tmp_path: Path) -> None:
    """The station's change watch (``DbFingerprint``): no query while the database's files are
    unchanged; after another engine's commit one query, whose answer moves only when cameras,
    rules or settings changed (not for a heartbeat, a rollup or an audit row)."""
    from app.station.watch import DbFingerprint

    add(store, "gate")
    fp = DbFingerprint(store.engine)
    first = fp()
    assert fp.queries == 1
    assert fp() == first and fp.queries == 1  # nothing committed: no query
    other = open_store(sqlite_url(tmp_path / "station.db"))  # another process's commits
    try:
        with other.uow() as uow:  # what most commits are: not the cameras, rules or settings
            uow.audit.add(AuditEntry(op="list_status", outcome="ok"))
            uow.commit()
        assert fp() == first and fp.queries == 2  # looked, and nothing the station caches moved
        add(other, "yard")
        moved = fp()
        assert moved != first and fp.queries == 3
        with other.engine.begin() as conn:  # a Core update (as the legacy operations make) moves it too
            conn.execute(update(cameras).where(cameras.c.name == "yard").values(location="east"))
        assert fp() != moved
        with other.uow() as uow:
            uow.settings.set("ui.language", "de")
            uow.commit()
        assert fp() not in (first, moved)
    finally:
        other.dispose()
