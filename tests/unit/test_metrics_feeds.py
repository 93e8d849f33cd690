"""Feeds: psutil station figures, rollout figures from the router's real types, supervisor events.

The supervisor feed is driven here by the supervisor's own event and status
types through a minimal in-test stand-in; the real supervisor with a real
worker is exercised by tests/integration/test_alerts_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.metrics import MetricsRegistry, MetricsSampler, RolloutFeed, StationFeed, SupervisorFeed
from app.rollout.health import evaluate_health, health_metrics
from app.rollout.metrics import RolloutMetrics
from app.rollout.settings import Thresholds
from app.supervisor import ProcessStats, SupervisorEvent, WorkerState, WorkerStatus

T0 = 1_800_000_000.0


def test_station_feed_reads_real_figures(tmp_path: Path) -> None:
    reg = MetricsRegistry()
    feed = StationFeed(tmp_path, reg)
    feed.poll(T0)
    cpu = reg.latest("cpu_percent")
    mem = reg.latest("memory_percent")
    disk = reg.latest("disk_free_percent")
    assert cpu is not None and 0.0 <= cpu <= 100.0
    assert mem is not None and 0.0 < mem < 100.0
    assert disk is not None and 0.0 < disk <= 100.0
    assert reg.latest("disk_free_gb") > 0
    assert reg.latest("load1") is not None and reg.latest("load1") >= 0
    # Temperature only where the machine reports it; never a made-up value.
    import psutil

    temps = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
    has = any(t.current is not None for v in temps.values() for t in v)
    assert (reg.latest("temperature_c") is not None) == has
    # Station series carry no labels: they are not confused with a camera's CPU.
    assert reg.keys("cpu_percent") == [("cpu_percent", ())]


def test_rollout_feed_from_a_mapping() -> None:
    reg = MetricsRegistry()
    snap = {"domain_error_rate": 0.02, "success_rate": None, "p95_ratio": 1.2,
            "ops": {"start_camera": {"domain": {"calls": 10, "p95_ms": 4.5}}}}
    RolloutFeed(lambda: snap, reg).poll(T0)
    assert reg.latest("domain_error_rate") == 0.02
    assert reg.latest("success_rate") is None  # None writes nothing: rules see no data
    assert reg.latest("p95_ratio") == 1.2
    assert reg.latest("rollout_p95_ms", {"op": "start_camera", "path": "domain"}) == 4.5
    with pytest.raises(TypeError):
        RolloutFeed(lambda: 42, reg).poll(T0)


def _router_like_snapshot(metrics: RolloutMetrics, th: Thresholds) -> SimpleNamespace:
    """The fields of ``Router.snapshot()`` the feed reads, built from the rollout's real functions."""
    stats = metrics.summary(th.window_s)
    health = evaluate_health(stats, th)
    return SimpleNamespace(metrics=health_metrics(health), health=health, window=stats,
                           actual_call_share=stats.domain_share, target_percent=25)


def test_rollout_feed_from_router_figures_honours_inconclusive() -> None:
    now = [100.0]
    rm = RolloutMetrics(window_s=300, bucket_s=10, clock=lambda: now[0])
    th = Thresholds(min_samples=50)
    for i in range(10):  # too few domain calls to tell: inconclusive, the series stay at their limits
        rm.record("camera_status", "domain", 0.002, error=i < 1)
        rm.record("camera_status", "legacy", 0.001)
    reg = MetricsRegistry()
    feed = RolloutFeed(lambda: _router_like_snapshot(rm, th), reg, per_op=True)
    feed.poll(T0)
    lean = MetricsRegistry()
    RolloutFeed(lambda: _router_like_snapshot(rm, th), lean).poll(T0)
    assert lean.latest("rollout_calls", {"path": "domain"}) == 10
    assert not any(dict(k[1]).get("op") for k in lean.keys())  # per-operation series only on request
    assert 0 < reg.latest("domain_error_rate") < 0.05  # the lower 95 % bound of 1/10
    assert reg.latest("p95_ratio") is None  # fewer than min_samples calls: not compared
    assert reg.latest("health_inconclusive") == 0
    assert reg.latest("domain_share") == pytest.approx(0.5)
    assert reg.latest("rollout_calls", {"op": "camera_status", "path": "domain"}) == 10
    assert reg.latest("rollout_errors", {"path": "domain"}) == 1
    for i in range(100):
        rm.record("camera_status", "domain", 0.010, error=i < 12)
        rm.record("camera_status", "legacy", 0.001)
    feed.poll(T0 + 1)
    lo = reg.latest("domain_error_rate")  # the lower 95 % bound of 13/110
    assert 0.05 < lo < 13 / 110
    # 10 ms vs 1 ms, but a first look: the failure limit (3 windows) caps the ratio at the bound
    assert reg.latest("p95_ratio") == pytest.approx(1.5)


