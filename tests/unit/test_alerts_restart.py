"""Alerts survive a restart (defect 3): the same event, its acknowledgement kept, nobody notified twice.

A restarted station's engine ticks before its cameras run again: for a few
seconds it watches no camera and has no data. Events are in a real SQLite file.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from app.alerts import AlertEngine
from app.domain import Camera
from app.domain.alerts import AlertChange, AlertState, EventState
from app.domain.rules import AlertRule, Comparator, TargetKind
from app.metrics import MetricsRegistry, camera_labels
from app.store import Store, open_store
from app.store.alert_events import AlertEventRepository

T0 = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    with s.uow() as uow:
        uow.cameras.add(Camera(name="Lobby", source="test://moving"))
        uow.rules.add(AlertRule(name="FPS under 100", metric="fps", comparator=Comparator.LT, threshold=100.0,
                                target=TargetKind.ALL_CAMERAS, for_seconds=0.0, cooldown=0.0,
                                repeat_interval=60.0).validated())
        uow.commit()
    yield s
    s.dispose()


class Run:
    """One run of the station: a fresh registry and engine on the same database."""

    def __init__(self, store: Store, now: float):
        self.now = now
        self.cams: list[int] = []  # the cameras start a moment after the engine
        self.reg = MetricsRegistry(clock=lambda: self.now)
        self.changes: list[AlertChange] = []
        self.engine = AlertEngine(self.reg, store=store, clock=lambda: self.now, cameras=lambda: self.cams, tz=UTC)
        self.engine.load_rules()
        self.engine.subscribe(self.changes.append)

    def tick(self, seconds: float = 1.0, fps: float | None = None) -> None:
        self.now += seconds
        if fps is not None:
            self.reg.record("fps", fps, camera_labels(1), ts=self.now)
        self.engine.tick(self.now)
        assert self.engine.flush(10)

    def stop(self) -> None:
        self.engine.stop()


def events(store: Store):
    with store.uow() as uow:
        return AlertEventRepository(uow.session).recent(100)


def test_an_acknowledged_alert_is_the_same_event_after_two_restarts(store: Store) -> None:
    run = Run(store, T0)
    run.cams = [1]
    run.tick(fps=15.0)
    (ev,) = events(store)
    assert ev.state is EventState.FIRING
    run.engine.acknowledge(ev.id, "operator")
    run.stop()

    now = run.now
    for restart in range(2):
        run = Run(store, now + 10)
        run.tick()  # no camera watched yet, no data: nothing closes
        run.tick()
        run.cams = [1]  # the worker runs again, no sample yet
        run.tick()
        run.tick(fps=15.0)  # still true
        run.tick(seconds=120, fps=15.0)  # past the repeat interval: acknowledged, so no repeat
        assert [(e.id, e.state) for e in events(store)] == [(ev.id, EventState.FIRING)], f"restart {restart + 1}"
        (st,) = run.engine.firing()
        assert st.acknowledged and st.event_id == ev.id
        assert not [c for c in run.changes if c.notify], f"restart {restart + 1} notified {run.changes}"
        now = run.now
        run.stop()

    # It resolves as the same event when it stops being true.
    run = Run(store, now + 10)
    run.cams = [1]
    run.tick(fps=15.0)
    run.tick(fps=150.0)
    (only,) = events(store)
    assert only.id == ev.id and only.state is EventState.RESOLVED and only.acknowledged_by == "operator"
    run.stop()


def test_an_event_no_rule_takes_back_closes_after_the_grace(store: Store) -> None:
    run = Run(store, T0)
    run.cams = [1]
    run.tick(fps=15.0)
    run.stop()
    run = Run(store, run.now + 10)  # the camera never comes back
    run.tick()
    assert events(store)[0].state is EventState.FIRING
    run.tick(seconds=run.engine.restore_grace + 1)
    (ev,) = events(store)
    assert ev.state is EventState.RESOLVED and "no longer evaluated" in ev.message
    assert run.engine.statuses(include_inactive=True) == [] or all(
        s.state is not AlertState.FIRING for s in run.engine.statuses(include_inactive=True))
    run.stop()
