"""Health verdicts, stage gate and rollback checklist on synthetic windows; the auto-rollback latch."""

from __future__ import annotations

import pytest

from app.domain.operations import CameraRef
from app.rollout import AuditLog, GateRefused, RolloutControl, RolloutSettings, Router, Thresholds
from app.rollout.health import Status, Verdict, evaluate_gate, evaluate_health, rollback_checklist
from app.rollout.metrics import RolloutMetrics, WindowStats
from app.store import open_store
from tests.unit.test_rollout_fakes import NoSample, fake_pair, keys_for

TH = Thresholds(min_samples=50)


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


# ---------------------------------------------------------------- gate

NOW = 2_000_000.0
GATE_TH = Thresholds(min_samples=50, gate_min_calls=500, gate_min_hold_s=86400)
VERIFIED = {"at": NOW - 10, "passed": True, "mismatches": 0, "failures": 0}


def at_stage(pct, held_s, **kw):
    return RolloutSettings(use_domain=pct > 0, percent=pct, stage_entered_at=NOW - held_s, thresholds=GATE_TH, **kw)


def test_gate_from_zero_needs_only_a_passed_verification():
    g = evaluate_gate(at_stage(0, 0), window(), NOW)
    assert (g.current, g.next, g.passed) == (0, 10, False)
    assert [c.name for c in g.checks if c.status is not Status.PASS] == ["verification"]
    assert evaluate_gate(at_stage(0, 0, last_verify=VERIFIED), window(), NOW).passed


def test_gate_passes_with_enough_time_calls_low_errors_and_latency_in_bound():
    g = evaluate_gate(at_stage(10, 90_000, last_verify=VERIFIED), window(domain=600, legacy=600, d_err=3), NOW)
    assert (g.current, g.next) == (10, 25)
    assert g.passed, g.reasons


@pytest.mark.parametrize(("kw", "held", "failing", "status"), [
    ({"domain": 600, "legacy": 600}, 3600, "time_at_stage", Status.PENDING),
    ({"domain": 300, "legacy": 600}, 90_000, "domain_calls", Status.PENDING),
    ({"domain": 600, "legacy": 600, "d_err": 6}, 90_000, "domain_error_rate", Status.FAIL),
    ({"domain": 600, "legacy": 600, "d_ms": 20.0}, 90_000, "latency", Status.FAIL),
    ({"domain": 600, "legacy": 20}, 90_000, "latency", Status.INCONCLUSIVE),
    ({"domain": 600, "legacy": 600, "mismatches": 1}, 90_000, "comparison_mismatches", Status.FAIL),
])
def test_gate_holds_on_each_item(kw, held, failing, status):
    g = evaluate_gate(at_stage(25, held, last_verify=VERIFIED), window(**kw), NOW)
    assert not g.passed
    assert {c.name: c.status for c in g.checks if c.status is not Status.PASS} == {failing: status}


def test_gate_inconclusive_with_few_calls_never_passes_even_with_zero_hold():
    th = Thresholds(min_samples=50, gate_min_calls=0, gate_min_hold_s=0)
    s = RolloutSettings(use_domain=True, percent=10, stage_entered_at=NOW, thresholds=th, last_verify=VERIFIED)
    g = evaluate_gate(s, window(domain=10, legacy=10), NOW)
    assert not g.passed
    assert {c.status for c in g.checks if c.status is not Status.PASS} == {Status.INCONCLUSIVE}


def test_no_stage_after_100_and_latch_blocks():
    assert evaluate_gate(at_stage(100, 90_000, last_verify=VERIFIED), window(domain=600, legacy=600), NOW).next is None
    latched = RolloutSettings(latched=True, latch_reason="auto", last_verify=VERIFIED, thresholds=GATE_TH)
    assert not evaluate_gate(latched, window(), NOW).passed


# ---------------------------------------------------------------- rollback checklist


def test_rollback_checklist_pending_then_verified():
    s = RolloutSettings(latched=True, latched_at=NOW, thresholds=Thresholds(window_s=300, min_samples=50))
    c = rollback_checklist(s, 0, window(legacy=10), 30)
    assert not c.complete and not c.failed
    assert {x.name: x.status for x in c.checks}["no_domain_calls"] is Status.PENDING
    c = rollback_checklist(s, 0, window(legacy=80), 301)
    assert c.complete, c.as_dict()


def test_rollback_checklist_fails_on_a_domain_call_or_a_key_still_on_domain():
    s = RolloutSettings(latched=True, latched_at=NOW)
    c = rollback_checklist(s, 0, window(domain=1, legacy=80), 30)
    assert c.failed and {x.name for x in c.checks if x.status is Status.FAIL} == {"no_domain_calls"}
    assert rollback_checklist(s, 2, window(legacy=80), 400).failed


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
    r.set(use_domain=True, percent=100)
    r.set_options({"min_samples": 20})
    return r, legacy


def test_auto_rollback_latches_on_an_alert_and_wins_over_force(store):
    clock, wall = Clock(), Clock(NOW)
    r, legacy = failing_domain_router(store, clock, wall)
    events = []
    r.add_listener(lambda ev, payload: events.append(ev))
    for i in range(30):
        r.camera_status(CameraRef(1 + i % 8))  # all served by legacy after fallback
    assert not r.settings.latched
    clock.t += 6  # the next call runs the periodic health check
    r.camera_status(CameraRef(1))
    s = r.settings
    assert s.latched and s.latch_reason.startswith("auto-rollback (cameras): camera_status: domain error rate 31/31")
    assert (s.use_domain, s.percent) == (False, 0)
    assert "latched" in events and "health" in events
    _, d = r.call_with_decision("camera_status", CameraRef(2), force="domain")
    assert (d.path, d.reason) == ("legacy", "rollback_latch")
    r.close()
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="rollout.rollback")
    assert e.actor == "auto-rollback" and e.detail["from_percent"] == 100


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


