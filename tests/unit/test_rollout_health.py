"""Health verdicts on synthetic windows; the auto-rollback latch (per track).

The stage gate and the rollback checklist are tested in ``test_rollout_gate.py``."""

from __future__ import annotations

import pytest

from app.domain.operations import CameraRef
from app.rollout import AuditLog, Router, Thresholds
from app.rollout.health import Status, Verdict, evaluate_health
from app.rollout.metrics import RolloutMetrics, WindowStats
from app.store import open_store
from tests.unit.test_rollout_fakes import NoSample, fake_pair, keys_for

TH = Thresholds(min_samples=50)
NOW = 2_000_000.0


class Clock:
    def __init__(self, t: float = 10_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def window(domain=0, legacy=0, d_err=0, d_fail=0, d_ms=10.0, l_ms=10.0, clock=None, metrics=None,
           mismatches=0) -> WindowStats:
    """Synthetic window: ``d_err`` domain errors that fell back (still successes), ``d_fail`` that failed."""
    clock = clock or Clock()
    m = metrics or RolloutMetrics(window_s=300, bucket_s=10, clock=clock)
    for i in range(domain):
        err = i < d_err + d_fail
        m.record("camera_status", "domain", d_ms / 1000, error=err, fallback=i < d_err, success=not (d_err <= i < d_err + d_fail))
    for _ in range(legacy):
        m.record("camera_status", "legacy", l_ms / 1000)
    for _ in range(mismatches):
        m.record_shadow(True)
    return m.summary()


def test_healthy_window_is_ok():
    v = evaluate_health(window(domain=100, legacy=100), TH)
    assert v.verdict is Verdict.OK and v.reasons == []


def test_domain_error_rate_alerts_when_its_lower_95_percent_bound_is_above_five_percent():
    v = evaluate_health(window(domain=100, legacy=100, d_err=11), TH)  # 11/100: interval 6.3 %-18.6 %
    assert v.verdict is Verdict.ALERT
    assert any("domain error rate 11/100" in r for r in v.reasons)
    # 6/100 is above 5 % but not with 95 % confidence (2.8 %-12.5 %): it holds, it does not alert
    assert evaluate_health(window(domain=100, legacy=100, d_err=6), TH).verdict is Verdict.INCONCLUSIVE
    assert evaluate_health(window(domain=200, legacy=200, d_err=1), TH).verdict is Verdict.OK


def test_end_to_end_success_below_95_percent_alerts():
    # 4 errors fell back (successes), 2 failed outright: error rate 6 %, success 98 % -> alert by error rate;
    # here only the success check: 0 fallbacks, 6 failures -> success 94 %
    v = evaluate_health(window(domain=100, legacy=100, d_fail=12), Thresholds(min_samples=50, max_domain_error_rate=0.5))
    assert v.verdict is Verdict.ALERT
    assert [c.name for c in v.checks if c.status is Status.FAIL] == ["camera_status: success"]


def test_domain_p95_above_one_and_a_half_legacy_p95_alerts():
    th = Thresholds(min_samples=50, failure_limit=1)
    v = evaluate_health(window(domain=100, legacy=100, d_ms=16.0, l_ms=10.0), th)
    assert v.verdict is Verdict.ALERT
    assert [c.name for c in v.checks if c.status is Status.FAIL] == ["camera_status: latency"]
    assert evaluate_health(window(domain=100, legacy=100, d_ms=14.0, l_ms=10.0), th).verdict is Verdict.OK


def test_few_calls_with_many_errors_alert_and_few_clean_calls_hold():
    v = evaluate_health(window(domain=20, legacy=100, d_err=10), TH)
    assert v.verdict is Verdict.ALERT  # 10/20 failed: the bound needs no 50 calls to be sure
    v = evaluate_health(window(domain=20, legacy=100), TH)
    assert v.verdict is Verdict.INCONCLUSIVE
    assert {c.status for c in v.checks} == {Status.INCONCLUSIVE}


def test_latency_inconclusive_when_legacy_has_too_few_calls_but_errors_still_alert():
    assert evaluate_health(window(domain=100, legacy=10), TH).verdict is Verdict.INCONCLUSIVE
    assert evaluate_health(window(domain=100, legacy=10, d_err=20), TH).verdict is Verdict.ALERT


def test_old_calls_slide_out_of_the_window():
    clock = Clock()
    m = RolloutMetrics(window_s=300, bucket_s=10, clock=clock)
    window(domain=100, legacy=100, d_err=50, clock=clock, metrics=m)
    assert evaluate_health(m.summary(), TH).verdict is Verdict.ALERT
    clock.t += 311
    s = m.summary()
    assert s.path("domain").calls == 0
    assert evaluate_health(s, TH).verdict is Verdict.INCONCLUSIVE


def test_window_percentiles_and_share():
    s = window(domain=30, legacy=90, d_ms=20.0, l_ms=10.0)
    assert s.domain_share == pytest.approx(0.25)
    assert s.path("domain").p95_ms == pytest.approx(20.0, rel=0.02)
    assert s.path("legacy").p50_ms == pytest.approx(10.0, rel=0.02)


# ---------------------------------------------------------------- with a router and a store


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield s
    s.dispose()


def failing_domain_router(store, clock, wall):
    legacy, domain, state = fake_pair(8)
    domain.fail["camera_status"] = lambda: RuntimeError("domain db down")
    r = Router(legacy, domain, store, keys_for(state), env={}, clock=clock, wall=wall,
               audit=AuditLog(store, background=False), health_interval=5.0, rng=NoSample())
    r.set(use_domain=True, percent=100, override_reason="test: both tracks at 100 %")
    r.set_options({"min_samples": 20})
    return r, legacy


def test_auto_rollback_latches_on_an_alert_and_wins_over_force(store):
    clock, wall = Clock(), Clock(NOW)
    r, legacy = failing_domain_router(store, clock, wall)
    events = []
    r.subscribe(lambda ev: events.append(ev.kind))
    for i in range(30):
        r.camera_status(CameraRef(1 + i % 8))  # all served by legacy after fallback
    assert not r.settings.latched
    clock.t += 6  # the next call runs the periodic health check
    r.camera_status(CameraRef(1))
    cams, rules = r.settings.track("cameras"), r.settings.track("rules")
    assert cams.latched and cams.latch_reason.startswith("auto-rollback (cameras): camera_status: domain error rate 31/31")
    assert (cams.use_domain, cams.percent) == (False, 0)
    assert not rules.latched and rules.target_percent == 100  # only the alerting track rolls back
    assert "latched" in events and "health" in events
    _, d = r.call_with_decision("camera_status", CameraRef(2), force="domain")
    assert (d.path, d.reason) == ("legacy", "rollback_latch")
    r.close()
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="rollout.rollback")
    assert e.actor == "auto-rollback" and e.detail["from_percent"] == 100 and e.key == "cameras"


def test_no_latch_when_auto_rollback_is_off(store):
    clock, wall = Clock(), Clock(NOW)
    r, _ = failing_domain_router(store, clock, wall)
    r.set_options({"auto_rollback": False})
    for i in range(30):
        r.camera_status(CameraRef(1 + i % 8))
    clock.t += 6
    assert r.check_health().verdict is Verdict.ALERT
    assert not r.settings.latched
    r.close()
