"""The audit writer sets aside an entry it cannot write; the rest of the batch is written."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.domain.audit import AuditEntry
from app.platform.paths import sqlite_url
from app.rollout.auditlog import AuditLog
from app.store import open_store


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(sqlite_url(tmp_path / "station.db"))
    yield s
    s.dispose()


def ops_written(store) -> list[str]:
    with store.uow() as uow:
        return sorted(e.op for e in uow.audit.recent(limit=1000))


def test_one_unwritable_entry_does_not_block_the_batch(store, caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(store, background=False)
    audit.record(AuditEntry(op="list_status", outcome="ok"))
    audit.record(AuditEntry(op="create_rule", outcome="error:validation", key="rule \ud800"))  # a lone surrogate
    audit.record(lambda: AuditEntry(op="camera_status", outcome="ok"))
    audit.record(lambda: 1 / 0)  # type: ignore[arg-type, return-value]  # a maker that fails
    with caplog.at_level(logging.WARNING, logger="app.rollout.auditlog"):
        assert audit.flush() == 2
    assert ops_written(store) == ["camera_status", "list_status"]
    assert audit.pending == 0 and audit.set_aside_total == 2
    assert [e.op if e else None for e, _why in audit.set_aside] == [None, "create_rule"]
    warned = [r.getMessage() for r in caplog.records]
    assert any("set aside" in m and "\\ud800" in m for m in warned), warned
    assert not any(r.exc_info for r in caplog.records)  # no traceback per flush
    # Later flushes are not blocked, and nothing buffered is lost at close.
    audit.record(AuditEntry(op="stop_camera", outcome="ok"))
    assert audit.flush() == 1
    audit.record(AuditEntry(op="start_camera", outcome="ok"))
    audit.close()
    assert ops_written(store) == ["camera_status", "list_status", "start_camera", "stop_camera"]


def test_an_unavailable_database_keeps_the_entries_for_later(store, tmp_path: Path) -> None:
    import sqlite3

    audit = AuditLog(store, background=False)
    audit.record(AuditEntry(op="list_status", outcome="ok"))
    holder = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, past the busy wait
    try:
        assert audit.flush() == 0
        assert audit.pending == 1 and audit.set_aside_total == 0  # kept, not set aside
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert audit.flush() == 1
    assert ops_written(store) == ["list_status"]


def test_retention_by_age_and_by_size(store) -> None:
    from datetime import UTC, datetime, timedelta

    from app.rollout.auditlog import (
        DEFAULT_MAX_ROWS,
        DEFAULT_RETENTION_DAYS,
        SETTING_MAX_ROWS,
        SETTING_RETENTION_DAYS,
    )

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    audit = AuditLog(store, background=False)
    assert audit.retention() == (DEFAULT_RETENTION_DAYS, DEFAULT_MAX_ROWS)
    audit.write([AuditEntry(op=f"old{i}", outcome="ok", at=now - timedelta(days=40 + i)) for i in range(3)])
    audit.write([AuditEntry(op=f"new{i:02d}", outcome="ok", at=now - timedelta(hours=i)) for i in range(20)])
    assert audit.prune(now) == 3  # by age: 30 days by default
    assert len(ops_written(store)) == 20
    with store.uow() as uow:
        uow.settings.set(SETTING_MAX_ROWS, 5)
        uow.settings.set(SETTING_RETENTION_DAYS, "not a number")  # unusable: the default
        uow.commit()
    assert audit.retention() == (DEFAULT_RETENTION_DAYS, 5)
    assert audit.prune(now) == 15  # by size: the newest 5 stay
    assert ops_written(store) == ["new15", "new16", "new17", "new18", "new19"]  # the last written stay
    with store.uow() as uow:
        uow.settings.set(SETTING_RETENTION_DAYS, 0.5)
        uow.commit()
    assert audit.prune(now) == 5  # 15-19 hours old, past half a day
    assert ops_written(store) == []
