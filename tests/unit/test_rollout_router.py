"""Router: decision order, stickiness across restarts, env overrides, fallback rules, audit, shadow."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import NotFound
from app.domain.operations import (
    CameraRef,
    CreateRule,
    ListStatus,
    SideEffectFailure,
    StationOperations,
    StopCamera,
    UpdateRule,
)
from app.rollout import (
    AuditLog,
    Force,
    RolloutControl,
    RolloutError,
    RolloutSettings,
    Router,
    TrackSettings,
)
from app.rollout.bucketing import Population, domain_count
from app.rollout.decision import decide
from app.rollout.settings import ENV_PERCENT, ENV_USE_DOMAIN
from app.store import open_store
from tests.unit.test_rollout_fakes import NoSample, fake_pair, keys_for, sample_rule

#: state set up for a test of something else than the gate: the gate is tested in test_rollout_gate.py
SETUP = "test setup"


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'station.db'}"


@pytest.fixture
def store(db_url):
    s = open_store(db_url)
    yield s
    s.dispose()


def make_router(store, n=8, env=None, **kw):
    legacy, domain, state = fake_pair(n)
    kw.setdefault("rng", NoSample())
    kw.setdefault("audit", AuditLog(store, background=False) if store is not None else None)
    r = Router(legacy, domain, store, keys_for(state), env=env or {}, **kw)
    return r, legacy, domain, state


def domain_cameras(router, n=8):
    return {i for i in range(1, n + 1) if router.decide("camera_status", CameraRef(i)).path == "domain"}


def test_router_is_a_station_operations(store):
    r, *_ = make_router(store)
    assert isinstance(r, StationOperations)
    assert r.camera_status(CameraRef(1)).camera_id == 1
    r.close()


def test_eight_cameras_25_percent_exactly_two_same_after_restart_and_kept_at_50(db_url):
    store = open_store(db_url)
    r, legacy, domain, _ = make_router(store)
    r.set(use_domain=True, percent=25, actor="test", override_reason=SETUP)
    first = domain_cameras(r)
    assert len(first) == 2
    for i in range(1, 9):
        r.camera_status(CameraRef(i))
    assert domain.count("camera_status") == 2 and legacy.count("camera_status") == 6
    r.close()
    store.dispose()

    store = open_store(db_url)  # a restart: new process state, same database
    r2, *_ = make_router(store)
    assert domain_cameras(r2) == first
    r2.set(percent=50, actor="test", override_reason=SETUP)
    at50 = domain_cameras(r2)
    assert len(at50) == 4 and first <= at50
    r2.close()
    store.dispose()


def test_every_decision_carries_its_reason(store):
    r, *_ = make_router(store)
    assert r.decide("camera_status", CameraRef(1)).reason == "domain_off"
    r.set(use_domain=True, percent=100, override_reason=SETUP)
    _, d = r.call_with_decision("camera_status", CameraRef(1))
    assert (d.path, d.reason, d.key) == ("domain", "percent_in", "camera:1")
    r.set(percent=0, override_reason=SETUP)
    assert r.decide("camera_status", CameraRef(1)).reason == "percent_out"
    assert r.decide("camera_status", CameraRef(1), Force.DOMAIN).reason == "force_domain"
    r.rollback(actor="test")
    d = r.decide("camera_status", CameraRef(1), Force.DOMAIN)
    assert (d.path, d.reason) == ("legacy", "rollback_latch")
    r.close()


def test_keys_per_operation():
    from app.rollout.decision import routing_key

    assert routing_key("create_rule", CreateRule(sample_rule("x"))) == ("rule", "rule:x")
    assert routing_key("update_rule", UpdateRule(7, {})) == ("rule", "rule:7")
    assert routing_key("list_status", ListStatus()) == ("station", "station:list_status")
    assert routing_key("stop_camera", StopCamera(3)) == ("camera", "camera:3")


settings_st = st.builds(
    TrackSettings, name=st.sampled_from(["rules", "cameras"]), use_domain=st.booleans(),
    percent=st.integers(0, 100), latched=st.booleans())
salt_st = st.text(min_size=1, max_size=8)


@given(settings_st, salt_st, st.integers(1, 50), st.sampled_from([Force.DOMAIN, Force.LEGACY]))
def test_force_wins_over_toggle_and_percent_but_not_over_the_latch(s, salt, cam, force):
    pop = Population(salt, [f"camera:{i}" for i in range(1, 20)])
    d = decide(s, pop, f"camera:{cam}", force)
    if s.latched:
        assert (d.path, d.reason) == ("legacy", "rollback_latch")
    else:
        assert d.path == force.value and d.forced


@given(settings_st, salt_st, st.integers(1, 50), st.sampled_from([None, Force.NONE, "none"]))
def test_no_force_follows_toggle_then_percent(s, salt, cam, force):
    pop = Population(salt, [f"camera:{i}" for i in range(1, 20)])
    d = decide(s, pop, f"camera:{cam}", force)
    if s.latched or not s.use_domain:
        assert d.path == "legacy"
    else:
        assert d.path == ("domain" if pop.is_domain(f"camera:{cam}", s.percent) else "legacy")


bool_text = st.sampled_from(["1", "0", "true", "false", "on", "off", "yes", "no", "TRUE", " On "])


@given(st.booleans(), st.integers(0, 100), st.none() | bool_text, st.none() | st.integers(0, 100))
def test_environment_overrides_persisted_settings(stored_use, stored_pct, env_use, env_pct):
    env = {}
    if env_use is not None:
        env[ENV_USE_DOMAIN] = env_use
    if env_pct is not None:
        env[ENV_PERCENT] = str(env_pct)
    stored = {f"rollout.{t}.{k}": v for t in ("rules", "cameras")
              for k, v in (("use_domain", stored_use), ("percent", stored_pct))}
    both = RolloutSettings.from_stored(stored, env)
    want_use = stored_use if env_use is None else env_use.strip().lower() in ("1", "true", "on", "yes")
    for s in both.tracks.values():  # the two-track variables set both tracks
        assert s.use_domain == want_use
        assert s.percent == (stored_pct if env_pct is None else env_pct)
        assert (s.stored_use_domain, s.stored_percent) == (stored_use, stored_pct)
        assert set(s.locked_fields()) == {f for f, v in (("use_domain", env_use), ("percent", env_pct))
                                          if v is not None}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 100), st.integers(1, 100))  # env 0 over a running track is a rollback: test_rollout_gate
def test_environment_override_wins_in_a_router_over_the_store(store, stored, env_pct):
    RolloutControl(store, env={}).set(use_domain=True, percent=stored, override_reason=SETUP)
    r, *_ = make_router(store, env={ENV_PERCENT: str(env_pct), ENV_USE_DOMAIN: "1"})
    assert r.settings.track("cameras").percent == env_pct and r.settings.track("rules").percent == env_pct
    assert len(domain_cameras(r)) == domain_count(env_pct, 8)
    assert r.locked_fields() == {f"{t}.{f}": v for t in ("rules", "cameras")
                                 for f, v in (("percent", ENV_PERCENT), ("use_domain", ENV_USE_DOMAIN))}
    r.close()


def test_bad_environment_value_is_refused_with_its_name(store):
    with pytest.raises(RolloutError, match="ROLLOUT_PERCENT='150'"):
        make_router(store, env={ENV_PERCENT: "150"})
    with pytest.raises(RolloutError, match="USE_DOMAIN_SERVICE='maybe'"):
        make_router(store, env={ENV_USE_DOMAIN: "maybe"})


# ---------------------------------------------------------------- fallback


def all_domain(store, **kw):
    r, legacy, domain, state = make_router(store, **kw)
    r.set(use_domain=True, percent=100, override_reason=SETUP)
    return r, legacy, domain, state


def figures(r, op, path="domain"):
    return r.metrics.summary().per_op[op][path]


def test_unexpected_domain_failure_before_side_effect_falls_back_and_is_counted(store):
    r, legacy, domain, _ = all_domain(store)
    domain.fail["camera_status"] = lambda: RuntimeError("connection reset")
    res, d = r.call_with_decision("camera_status", CameraRef(3))
    assert res.camera_id == 3 and legacy.count("camera_status") == 1
    assert (d.path, d.fallback, d.served_by, d.fallback_cause) == ("domain", True, "legacy", "RuntimeError")
    f = figures(r, "camera_status")
    assert (f.calls, f.errors, f.fallbacks, f.successes) == (1, 1, 1, 1)
    r.close()
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="camera_status")
    assert (e.outcome, e.fallback, e.path, e.detail["fallback_cause"]) == ("fallback_ok", True, "domain", "RuntimeError")


def test_operation_error_is_an_answer_and_never_falls_back(store):
    r, legacy, domain, _ = all_domain(store)
    with pytest.raises(NotFound):
        r.camera_status(CameraRef(99))
    assert legacy.count("camera_status") == 0
    assert r.last_decision.fallback is False
    f = figures(r, "camera_status")
    assert (f.calls, f.errors, f.fallbacks, f.successes, f.answers) == (1, 0, 0, 1, 1)
    r.close()


def test_failure_after_side_effect_is_reported_not_retried(store):
    r, legacy, domain, _ = all_domain(store)
    domain.fail["start_camera"] = lambda: SideEffectFailure("start_camera", OSError("pidfile"))
    with pytest.raises(SideEffectFailure):
        r.start_camera(CameraRef(1))
    assert legacy.count("start_camera") == 0
    f = figures(r, "start_camera")
    assert (f.calls, f.errors, f.fallbacks, f.successes) == (1, 1, 0, 0)
    with store.uow() as uow:  # a write is audited at once, no flush needed
        (e,) = uow.audit.recent(5, op_prefix="start_camera")
    assert e.outcome == "failed_after_side_effect" and "pidfile" in e.detail["exception"]
    r.close()


def test_forced_domain_call_does_not_fall_back(store):
    r, legacy, domain, _ = make_router(store)
    domain.fail["camera_logs"] = lambda: RuntimeError("boom")
    from app.domain.operations import LogsRequest

    with pytest.raises(RuntimeError):
        r.call("camera_logs", LogsRequest(1), force="domain")
    assert legacy.count("camera_logs") == 0 and r.last_decision.reason == "force_domain"
    r.close()


def test_legacy_failure_is_not_sent_to_domain(store):
    r, legacy, domain, _ = make_router(store)
    legacy.fail["list_status"] = lambda: RuntimeError("legacy broke")
    with pytest.raises(RuntimeError):
        r.list_status(ListStatus())
    assert domain.count("list_status") == 0
    assert figures(r, "list_status", "legacy").errors == 1
    r.close()


def test_fallback_that_gets_an_answer_from_legacy_raises_the_answer(store):
    r, legacy, domain, _ = all_domain(store)
    domain.fail["camera_status"] = lambda: KeyError("x")
    with pytest.raises(NotFound):
        r.camera_status(CameraRef(42))
    assert r.last_decision.fallback
    r.close()
    with store.uow() as uow:
        assert uow.audit.recent(1, op_prefix="camera_status")[0].outcome == "fallback_error:not_found"


# ---------------------------------------------------------------- audit, settings reload, shadow


def test_writes_are_audited_at_once_reads_are_buffered_until_flush(store):
    r, *_ = make_router(store)
    r.call("create_rule", CreateRule(sample_rule()), actor="operator")
    r.camera_status(CameraRef(1))
    with store.uow() as uow:
        ops = [e.op for e in uow.audit.recent(20) if not e.op.startswith("settings")]
    assert ops == ["create_rule"]
    assert r.audit.pending == 1
    r.close()  # close flushes
    with store.uow() as uow:
        got = {e.op: e for e in uow.audit.recent(20)}
    assert got["create_rule"].actor == "operator" and got["create_rule"].reason == "domain_off"
    assert got["camera_status"].path == "legacy" and got["camera_status"].latency_ms >= 0


def test_settings_changes_are_audited_with_old_and_new(store):
    c = RolloutControl(store, env={})
    c.set(use_domain=True, percent=10, actor="integrator", override_reason=SETUP)
    with store.uow() as uow:
        e = {x.key: x for x in uow.audit.recent(20, op_prefix="settings.set")}
    assert e["rollout.rules.percent"].detail == {"old": None, "new": 10}
    assert e["rollout.cameras.percent"].detail == {"old": None, "new": 10}
    assert e["rollout.rules.percent"].actor == "integrator"


def test_background_audit_flusher_writes_reads(store):
    legacy, domain, state = fake_pair(2)
    r = Router(legacy, domain, store, keys_for(state), env={}, audit=AuditLog(store, flush_interval=0.05))
    r.camera_status(CameraRef(1))
    import time

    deadline = time.monotonic() + 5
    found = False
    while time.monotonic() < deadline and not found:
        with store.uow() as uow:
            found = bool(uow.audit.recent(5, op_prefix="camera_status"))
        time.sleep(0.02)
    r.close()
    assert found


def test_a_change_from_another_process_takes_effect_after_the_ttl(store):
    clock = Clock()
    r, *_ = make_router(store, clock=clock, settings_ttl=1.0)
    RolloutControl(store, env={}).set(use_domain=True, percent=100, override_reason=SETUP)  # e.g. the CLI
    assert r.decide("camera_status", CameraRef(1)).path == "legacy"  # cached, no DB read per call
    clock.t += 1.01
    assert r.decide("camera_status", CameraRef(1)).path == "domain"
    r.close()


def test_new_cameras_join_the_population_after_the_ttl(store):
    clock = Clock()
    r, legacy, domain, state = make_router(store, n=4, clock=clock)
    r.set(use_domain=True, percent=50, override_reason=SETUP)
    assert len(domain_cameras(r, 4)) == 2
    from tests.unit.test_rollout_fakes import FakeCam

    for i in range(5, 9):
        state.cameras[i] = FakeCam(f"cam{i}")
    clock.t += 2
    assert len(domain_cameras(r, 8)) == 4
    r.close()


def test_shadow_comparison_records_read_mismatches_and_never_runs_writes_twice(store):
    r, legacy, domain, _ = make_router(store, shadow_inline=True)
    r.set(use_domain=True, percent=100, override_reason=SETUP)
    r.set_options({"shadow_rate": 1.0})
    domain.tamper["camera_status"] = lambda s: replace(s, name="renamed")
    r.camera_status(CameraRef(1))  # domain serves, legacy shadows: mismatch
    r.list_status(ListStatus())  # same on both: match
    r.call("start_camera", CameraRef(1))
    r.call("stop_camera", StopCamera(1))
    assert legacy.count("camera_status") == 1 and legacy.count("list_status") == 1
    assert legacy.count("start_camera") == 0 and legacy.count("stop_camera") == 0
    summary = r.metrics.summary()
    assert (summary.shadow_calls, summary.shadow_mismatches) == (2, 1)
    r.close()
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="rollout.shadow_mismatch")
    assert e.reason == "camera_status" and e.detail["diff"] == ["name"]
    assert RolloutControl(store, env={}).gate("cameras").checks  # the mismatch reaches the gate (test_rollout_gate)


def test_shadow_in_background_thread(store):
    r, legacy, domain, _ = make_router(store)
    r.set(use_domain=True, percent=100, override_reason=SETUP)
    r.set_options({"shadow_rate": 1.0})
    r.camera_status(CameraRef(1))
    r.close()  # waits for the shadow thread
    assert legacy.count("camera_status") == 1
    assert r.metrics.summary().shadow_calls == 1


def test_unknown_operation_is_refused(store):
    r, *_ = make_router(store)
    with pytest.raises(RolloutError, match="unknown operation 'drop_tables'"):
        r.call("drop_tables", None)
    r.close()


def test_scratch_router_without_store():
    legacy, domain, state = fake_pair(2)
    r = Router(legacy, domain, None, env={})
    assert r.decide("camera_status", CameraRef(1)).path == "legacy"
    r.rollback(reason="t")
    assert r.settings.latched
    with pytest.raises(RolloutError):
        r.set(percent=10, override_reason=SETUP)
    r.close()


def test_read_only_calls_cost_no_database_round_trip(store):
    from sqlalchemy import event

    clock = Clock()
    r, *_ = make_router(store, clock=clock)
    r.set(use_domain=True, percent=50, override_reason=SETUP)
    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        for i in range(200):
            r.camera_status(CameraRef(1 + i % 8))
        assert statements == []  # settings, keys and audit all stay in memory until the TTL/flush
        r.call("create_rule", CreateRule(sample_rule()))
        assert any("INSERT INTO audit_log" in s for s in statements)  # a write is audited at once
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    r.close()


def test_concurrent_calls_are_all_counted(store):
    import threading

    r, legacy, domain, _ = make_router(store)
    r.set(use_domain=True, percent=50, override_reason=SETUP)

    def worker():
        for i in range(248):  # 31 calls per camera
            r.camera_status(CameraRef(1 + i % 8))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    s = r.metrics.summary()
    assert s.path("domain").calls + s.path("legacy").calls == 992
    assert s.path("domain").calls == domain.count("camera_status") == 496  # 4 of 8 cameras
    r.close()
    with store.uow() as uow:
        entries = uow.audit.recent(5000, op_prefix="camera_status")
    # every read is counted once, in aggregates per path and interval (not a row per call)
    assert sum(e.calls for e in entries) == 992
    assert {e.path for e in entries} == {"domain", "legacy"} and len(entries) <= 8
