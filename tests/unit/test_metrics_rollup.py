"""Minute rollups into a real SQLite file: aggregates, one write per minute, pruning, history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.metrics import MetricsRegistry, Rollup, history_arrays, rollup_history
from app.store import Store, open_store
from app.store.rollups import RollupRepository

M0 = 30_000_000  # a minute number; unix time M0 * 60


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield s
    s.dispose()


def rows(store: Store) -> int:
    with store.uow() as uow:
        return RollupRepository(uow.session).count()


def test_each_completed_minute_is_rolled_up_once(store: Store) -> None:
    reg = MetricsRegistry()
    roll = Rollup(reg, store)
    t0 = M0 * 60
    assert roll.tick(t0 + 0.5) is None  # first run starts with the minute in progress
    for s in range(120):
        reg.record("fps", float(s % 60), {"camera": 1}, ts=t0 + s)
        if s % 2 == 0:
            reg.record("cpu_percent", 10.0 + s, ts=t0 + s)
        res = roll.tick(t0 + s + 0.5)
        assert res is None  # nothing completes until t0 + 60
        if s == 59:
            break
    res = roll.tick(t0 + 60.2)
    assert res is not None and res.minutes == 1 and res.points == 2
    assert roll.tick(t0 + 61) is None  # not twice
    (p,) = rollup_history(store, "fps", {"camera": 1}, since=t0)
    assert (p.minute, p.count, p.min, p.max, p.last) == (M0, 60, 0.0, 59.0, 59.0)
    assert p.sum == pytest.approx(sum(range(60)))
    assert p.mean == pytest.approx(29.5)
    assert p.start == t0
    (c,) = rollup_history(store, "cpu_percent", None, since=t0)
    assert c.count == 30 and c.min == 10.0 and c.max == 68.0


def test_catch_up_after_a_pause_and_history_range(store: Store) -> None:
    reg = MetricsRegistry()
    roll = Rollup(reg, store)
    t0 = M0 * 60
    roll.tick(t0)
    for s in range(0, 5 * 60):
        reg.record("fps", 25.0, {"camera": 2}, ts=t0 + s)
    res = roll.tick(t0 + 5 * 60 + 1)  # the sampler was blocked for five minutes
    assert res.minutes == 5 and res.points == 5
    pts = rollup_history(store, "fps", {"camera": 2}, since=t0 + 60, until=t0 + 180)
    assert [p.minute for p in pts] == [M0 + 1, M0 + 2]
    cols = history_arrays(rollup_history(store, "fps", {"camera": 2}, since=t0))
    assert cols["t"].tolist() == [float((M0 + i) * 60) for i in range(5)]
    assert np.all(cols["mean"] == 25.0)
    assert rollup_history(store, "fps", {"camera": 3}, since=t0) == []


def test_old_rows_are_pruned_after_seven_days(store: Store) -> None:
    reg = MetricsRegistry()
    roll = Rollup(reg, store)
    day = 1440
    from app.domain.metrics import RollupPoint

    with store.uow() as uow:
        RollupRepository(uow.session).put_many(
            RollupPoint("fps", (("camera", "1"),), M0 - d * day - 5, 60, 60.0, 1.0, 1.0, 1.0) for d in range(10)
        )
        uow.commit()
    assert rows(store) == 10
    t0 = M0 * 60
    roll.tick(t0)
    reg.record("fps", 1.0, {"camera": 1}, ts=t0 + 1)
    res = roll.tick(t0 + 61)
    # Kept: 0..6 days back (minute >= M0 + 1 - 7 days); pruned: 7, 8, 9 days back.
    assert res.pruned == 3
    assert rows(store) == 8
    with store.uow() as uow:
        assert RollupRepository(uow.session).series_keys() == [("fps", (("camera", "1"),))]


def test_rolling_a_minute_again_replaces_it(store: Store) -> None:
    from app.domain.metrics import RollupPoint

    with store.uow() as uow:
        repo = RollupRepository(uow.session)
        repo.put_many([RollupPoint("fps", (), M0, 10, 10.0, 1.0, 1.0, 1.0)])
        repo.put_many([RollupPoint("fps", (), M0, 20, 40.0, 2.0, 2.0, 2.0)])
        uow.commit()
    (p,) = rollup_history(store, "fps", None, since=M0 * 60)
    assert p.count == 20 and p.sum == 40.0
