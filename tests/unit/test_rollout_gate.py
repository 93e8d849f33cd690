"""The stage gate and the rollback checklist, per track: honest evidence, decision point 2,
reports, the plan's holds, a total rollback, the environment route."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app import __version__
from app.domain.audit import AuditEntry
from app.domain.errors import OperationError
from app.domain.operations import (
    TRACKS,
    CameraRef,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    StatsRequest,
    StopCamera,
    UpdateRule,
)
from app.rollout import (
    AuditLog,
    GateRefused,
    RolloutControl,
    RolloutError,
    RolloutSettingsError,
    Router,
)
from app.rollout.canary import CANARY_OPERATIONS, Canary
from app.rollout.control import SHADOW_OP
from app.rollout.health import GateEvidence, Status, evaluate_gate
from app.rollout.metrics import RolloutMetrics
from app.rollout.settings import DAY, RolloutSettings, Thresholds
from app.store import open_store
from tests.unit.test_rollout_fakes import NoSample, fake_pair, keys_for, sample_rule

NOW = 2_000_000.0
VERIFIED = {"at": NOW - 10, "passed": True, "mismatches": 0, "failures": 0, "version": __version__}


class Clock:
    def __init__(self, t: float = NOW):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Always:
    def random(self) -> float:
        return 0.0


# ---------------------------------------------------------------- the gate on synthetic evidence


def settings_at(track, pct, held_s, *, th=None, **kw):
    s = RolloutSettings(thresholds=th or Thresholds(), **kw)
    return s.with_track(track, use_domain=pct > 0, percent=pct, stage_entered_at=NOW - held_s)


def window(calls: dict[str, tuple[int, int]], *, d_err=0, d_ms=10.0, l_ms=10.0, mismatches=0):
    """``calls`` = op -> (domain calls, legacy calls); ``d_err`` domain errors on the first op."""
    m = RolloutMetrics(window_s=300, bucket_s=10, clock=lambda: 100.0)
    for i, (op, (d, lg)) in enumerate(calls.items()):
        for j in range(d):
            err = i == 0 and j < d_err
            m.record(op, "domain", d_ms / 1000, error=err, fallback=err)
        for _ in range(lg):
            m.record(op, "legacy", l_ms / 1000)
    for _ in range(mismatches):
        m.record_shadow(True)
    return m.summary()


def every(track, d=30, lg=30):
    return {op: (d, lg) for op in TRACKS[track]}


def failing(g):
    return {c.name: c.status for c in g.checks if c.status is not Status.PASS}


def test_from_zero_a_verification_must_be_fresh_and_of_this_version():
    ev = GateEvidence(window({}), settings_changed_at=NOW - 100, version=__version__)
    g = evaluate_gate(settings_at("rules", 0, 0), "rules", ev, NOW)
    assert (g.current, g.next, g.passed) == (0, 10, False) and failing(g) == {"verification": Status.FAIL}
    old = dict(VERIFIED, version="0.0.1")
    g = evaluate_gate(settings_at("rules", 0, 0, last_verify=old), "rules", ev, NOW)
    assert "ran on version 0.0.1, not on this version" in g.needs[0]
    stale = dict(VERIFIED, at=NOW - 200)  # before the settings change at NOW - 100
    g = evaluate_gate(settings_at("rules", 0, 0, last_verify=stale), "rules", ev, NOW)
    assert not g.passed and "older than the last settings change" in g.needs[0]
    assert evaluate_gate(settings_at("rules", 0, 0, last_verify=VERIFIED), "rules", ev, NOW).passed


def test_the_gate_passes_with_the_hold_coverage_no_errors_and_latency_in_bound():
    s = settings_at("rules", 10, DAY + 1, last_verify=VERIFIED)
    g = evaluate_gate(s, "rules", GateEvidence(window(every("rules")), version=__version__), NOW)
    assert (g.track, g.current, g.next) == ("rules", 10, 25)
    assert g.passed, g.needs


def test_missing_coverage_names_the_operations_still_unseen():
    s = settings_at("cameras", 10, DAY + 1, last_verify=VERIFIED)
    calls = {"camera_status": (500, 500), "list_status": (3, 3)}  # plenty of traffic, but two operations only
    g = evaluate_gate(s, "cameras", GateEvidence(window(calls), version=__version__), NOW)
    assert failing(g) == {"coverage": Status.PENDING}
    msg = g.needs[0]
    assert "too few: list_status 3" in msg
    unseen = msg.split("unseen on the domain path: ")[1].split(";")[0].split(", ")
    assert set(unseen) == set(TRACKS["cameras"]) - {"camera_status", "list_status"}


@pytest.mark.parametrize(("stage", "held", "kw", "reports", "item", "status"), [
    (10, DAY - 60, {}, (), "time_at_stage", Status.PENDING),
    (25, 3 * DAY - 60, {}, (), "time_at_stage", Status.PENDING),
    (50, 7 * DAY - 60, {}, (), "time_at_stage", Status.PENDING),
    (10, DAY + 1, {"d_err": 1}, (), "domain_error_rate", Status.FAIL),  # 1 error in 60 calls: 1.7 %
    (10, DAY + 1, {"d_ms": 40.0}, (), "latency", Status.FAIL),
    (10, DAY + 1, {"mismatches": 1}, (), "comparison_mismatches", Status.FAIL),
    (10, DAY + 1, {}, ("a report",), "open_reports", Status.FAIL),
])
def test_the_gate_holds_on_each_item(stage, held, kw, reports, item, status):
    s = settings_at("rules", stage, held, last_verify=VERIFIED)
    ev = GateEvidence(window(every("rules"), **kw), open_reports=reports, version=__version__)
    g = evaluate_gate(s, "rules", ev, NOW)
    assert not g.passed and failing(g) == {item: status}


def window_ms(calls: dict[str, tuple[int, float, int, float]]):
    """``calls`` = op -> (domain calls, domain ms, legacy calls, legacy ms)."""
    m = RolloutMetrics(window_s=300, bucket_s=10, clock=lambda: 100.0)
    for op, (d, d_ms, lg, l_ms) in calls.items():
        for _ in range(d):
            m.record(op, "domain", d_ms / 1000)
        for _ in range(lg):
            m.record(op, "legacy", l_ms / 1000)
    return m.summary()


def test_the_gate_compares_latency_per_operation_never_pooled():
    s = settings_at("cameras", 10, DAY + 1, last_verify=VERIFIED)
    base = {op: (30, 2.0, 30, 2.0) for op in TRACKS["cameras"]}
    # the domain path saw mostly the slow probe, legacy mostly the fast status: pooled, a 100 x "regression";
    # per operation both paths take the same time, so the gate passes
    mix = dict(base, probe_camera=(300, 300.0, 30, 300.0), camera_status=(30, 2.0, 300, 2.0))
    g = evaluate_gate(s, "cameras", GateEvidence(window_ms(mix), version=__version__), NOW)
    assert failing(g) == {}, g.needs
    # one operation 8 x slower on the domain path, hidden in a mix whose pooled P95 looks fine
    hidden = dict(mix, camera_status=(30, 16.0, 300, 2.0))
    g = evaluate_gate(s, "cameras", GateEvidence(window_ms(hidden), version=__version__), NOW)
    assert failing(g) == {"latency": Status.FAIL}
    assert g.needs[0].startswith("camera_status: domain P95") and "(limit 1.5 x)" in g.needs[0]
    # under the floor (a few ms) it is never a regression, whatever the ratio
    tiny = dict(base, camera_status=(30, 4.0, 30, 1.0))
    assert failing(evaluate_gate(s, "cameras", GateEvidence(window_ms(tiny), version=__version__), NOW)) == {}


def test_the_gate_latency_waits_for_one_operation_with_enough_calls_on_both_paths():
    s = settings_at("rules", 10, DAY + 1, last_verify=VERIFIED)
    few = {"create_rule": (30, 2.0, 5, 2.0), "update_rule": (30, 2.0, 8, 2.0)}
    g = evaluate_gate(s, "rules", GateEvidence(window_ms(few), version=__version__), NOW)
    assert failing(g) == {"latency": Status.INCONCLUSIVE}
    assert g.needs[0] == "update_rule: latency: too few calls to compare (domain 30, legacy 8, need 20 each)"


def test_the_canary_count_is_of_its_domain_calls():
    from app.rollout.control import CANARY_ACTOR, ROUTED, gate_entries

    def entry(path):
        return AuditEntry(op="camera_status", outcome="ok", path=path, latency_ms=1.0, actor=CANARY_ACTOR,
                          reason=ROUTED[0], at=datetime.now(UTC))

    kept, canary = gate_entries([entry("domain"), entry("legacy"), entry("legacy")], "cameras")
    assert len(kept) == 3 and canary == 1


def test_one_error_in_few_calls_is_inconclusive_and_holds():
    # 12 domain calls of each operation: enough for latency at a 10-call minimum, too few for the error rate
    s = settings_at("rules", 10, DAY + 1, th=Thresholds(gate_min_latency_calls=10), last_verify=VERIFIED)
    ev = GateEvidence(window(every("rules", 12, 30), d_err=1), version=__version__)
    g = evaluate_gate(s, "rules", ev, NOW)
    assert failing(g) == {"domain_error_rate": Status.INCONCLUSIVE} and "1 errors in 24 routed" in g.needs[0]


def test_the_plan_holds_and_a_track_is_complete_after_seven_days_at_100():
    assert [Thresholds().hold_s(p) for p in (10, 25, 50, 100)] == [DAY, 3 * DAY, 7 * DAY, 7 * DAY]
    ev = GateEvidence(window(every("rules", 30, 0)), version=__version__)  # 100 %: no legacy baseline
    g = evaluate_gate(settings_at("rules", 100, 6 * DAY, last_verify=VERIFIED), "rules", ev, NOW)
    assert g.next is None and not g.complete and g.left_s == pytest.approx(DAY)
    g = evaluate_gate(settings_at("rules", 100, 7 * DAY, last_verify=VERIFIED), "rules", ev, NOW)
    assert g.complete and not g.passed  # complete, and there is no stage to advance to
    # one legacy call in flight while 100 % began is no baseline: it neither holds nor judges latency
    ev = GateEvidence(window(every("rules", 30, 1)), version=__version__)
    g = evaluate_gate(settings_at("rules", 100, 7 * DAY, last_verify=VERIFIED), "rules", ev, NOW)
    assert g.complete, g.needs
    g = evaluate_gate(settings_at("rules", 50, 7 * DAY, last_verify=VERIFIED), "rules", ev, NOW)
    assert failing(g) == {"latency": Status.INCONCLUSIVE}  # below 100 % too few legacy calls still hold


def test_a_latch_holds_the_gate_and_names_resume():
    s = settings_at("cameras", 0, 0, last_verify=VERIFIED).with_track("cameras", latched=True, latch_reason="x")
    g = evaluate_gate(s, "cameras", GateEvidence(window({}), version=__version__), NOW)
    assert failing(g) == {"rollback_latch": Status.FAIL} and "rollout resume --track cameras" in g.needs[0]


# ---------------------------------------------------------------- on a router and a store


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield s
    s.dispose()


def make(store, n=8, env=None, wall=None, **kw):
    legacy, domain, state = fake_pair(n)
    wall = wall or Clock()
    kw.setdefault("rng", NoSample())
    r = Router(legacy, domain, store, keys_for(state), env=env or {}, wall=wall,
               audit=AuditLog(store, background=False), **kw)
    control = RolloutControl(store, env=env or {}, wall=wall, keys_provider=keys_for(state))
    return r, control, legacy, domain, state, wall


def small_gate(r):
    # latency of in-memory fakes is noise: the P95 bound is tested on synthetic windows above
    r.set_options({"gate_min_calls_per_op": 3, "gate_min_latency_calls": 5, "max_p95_ratio": 100,
                   "shadow_rate": 0.0}, actor="test")


def camera_calls(r, cams, *, force=None, actor=""):
    for cid in cams:
        for op, req in (("camera_status", CameraRef(cid)), ("list_status", ListStatus()),
                        ("camera_logs", LogsRequest(cid)), ("camera_snapshot", CameraRef(cid)),
                        ("probe_camera", ProbeRequest(cid)), ("camera_stats", StatsRequest(cid)),
                        ("start_camera", CameraRef(cid)), ("restart_camera", CameraRef(cid)),
                        ("stop_camera", StopCamera(cid)), ("deactivate_camera", CameraRef(cid)),
                        ("activate_camera", CameraRef(cid))):
            try:
                r.call(op, req, force=force, actor=actor)
            except OperationError:
                pass  # an answer (a stopped camera has no snapshot) is a call like any other


def test_forced_calls_and_verify_traffic_are_recorded_but_never_counted(store):
    r, control, legacy, domain, state, wall = make(store)
    small_gate(r)
    control.record_verification(True, 0, 0, actor="test")
    r.set(track="cameras", use_domain=True, percent=10, override_reason="test: skip decision point 2")
    wall.t += DAY + 1
    for _ in range(6):
        camera_calls(r, range(1, 9), force="domain")  # 6 x 88 forced domain calls
        camera_calls(r, range(1, 9), actor="verify")
    assert domain.count("camera_status") >= 48
    g = r.gate("cameras")
    assert {c.name: c.value for c in g.checks}["coverage"] == dict.fromkeys(TRACKS["cameras"], 0)
    assert "unseen on the domain path" in g.needs[0] and not g.passed
    window_ = r.metrics.summary()
    assert window_.path("domain").calls == 0  # not in the health window either
    with store.uow() as uow:  # but every call is audited, with its reason
        reasons = {e.reason for e in uow.audit.recent(2000) if e.op == "camera_status"}
    assert reasons == {"force_domain", "percent_in", "percent_out"}
    for _ in range(5):  # 5: the gate's latency minimum of domain calls of one operation
        camera_calls(r, range(1, 9))  # routed: 1 of 8 cameras and the station key are on the domain path
    g = r.gate("cameras")
    assert g.passed, g.needs
    r.close()


def test_at_10_percent_with_three_rules_create_rule_reaches_the_domain_path(store):
    with store.uow() as uow:
        uow.settings.set("rollout.salt", "fixed-for-the-test")
        uow.commit()
    r, control, legacy, domain, state, wall = make(store)
    for i in range(3):
        r.call("create_rule", CreateRule(sample_rule(f"seeded {i}")), force="legacy")
    r.set(track="rules", use_domain=True, percent=10, override_reason="test setup")
    r.reload()
    decisions = [r.call_with_decision("create_rule", CreateRule(sample_rule(f"low fps {i}")))[1] for i in range(20)]
    on = [d for d in decisions if d.path == "domain"]
    assert 0 < len(on) < 20 and all(d.reason == "percent_in" for d in on)
    r.reload()
    assert r.snapshot().key_share["rules"]["rule"]["domain"] >= 1  # at least one rule at a stage above 0
    r.close()


def rules_at_100_complete(r, control, wall):
    small_gate(r)
    control.record_verification(True, 0, 0, actor="test")
    r.set(track="rules", use_domain=True, percent=100, override_reason="test setup")
    for i in range(5):
        rule = r.call("create_rule", CreateRule(sample_rule(f"rule {i}"))).rule
        r.call("update_rule", UpdateRule(rule.id, {"threshold": 2.0}))


def test_decision_point_2_refuses_the_cameras_track_then_passes(store):
    r, control, legacy, domain, state, wall = make(store)
    rules_at_100_complete(r, control, wall)
    with pytest.raises(GateRefused) as e:
        r.advance(track="cameras")
    needs = " ".join(e.value.result.needs)
    assert "the rules track has not held 100 % through its gate" in needs and "left" in needs
    assert "has not been rehearsed" in needs
    with pytest.raises(GateRefused, match="decision point 2"):
        r.set(track="cameras", use_domain=True, percent=10)  # no back door through set
    wall.t += 7 * DAY + 1
    with pytest.raises(GateRefused) as e:
        r.advance(track="cameras")
    assert [c.name for c in e.value.result.checks if c.status is not Status.PASS] == ["dp2_rollback_rehearsed"]
    RolloutControl(store, env={}, wall=wall, version="0.0.1").record_rehearsal("cameras", True, [])
    with pytest.raises(GateRefused, match="rehearsal ran on version 0.0.1"):
        r.advance(track="cameras")
    control.record_rehearsal("cameras", True, [])
    s, g = r.advance(track="cameras", actor="integrator")
    assert g.passed and (s.track("cameras").percent, s.track("cameras").use_domain) == (10, True)
    assert s.track("rules").percent == 100
    r.close()


def test_decision_point_2_override_is_explicit_and_audited(store):
    r, control, *_ = make(store)
    with pytest.raises(GateRefused):
        r.advance(track="cameras", override_reason="   ")  # a blank reason is no reason
    s, g = r.advance(track="cameras", actor="integrator", override_reason="lab station, no rules in use")
    assert not g.passed and s.track("cameras").percent == 10
    with store.uow() as uow:
        (o,) = uow.audit.recent(5, op_prefix="rollout.override")
        (a,) = uow.audit.recent(5, op_prefix="rollout.advance")
    assert (o.key, o.actor, o.reason) == ("cameras", "integrator", "lab station, no rules in use")
    assert any("decision point 2" in n for n in o.detail["gate_needs"]) and a.reason == "cameras 0 -> 10"
    r.rollback(track="cameras", reason="t")
    with pytest.raises(GateRefused, match="latched"):
        r.advance(track="cameras", override_reason="an override never clears a latch")
    r.close()


def test_a_report_filed_while_the_page_reads_the_gates_is_never_hidden_by_the_cache(store):
    """The window's snapshot reads reports and gates on a task thread while the operator files a report:
    a snapshot that lists the report has a gate that counts it, and gates read across the filing are
    not cached (they would show the gate open for the cache's lifetime)."""
    r, control, legacy, domain, state, wall = make(store)
    control.record_verification(True, 0, 0, actor="test")
    real_checklist = r.control.checklist
    filed = []

    def checklist_while_a_report_is_filed(track, settings=None):
        if not filed:  # the operator files the report (and the station reloads) during the snapshot's reads
            filed.append(control.file_report(track="rules", text="rule did not fire", operator="desk"))
            r.reload()
        return real_checklist(track, settings)

    r.control.checklist = checklist_while_a_report_is_filed
    first = r.snapshot(gate_ttl=60)
    listed = first.reports.get("rules") or []
    gate = first.gates["rules"]
    # read before the filing: the list is empty; the gate may already count it; never the other way round
    assert not (listed and "open_reports" not in failing(gate))
    second = r.snapshot(gate_ttl=60)  # within the cache's lifetime: the stale reads were not kept
    assert [rep["text"] for rep in second.reports["rules"]] == ["rule did not fire"]
    assert failing(second.gates["rules"]).get("open_reports") == Status.FAIL
    r.close()


def test_an_open_report_holds_the_gate_until_it_is_resolved(store):
    r, control, legacy, domain, state, wall = make(store)
    control.record_verification(True, 0, 0, actor="test")
    assert r.gate("rules").passed
    rep = control.file_report(track="rules", text="the new rule did not fire", operator="desk", rule_id=None)
    assert (rep.track, rep.stage, rep.open) == ("rules", 0, True)
    g = r.gate("rules")
    assert failing(g) == {"open_reports": Status.FAIL} and "1 open problem report" in g.needs[0]
    assert "open_reports" not in failing(r.gate("cameras"))  # a report holds only its own track
    with pytest.raises(RolloutSettingsError, match="needs a note"):
        control.resolve_report(rep.id, by="desk", note=" ")
    control.resolve_report(rep.id, by="desk", note="the rule was disabled")
    assert r.gate("rules").passed
    with store.uow() as uow:
        ops = [e.op for e in uow.audit.recent(10) if e.op.startswith("rollout.report")]
    assert ops == ["rollout.report_resolved", "rollout.report"]
    with pytest.raises(RolloutSettingsError, match="camera 99, which does not exist"):
        control.file_report(track="cameras", text="x", camera_id=99)
    with pytest.raises(RolloutSettingsError, match="unknown rollout track 'camera'"):
        control.file_report(track="camera", text="x")
    with pytest.raises(RolloutSettingsError, match="needs a text"):
        control.file_report(track="rules", text="")
    assert len(control.list_reports()) == 1
    r.close()


def test_after_a_rollback_no_domain_code_runs_at_all_shadow_included(store):
    r, control, legacy, domain, state, wall = make(store, shadow_inline=True, rng=Always())
    r.set(use_domain=True, percent=100, override_reason="test setup")
    r.set_options({"shadow_rate": 1.0, "window_s": 60})
    legacy.calls.clear()
    camera_calls(r, [1, 2])
    r.call("create_rule", CreateRule(sample_rule("before")))
    assert domain.calls and any(op == "camera_status" for op, _ in legacy.calls)  # legacy ran as the shadow
    wall.t += 1
    r.rollback(track="all", actor="operator", reason="complaints")
    domain.calls.clear()
    for force in (None, "domain"):
        camera_calls(r, range(1, 9), force=force)
        rule = r.call("create_rule", CreateRule(sample_rule(f"after {force}")), force=force).rule
        r.call("update_rule", UpdateRule(rule.id, {"threshold": 1.0}), force=force)
    assert domain.calls == []  # routed, forced and shadow: not one call
    r.audit.flush()
    wall.t += 61
    for track in ("rules", "cameras"):
        c = control.checklist(track)
        assert c.complete, c.as_dict()
        assert {x.name for x in c.checks} >= {"no_domain_calls", "no_shadow_on_domain"}
    r.close()


def test_a_rollback_from_another_process_counts_from_when_the_station_applied_it(store):
    r, control, legacy, domain, state, wall = make(store, clock=Clock(0.0))  # the settings TTL never runs out
    r.set(track="cameras", use_domain=True, percent=100, override_reason="test setup")
    r.set_options({"window_s": 60})
    r.reload()
    wall.t += 1
    other = RolloutControl(store, env={}, wall=wall, keys_provider=keys_for(state))
    other.rollback(track="cameras", reason="from the command line")  # the running router has not seen it yet
    wall.t += 0.5
    assert r.call_with_decision("camera_status", CameraRef(1))[1].path == "domain"  # in flight
    wall.t += 0.5
    r.reload()  # what the station's database watcher does within a second
    wall.t += 0.5
    assert r.call_with_decision("camera_status", CameraRef(1))[1].path == "legacy"
    r.audit.flush()
    wall.t += 61
    c = other.checklist("cameras")
    assert c.complete, c.as_dict()
    msg = {x.name: x.message for x in c.checks}["no_domain_calls"]
    assert "applied the rollback 1.0 s after it; 1 calls were in flight before that" in msg
    r.close()


def test_without_a_station_applying_the_latch_a_domain_call_after_it_fails_the_checklist(store):
    r, control, legacy, domain, state, wall = make(store)
    r.set(track="cameras", use_domain=True, percent=100, override_reason="test setup")
    r.close()  # from here on only an old process (that records no latch) would use the database
    wall.t += 1
    control.rollback(track="cameras", reason="t")
    wall.t += 1
    with store.uow() as uow:  # that process's call, as its audit would have it
        uow.audit.add(AuditEntry(op="camera_status", outcome="ok", key="camera:1", path="domain",
                                 reason="percent_in", at=datetime.fromtimestamp(wall.t, UTC)))
        uow.commit()
    wall.t += 61
    c = control.checklist("cameras")
    assert {x.name for x in c.checks if x.status is Status.FAIL} == {"no_domain_calls"}


def test_the_checklist_fails_on_a_shadow_comparison_that_ran_the_domain_path(store):
    r, control, legacy, domain, state, wall = make(store)
    r.set(use_domain=True, percent=50, override_reason="test setup")
    wall.t += 1
    r.rollback(track="cameras", reason="t")
    with store.uow() as uow:  # what an old process on the same database would leave
        uow.audit.add(AuditEntry(op=SHADOW_OP, outcome="match", key="camera:1", path="domain",
                                 reason="camera_status"))
        uow.commit()
    c = control.checklist("cameras")
    assert {x.name for x in c.checks if x.status is Status.FAIL} == {"no_shadow_on_domain"}
    assert control.checklist("rules") is None  # the rules track was not rolled back
    r.close()


def test_a_shadow_sample_taken_before_the_latch_does_not_run_the_domain_path(store):
    r, control, legacy, domain, state, wall = make(store)
    r.set(track="cameras", use_domain=False, percent=0)
    _, d = r.call_with_decision("camera_status", CameraRef(1))  # legacy serves; a shadow would run domain
    r.rollback(track="cameras", reason="t")
    domain.calls.clear()
    assert r._compare("camera_status", CameraRef(1), d, None) is True
    assert domain.calls == []
    r.close()


def test_the_environment_route_is_a_rollback_audited_once(store):
    r, *_ = make(store)
    r.set(use_domain=True, percent=50, override_reason="test setup")
    r.close()
    env = {"USE_DOMAIN_SERVICE": "false", "ROLLOUT_PERCENT": "0"}
    r, control, *_ = make(store, env=env)
    for t in ("rules", "cameras"):
        ts = r.settings.track(t)
        assert ts.latched and "environment route: USE_DOMAIN_SERVICE=false ROLLOUT_PERCENT=0" in ts.latch_reason
        assert control.checklist(t) is not None
    r.close()
    r, *_ = make(store, env=env)  # the next start with the same environment: no second rollback
    r.close()
    with store.uow() as uow:
        entries = uow.audit.recent(10, op_prefix="rollout.rollback")
    assert sorted(e.key for e in entries) == ["cameras", "rules"]
    assert {(e.actor, e.detail["source"], e.detail["from_percent"], e.detail["stored_percent"])
            for e in entries} == {("environment", "environment", 0, 50)}


def test_a_per_track_environment_route_rolls_back_that_track_only(store):
    r, *_ = make(store)
    r.set(use_domain=True, percent=25, override_reason="test setup")
    r.close()
    r, *_ = make(store, env={"ROLLOUT_PERCENT_CAMERAS": "0"})
    assert r.settings.track("cameras").latched and not r.settings.track("rules").latched
    assert r.settings.track("rules").target_percent == 25
    r.close()


def test_bad_input_changes_nothing(store):
    r, control, *_ = make(store)
    before = control.load()
    for bad in ({"track": "camera", "percent": 10}, {"track": "rules", "percent": 101},
                {"track": "rules", "percent": "ten"}, {"track": "all", "use_domain": "maybe"}):
        with pytest.raises(RolloutSettingsError):
            r.set(override_reason="x", **bad)
    with pytest.raises(RolloutSettingsError, match="unknown rollout track"):
        r.advance(track="both tracks")
    with pytest.raises(GateRefused):
        r.advance(track="rules")  # the gate holds: not verified
    with pytest.raises(RolloutSettingsError, match="nothing to resume"):
        r.resume(track="rules", reason="x")
    with pytest.raises(RolloutError, match="unknown rollout track 'CAMERA'"):
        make(store, env={"USE_DOMAIN_SERVICE_CAMERA": "1"})
    assert control.load() == before
    with store.uow() as uow:
        assert not [e for e in uow.audit.recent(50) if e.op.startswith("rollout.") or
                    e.key.startswith("rollout.rules") or e.key.startswith("rollout.cameras")]
    r.close()


def test_canary_calls_are_routed_counted_and_stop_after_a_latch(store):
    r, control, legacy, domain, state, wall = make(store)
    small_gate(r)
    control.record_verification(True, 0, 0, actor="test")
    canary = Canary(r, lambda: sorted(state.cameras))
    r.set(track="cameras", use_domain=True, percent=50, override_reason="test setup")
    assert canary.step() is None  # rate 0: off
    r.set_options({"canary_rate": 60})
    made = [canary.step() for _ in range(len(CANARY_OPERATIONS) * 8)]
    assert {op for op, _ in made} == set(CANARY_OPERATIONS)
    assert {d.reason for _, d in made} == {"percent_in", "percent_out"}  # routed, never forced
    r.audit.flush()
    g = r.gate("cameras")
    err = next(c for c in g.checks if c.name == "domain_error_rate")
    on_domain = sum(d.path == "domain" for _, d in made)  # the canary's domain calls are the evidence it adds
    assert 0 < on_domain < len(made)
    assert err.status is Status.PASS and f"({on_domain} of the calls by the canary)" in err.message
    with store.uow() as uow:
        assert {e.actor for e in uow.audit.recent(500) if e.op in CANARY_OPERATIONS} == {"canary"}
    r.rollback(track="cameras", reason="t")
    domain.calls.clear()
    after = [canary.step() for _ in range(len(CANARY_OPERATIONS))]  # evidence for the checklist: on legacy
    assert {d.reason for _, d in after} == {"rollback_latch"} and domain.calls == []
    r.resume(track="cameras", reason="fixed")
    assert canary.step() is None  # at 0 % and not latched: nothing to collect
    r.close()
