"""End to end: a real supervisor runs the real worker on a live HTTP stream; the stream
vanishes and "camera offline" fires within its ``for`` + 2 s, then resolves when the
stream returns. Metrics feed, sampler and engine run on their own threads, on the
real clock, with events in a real SQLite file.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from app.alerts import AlertEngine
from app.alerts.templates import camera_offline
from app.domain import Camera
from app.domain.alerts import AlertChange, ChangeKind, EventState
from app.metrics import MetricsRegistry, MetricsSampler, SupervisorFeed
from app.store import open_store
from app.store.alert_events import AlertEventRepository
from app.supervisor import RestartPolicy, Supervisor, WorkerSpec, WorkerState
from app.supervisor.proctree import OWNER_ENV, find_by_env
from tests.support.stream_server import StreamServer

pytestmark = pytest.mark.slow

FOR = 3.0


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def test_offline_alert_fires_when_the_stream_vanishes_and_resolves_when_it_returns(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    with store.uow() as uow:
        cam = uow.cameras.add(Camera(name="gate", source="http://127.0.0.1/stream.ts"))
        rule = uow.rules.add(camera_offline(camera_id=cam.id, for_seconds=FOR))
        uow.commit()
    owner = f"t{secrets.token_hex(6)}"
    server = StreamServer(width=160, height=90, fps=10).start()
    sup = Supervisor(tmp_path / "run", tmp_path / "logs", owner=owner,
                     policy=RestartPolicy(heartbeat_interval=0.5, heartbeat_timeout=8.0, stable_after=1.0,
                                          backoff_initial=0.2, stop_timeout=3.0))
    registry = MetricsRegistry()
    feed = SupervisorFeed(sup, registry).start()
    sampler = MetricsSampler([feed], interval=1.0)
    engine = AlertEngine(registry, store=store, cameras=feed.watched_cameras, camera_name=lambda _: "gate")
    engine.load_rules()
    changes: list[AlertChange] = []
    got = threading.Condition()

    def on_change(c: AlertChange) -> None:
        with got:
            changes.append(c)
            got.notify_all()

    engine.subscribe(on_change)

    def first(kind: ChangeKind) -> AlertChange | None:
        return next((c for c in changes if c.kind is kind), None)

    try:
        sup.start()
        sampler.start()
        engine.start(interval=1.0)
        sup.start_worker(WorkerSpec(camera_id=cam.id, name="gate", source=server.url, stall_timeout=6.0))
        wait_for(lambda: sup.status(cam.id).state == WorkerState.RUNNING and sup.status(cam.id).source == "up"
                 and sup.status(cam.id).decoded > 5, 30, "the stream being decoded")
        wait_for(lambda: registry.latest("offline", {"camera": cam.id}, max_age=3) == 0.0, 10, "online in metrics")
        # a steady online period longer than the rule's duration, counted in the engine's own evaluations
        # (one a second): nothing may fire
        t0 = engine.ticks
        wait_for(lambda: engine.ticks >= t0 + FOR + 2, 3 * FOR + 10, "evaluations over a steady online period")
        assert first(ChangeKind.FIRING) is None
        pid = sup.status(cam.id).pid

        stopped_at = time.time()
        server.stop()
        fired = wait_for(lambda: first(ChangeKind.FIRING), FOR + 10, "camera offline to fire")
        delay = fired.at.timestamp() - stopped_at
        print(f"camera offline fired {delay:.2f} s after the stream stopped")
        assert delay <= FOR + 2.0, f"camera offline fired {delay:.2f} s after the stream stopped (for = {FOR:g} s)"
        assert fired.notify and fired.rule_name == rule.name and fired.subject == "camera gate"
        assert sup.status(cam.id).pid == pid  # the worker reconnects by itself; it was not restarted

        server.start()
        resolved = wait_for(lambda: first(ChangeKind.RESOLVED), 40, "camera offline to resolve")
        assert resolved.at > fired.at
        with store.uow() as uow:
            (ev,) = AlertEventRepository(uow.session).recent()
        assert ev.state is EventState.RESOLVED and ev.rule_id == rule.id and ev.camera_id == cam.id
        assert ev.threshold == 1.0 and ev.value == 0.0
        assert ev.fired_at is not None and ev.resolved_at is not None and ev.resolved_at > ev.fired_at
        # Stopped on purpose: not "offline", nothing fires.
        sup.stop_worker(cam.id)
        t0 = engine.ticks
        wait_for(lambda: engine.ticks >= t0 + FOR + 3, 3 * FOR + 10, "evaluations after the stop")
        assert [c.kind for c in changes].count(ChangeKind.FIRING) == 1
        assert engine.firing() == []
    finally:
        engine.stop()
        sampler.stop()
        feed.close()
        sup.shutdown(timeout=5.0)
        server.stop()
        store.dispose()
        deadline = time.monotonic() + 3.0
        while (left := find_by_env(OWNER_ENV, owner)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        assert not left, f"worker processes left: {[p.pid for p in left]}"