class StandInSupervisor:
    """Just the three calls the feed makes, answering with the supervisor's own types."""

    def __init__(self) -> None:
        self.subscribers = []
        self.status: dict[int, WorkerStatus] = {}
        self.proc: dict[int, ProcessStats] = {}

    def subscribe(self, cb):
        self.subscribers.append(cb)
        return lambda: self.subscribers.remove(cb)

    def statuses(self) -> dict[int, WorkerStatus]:
        return dict(self.status)

    def stats(self, camera_id: int) -> ProcessStats | None:
        return self.proc.get(camera_id)

    def emit(self, kind: str, cid: int, state: WorkerState, at: float, **detail) -> None:
        for cb in list(self.subscribers):
            cb(SupervisorEvent(kind, cid, state, detail, at))


def test_supervisor_feed_series() -> None:
    sup = StandInSupervisor()
    reg = MetricsRegistry()
    feed = SupervisorFeed(sup, reg).start()
    run = WorkerState.RUNNING
    sup.status[1] = WorkerStatus(1, run, pid=10, restarts=0, source="up")
    sup.proc[1] = ProcessStats(pid=10, cpu_percent=12.5, rss_bytes=50_000_000, threads=7, children=0, at=T0)
    sup.emit("state", 1, run, T0, **{"from": "starting", "to": "running"})
    for i in range(5):
        sup.emit("heartbeat", 1, run, T0 + i, type="heartbeat", ts=T0 + i, fps=25.0, decoded=100 * i,
                 dropped=10 * i, motion=0.3 if i == 2 else 0.0, motion_active=i == 2, source="up",
                 last_frame_age=0.04)
    feed.poll(T0 + 10)
    lab = {"camera": 1}
    assert reg.latest("fps", lab) == 25.0
    assert reg.latest("dropped_rate", lab) == pytest.approx(10.0)
    assert reg.latest("last_frame_age", lab) == 0.04
    assert reg.latest("offline", lab) == 0.0
    assert reg.latest("no_motion_seconds", lab) == pytest.approx(8.0)  # motion at T0 + 2
    assert reg.latest("cpu_percent", lab) == 12.5
    assert reg.latest("rss_mb", lab) == 50.0
    assert reg.latest("stall_rate", lab) == 0
    assert feed.watched_cameras() == [1]
    # Source down: offline; a stall that ends in a restart counts once; a crash restart once more.
    sup.status[1] = WorkerStatus(1, run, pid=10, restarts=0, source="down")
    feed.poll(T0 + 11)
    assert reg.latest("offline", lab) == 1.0
    sup.emit("state", 1, WorkerState.STALLED, T0 + 12, **{"from": "running", "to": "stalled"})
    sup.status[1] = WorkerStatus(1, run, pid=11, restarts=1, source="up")
    feed.poll(T0 + 13)
    assert reg.latest("stall_rate", lab) == 1
    assert reg.latest("offline", lab) == 0.0
    sup.status[1] = WorkerStatus(1, WorkerState.BACKOFF, restarts=2)
    feed.poll(T0 + 14)
    assert reg.latest("stall_rate", lab) == 2
    assert reg.latest("restarts", lab) == 2
    assert reg.latest("offline", lab) == 1.0
    # An hour later the incidents have aged out.
    sup.status[1] = WorkerStatus(1, run, pid=12, restarts=2, source="up")
    feed.poll(T0 + 3700)
    assert reg.latest("stall_rate", lab) == 0
    # Stopped on purpose: no longer watched, nothing more written.
    sup.status[1] = WorkerStatus(1, WorkerState.STOPPED, restarts=2)
    n = reg.writes
    feed.poll(T0 + 3701)
    assert reg.writes == n
    assert feed.watched_cameras() == []
    # Started again: "no motion" counts from the new start, not from the first one.
    sup.status[1] = WorkerStatus(1, run, pid=13, restarts=2, source="up")
    feed.poll(T0 + 4000)
    feed.poll(T0 + 4005)
    assert reg.latest("no_motion_seconds", lab) == 5.0
    feed.close()
    assert sup.subscribers == []


def test_sampler_survives_a_failing_feed() -> None:
    reg = MetricsRegistry()

    class Broken:
        def poll(self, now: float) -> None:
            raise RuntimeError("boom")

    class Good:
        def poll(self, now: float) -> None:
            reg.record("x", 1.0, ts=now)

    s = MetricsSampler([Broken(), Good()])
    s.tick(T0)
    assert s.errors == 1 and reg.latest("x") == 1.0
