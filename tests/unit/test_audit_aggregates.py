"""Read-only calls are audited as aggregates (app/rollout/auditlog.py); writes keep a row each.

The aggregates must be evidence as good as the rows they replace: the same call counts, outcomes
and percentiles for the stage gate and the CLI, no aggregate across a settings change, and a
failed read still its own row with its exception.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.domain.audit import AuditEntry
from app.domain.operations import CameraRef, CreateRule, ListStatus
from app.platform.paths import sqlite_url
from app.rollout import AuditLog, Router
from app.rollout.auditlog import aggregate
from app.rollout.metrics import stats_from_audit
from app.store import open_store
from tests.unit.test_rollout_fakes import NoSample, fake_pair, keys_for, sample_rule


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(sqlite_url(tmp_path / "station.db"))
    yield s
    s.dispose()


def read(op="camera_status", path="legacy", outcome="ok", actor="api", reason="percent", key="camera:1",
         ms=1.0, at=1000.2):
    return (op, path, outcome, actor, reason, key, ms, at)


def test_reads_group_by_operation_path_outcome_actor_reason_and_interval() -> None:
    reads = [
        read(key="camera:1"), read(key="camera:2"), read(key="camera:2"),  # one group, 2 keys
        read(path="domain"),
        read(outcome="error:not_found", key="camera:99"),
        read(actor="canary"),
        read(op="list_status", key="station"),
        read(at=1001.5),  # the next interval
        None,  # a cut (a settings change)
        read(at=1001.7),
    ]
    out = aggregate(reads)
    by = {(e.op, e.path, e.outcome, e.actor, e.detail["first_at"]): e for e in out}
    assert len(out) == 7 and sum(e.calls for e in out) == 9
    first = by[("camera_status", "legacy", "ok", "api", datetime.fromtimestamp(1000.2, UTC).isoformat())]
    assert first.calls == 3 and first.key == "*"
    assert first.detail["keys"] == ["camera:1", "camera:2"] and first.detail["distinct_keys"] == 2
    lone = next(e for e in out if e.outcome == "error:not_found")
    assert lone.key == "camera:99" and lone.calls == 1
    late = [e for e in out if e.detail["first_at"] >= datetime.fromtimestamp(1001, UTC).isoformat()]
    assert [e.calls for e in late] == [1, 1]  # the cut kept 1001.5 and 1001.7 apart


def test_aggregates_give_the_gate_the_same_figures_as_one_row_per_call() -> None:
    rng = random.Random(7)
    reads, rows = [], []
    for i in range(3000):
        path = "domain" if i % 3 else "legacy"
        outcome = "error:not_found" if i % 50 == 0 else "ok"
        ms = rng.lognormvariate(0.0, 0.8)
        at = 1000.0 + i * 0.003  # about 9 s: several intervals
        reads.append(read(path=path, outcome=outcome, ms=ms, at=at, key=f"camera:{i % 16}"))
        rows.append(AuditEntry(op="camera_status", outcome=outcome, key=f"camera:{i % 16}", path=path,
                               latency_ms=ms, actor="api", reason="percent",
                               at=datetime.fromtimestamp(at, UTC)))
    agg = aggregate(reads)
    assert len(agg) < 40
    a, b = stats_from_audit(rows, 10.0), stats_from_audit(agg, 10.0)
    for path in ("legacy", "domain"):
        pa, pb = a.per_op["camera_status"][path], b.per_op["camera_status"][path]
        assert (pb.calls, pb.errors, pb.successes, pb.answers) == (pa.calls, pa.errors, pa.successes, pa.answers)
        for q in ("p50_ms", "p95_ms", "p99_ms"):  # the same sketch bins: the same percentiles
            assert getattr(pb, q) == pytest.approx(getattr(pa, q), rel=1e-9)


def make_router(store, n: int = 8):
    legacy, domain, state = fake_pair(n)
    r = Router(legacy, domain, store, keys_for(state), env={}, rng=NoSample(),
               audit=AuditLog(store, background=False))
    return r, legacy, domain


def written(store) -> list[AuditEntry]:
    with store.uow() as uow:
        return list(reversed(uow.audit.recent(limit=10_000)))


def test_router_reads_become_aggregates_failures_and_writes_stay_rows(store) -> None:
    r, legacy, _ = make_router(store)
    for i in range(500):
        r.camera_status(CameraRef(1 + i % 8))
    r.list_status(ListStatus())
    r.call("create_rule", CreateRule(sample_rule()))
    legacy.fail["camera_status"] = lambda: RuntimeError("disk gone")
    with pytest.raises(RuntimeError):
        r.camera_status(CameraRef(3))
    r.close()
    rows = written(store)
    status = [e for e in rows if e.op == "camera_status"]
    assert sum(e.calls for e in status if e.outcome == "ok") == 500
    assert len([e for e in status if e.outcome == "ok"]) <= 4  # aggregated, not 500 rows
    failed = [e for e in status if e.outcome == "failed"]
    assert len(failed) == 1 and failed[0].calls == 1 and "disk gone" in failed[0].detail["exception"]
    assert [e.calls for e in rows if e.op == "list_status"] == [1]
    creates = [e for e in rows if e.op == "create_rule"]
    assert len(creates) == 1 and "calls" not in creates[0].detail  # a write is a row of its own


def test_no_aggregate_spans_a_settings_change(store) -> None:
    r, *_ = make_router(store)
    for i in range(10):
        r.camera_status(CameraRef(1 + i % 8))
    r.reload()  # the router's settings changed (a stage, a rollback): the open aggregates close
    for i in range(10):
        r.camera_status(CameraRef(1 + i % 8))
    r.close()
    groups = [e.calls for e in written(store) if e.op == "camera_status"]
    assert sorted(groups) == [10, 10]