def test_rollback_checklist_is_verified_from_the_audit_log(store):
    clock, wall = Clock(), Clock(NOW)
    legacy, domain, state = fake_pair(8)
    r = Router(legacy, domain, store, keys_for(state), env={}, clock=clock, wall=wall,
               audit=AuditLog(store, background=False), rng=NoSample())
    r.set(use_domain=True, percent=50)
    r.set_options({"min_samples": 5, "window_s": 60})
    wall.t += 1
    r.rollback(actor="operator", reason="manual")
    control = RolloutControl(store, env={}, wall=wall, keys_provider=keys_for(state))
    c = control.checklist()
    assert {x.name: x.status for x in c.checks}["keys_on_domain_zero"] is Status.PASS
    assert {x.name: x.status for x in c.checks}["no_domain_calls"] is Status.PENDING
    for i in range(10):
        wall.t += 1
        r.camera_status(CameraRef(1 + i % 8))
    r.audit.flush()
    wall.t += 61
    c = control.checklist()
    assert c.complete, c.as_dict()
    r.close()


def gate_router(store, clock, wall):
    legacy, domain, state = fake_pair(8)
    r = Router(legacy, domain, store, keys_for(state), env={}, clock=clock, wall=wall,
               audit=AuditLog(store, background=False), shadow_inline=True)
    # latency of in-memory fakes is noise: the P95 bound is tested on synthetic windows above
    r.set_options({"min_samples": 10, "gate_min_calls": 20, "gate_min_hold_s": 3600, "shadow_rate": 0.0,
                   "max_p95_ratio": 100})
    RolloutControl(store, env={}, wall=wall).record_verification(True, 0, 0, actor="test")
    return r, legacy, domain


def test_gate_judged_on_real_router_traffic_then_advance(store):
    clock, wall = Clock(), Clock(NOW)
    r, legacy, domain = gate_router(store, clock, wall)
    s, g = r.advance(actor="integrator")
    assert (g.current, s.percent, s.use_domain) == (0, 10, True)
    r.set(percent=50)  # more traffic on both paths for the test
    for i in range(80):
        wall.t += 1
        r.camera_status(CameraRef(1 + i % 8))
    with pytest.raises(GateRefused, match="h at 50 %"):
        r.advance()
    wall.t += 3600
    s, g = r.advance(actor="integrator")
    assert (g.current, s.percent) == (50, 100), g.as_dict()
    snap = r.snapshot()
    assert snap.stage == 100 and snap.key_share["camera"]["domain"] == 8
    r.close()


def test_a_shadow_mismatch_at_the_stage_holds_the_gate(store):
    clock, wall = Clock(), Clock(NOW)
    r, legacy, domain = gate_router(store, clock, wall)
    r.advance()
    r.set(percent=50)
    r.set_options({"shadow_rate": 1.0})
    from dataclasses import replace

    domain.tamper["camera_status"] = lambda st: replace(st, restarts=st.restarts + 1)
    for i in range(40):
        wall.t += 1
        r.camera_status(CameraRef(1 + i % 8))
    wall.t += 3600
    r.audit.flush()
    g = RolloutControl(store, env={}, wall=wall).gate()
    assert not g.passed
    assert {c.name: c.status for c in g.checks}["comparison_mismatches"] is Status.FAIL
    r.close()


def test_snapshot_has_everything_the_ui_shows(store):
    import json

    clock, wall = Clock(), Clock(NOW)
    r, legacy, domain = gate_router(store, clock, wall)
    r.set(use_domain=True, percent=25)
    domain.fail["camera_logs"] = lambda: RuntimeError("x")
    from app.domain.operations import LogsRequest

    for i in range(1, 9):
        r.camera_status(CameraRef(i))
        r.camera_logs(LogsRequest(i))
    snap = r.snapshot()
    assert snap.target_percent == 25 and snap.stage == 25
    assert snap.key_share["camera"]["domain"] == 2 and snap.key_share["camera"]["keys"] == 8
    assert snap.actual_call_share == pytest.approx(0.25)
    logs = snap.window.per_op["camera_logs"]["domain"]
    assert (logs.calls, logs.errors, logs.fallbacks, logs.successes) == (2, 2, 2, 2)
    assert snap.health.verdict is Verdict.INCONCLUSIVE and snap.health.reasons
    assert snap.gate is not None and snap.gate.next == 50
    doc = json.loads(json.dumps(snap.as_dict()))
    assert doc["window"]["per_op"]["camera_status"]["legacy"]["calls"] == 6
    assert {c["name"] for c in doc["gate"]["checks"]} >= {"time_at_stage", "domain_calls", "latency"}
    # 2 failures of 2 domain calls: fewer than min_failures (3), so the series stays at the limit
    assert r.health_metrics()["domain_error_rate"] == pytest.approx(0.05)
    assert doc["health"]["needs"]["camera_logs"]["domain"] > 0
    r.close()
