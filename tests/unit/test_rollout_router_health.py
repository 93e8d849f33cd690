"""The router carries the health state between checks: the latency failure limit, the inconclusive
warning through the alert engine, and the side-effect mark (fakes, an injectable clock, no sleeping)."""

from __future__ import annotations

import pytest

from app.alerts import AlertEngine
from app.alerts.templates import rollout_inconclusive
from app.domain.effects import mark_side_effect
from app.domain.operations import CameraRef, SideEffectFailure, StopCamera
from app.metrics import MetricsRegistry, RolloutFeed
from app.rollout import Router
from app.rollout.health import Verdict
from app.rollout.metrics import DOMAIN, LEGACY
from tests.unit.test_rollout_fakes import FakeOps, NoSample, fake_pair, keys_for

ON = {"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "50"}


class Clock:
    def __init__(self, t: float = 50_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def scratch_router(env=ON, clock=None, wall=None, **kw):
    legacy, domain, state = fake_pair(8)
    r = Router(legacy, domain, None, keys_for(state), env=env, clock=clock or Clock(), wall=wall or Clock(1e9),
               rng=NoSample(), **kw)
    return r, legacy, domain


def test_a_latency_regression_latches_after_three_disjoint_failing_windows():
    clock = Clock()
    r, _, _ = scratch_router(clock=clock)
    latched_at = None
    for window in range(4):
        for _ in range(60):
            r.metrics.record("camera_logs", DOMAIN, 0.030)
            r.metrics.record("camera_logs", LEGACY, 0.010)
        v = r.check_health()
        if r.settings.latched and latched_at is None:
            latched_at, at_latch = window, v
        clock.t += 301
    assert latched_at == 2  # the third window
    assert "camera_logs: domain P95" in r.settings.latch_reason
    assert "in 3 consecutive windows" in r.settings.latch_reason
    assert at_latch.verdict is Verdict.ALERT and at_latch.alerting_tracks == ["cameras"]
    assert r.settings.track("cameras").latched and not r.settings.track("rules").latched
    r.close()


def test_equal_paths_never_latch_however_often_health_is_checked():
    clock = Clock()
    r, _, _ = scratch_router(clock=clock)
    for _ in range(40):
        for _ in range(30):
            r.metrics.record("probe_camera", DOMAIN, 0.296)
            r.metrics.record("camera_status", LEGACY, 0.001)
        r.metrics.record("probe_camera", LEGACY, 0.296)
        r.metrics.record("camera_status", DOMAIN, 0.001)
        r.check_health()
        clock.t += 30
    assert not r.settings.latched
    r.close()


def test_a_long_inconclusive_track_raises_the_warning_through_the_alert_engine():
    clock = Clock()
    wall = Clock(1e9)
    r, _, _ = scratch_router(clock=clock, wall=wall)
    reg = MetricsRegistry()
    feed = RolloutFeed(r.snapshot, reg)
    engine = AlertEngine(reg, rules=[rollout_inconclusive()], clock=wall, async_writes=False)
    try:
        for _ in range(13):  # an hour of a trickle: 2 calls every 5 minutes
            r.camera_status(CameraRef(1))
            r.camera_status(CameraRef(2))
            r.check_health()
            feed.poll(wall.t)
            engine.tick(wall.t)
            clock.t += 300
            wall.t += 300
        firing = engine.firing()
        assert [f.rule_name for f in firing] == ["Rollout: not enough domain traffic to judge"]
        snap = r.snapshot()
        assert snap.health.warnings and "not enough domain traffic" in snap.health.warnings[0]
        needs = snap.as_dict()["health"]["needs"]
        assert needs["camera_status"]["domain"] > 0  # rollout status / the page can say how many
    finally:
        engine.stop()
        r.close()


class MarksThenFails(FakeOps):
    """A domain path that marks a spawn and then fails (the worker would be running)."""

    def start_camera(self, req):
        self._enter("start_camera", req)
        mark_side_effect(f"spawn: the worker of camera {req.camera_id}")
        raise RuntimeError("status read after the spawn failed")


def test_a_failure_after_the_side_effect_mark_is_never_retried_on_legacy():
    legacy, _, state = fake_pair(8)
    domain = MarksThenFails(state, "domain")
    r = Router(legacy, domain, None, keys_for(state), env={"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "100"},
               clock=Clock(), wall=Clock(1e9), rng=NoSample())
    with pytest.raises(SideEffectFailure) as ei:
        r.start_camera(CameraRef(3))
    assert ei.value.effects == ("spawn: the worker of camera 3",)
    assert "spawn: the worker of camera 3" in str(ei.value) and "status read" in str(ei.value)
    assert legacy.count("start_camera") == 0  # not retried
    d = r.last_decision
    assert d.path == DOMAIN and not d.fallback
    st = r.metrics.summary().per_op["start_camera"][DOMAIN]
    assert (st.calls, st.errors, st.fallbacks, st.successes) == (1, 1, 0, 0)
    # a failure before any mark still falls back
    domain.fail["stop_camera"] = lambda: RuntimeError("db down before anything happened")
    r.stop_camera(StopCamera(3))
    assert legacy.count("stop_camera") == 1 and r.last_decision.fallback
    r.close()
