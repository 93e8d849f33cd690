"""The per-camera restart state machine, driven by hand: no processes, no threads, no sleeps."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.supervisor.lifecycle import Failed, Kill, Lifecycle, Log, SetState, Spawn, Terminate
from app.supervisor.model import RestartPolicy, WorkerState

POLICY = RestartPolicy(backoff_initial=1.0, backoff_max=8.0, backoff_factor=2.0, jitter=0.0, stable_after=60.0,
                       rate_limit_starts=5, rate_limit_window=60.0, failed_retry_interval=300.0,
                       heartbeat_timeout=5.0, start_timeout=15.0, stop_timeout=5.0)


def states(actions: list) -> list[WorkerState]:
    return [a.state for a in actions if isinstance(a, SetState)]


def started(lc: Lifecycle, now: float = 0.0, pid: int = 100, automatic: bool = False) -> Lifecycle:
    lc.spawned(now, pid, automatic)
    return lc


def running(now: float = 0.0, policy: RestartPolicy = POLICY) -> Lifecycle:
    lc = Lifecycle(policy)
    assert lc.start_requested() == [Spawn(automatic=False)]
    started(lc, now)
    assert states(lc.heartbeat(now + 0.1, "up")) == [WorkerState.RUNNING]
    return lc


def crash(lc: Lifecycle, now: float, code: int | None = 1, uptime: float = 0.5):
    return lc.exited(now, code, "crashed (exit code 1)", uptime, restart_pending=False, closing=False)


def test_start_spawns_and_the_first_heartbeat_makes_it_running() -> None:
    lc = Lifecycle(POLICY)
    assert lc.state is WorkerState.STOPPED
    assert lc.start_requested() == [Spawn(automatic=False)]
    actions = lc.spawned(10.0, 42, automatic=False, initiated_at=1.0)
    assert actions == [SetState(WorkerState.STARTING, "spawned pid 42", {"pid": 42, "initiated_at": 1.0})]
    assert lc.restarts == 0 and lc.limiter.count(10.0) == 1
    assert lc.heartbeat(10.5, "opening") == [SetState(WorkerState.RUNNING, "first heartbeat")]
    assert lc.heartbeat(11.5, "up") == []


def test_a_fast_crash_backs_off_exponentially_up_to_the_cap() -> None:
    lc = running(policy=RestartPolicy(backoff_initial=1.0, backoff_max=8.0, jitter=0.0, rate_limit_starts=20))
    now = 1.0
    delays = []
    for _ in range(6):
        outcome, actions = crash(lc, now)
        assert outcome == "backoff"
        (backoff,) = [a for a in actions if isinstance(a, SetState)]
        delays.append(backoff.extra["delay"])
        assert lc.next_start == pytest.approx(now + backoff.extra["delay"])
        assert lc.tick(lc.next_start - 0.01) == []  # not yet
        now = lc.next_start
        assert lc.tick(now) == [Spawn(automatic=True)]
        started(lc, now, automatic=True)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert lc.restarts == 6


def test_the_backoff_message_and_state_reason() -> None:
    lc = running()
    _, actions = crash(lc, 1.0)
    assert actions == [Log("INFO", "restarting in 1.00 s (failure 1 in a row)"),
                       SetState(WorkerState.BACKOFF, "restart in 1.00 s", {"delay": 1.0})]


def test_jitter_comes_from_the_injected_random() -> None:
    policy = RestartPolicy(backoff_initial=10.0, backoff_max=60.0, jitter=0.5)
    a, b = Lifecycle(policy, random.Random(7)), Lifecycle(policy, random.Random(7))
    for lc in (a, b):
        started(lc, 0.0)
    _, first = crash(a, 1.0)
    _, second = crash(b, 1.0)
    assert first == second
    delay = next(x for x in first if isinstance(x, SetState)).extra["delay"]
    assert 5.0 <= delay <= 15.0 and delay != 10.0


def test_a_stable_run_restarts_at_once_and_resets_the_backoff() -> None:
    lc = running()
    crash(lc, 1.0)
    lc.tick(lc.next_start or 0)
    started(lc, 2.0, automatic=True)
    lc.heartbeat(2.1)
    assert lc.tick(62.0) == []  # stable now
    assert lc.run is not None and lc.run.stable and lc.fail_streak == 0
    outcome, actions = crash(lc, 100.0, uptime=98.0)
    assert outcome == "restarting"
    assert actions == [Log("INFO", "worker had been running stably: restarting at once"), Spawn(automatic=True)]


def test_a_stable_crash_without_immediate_restart_backs_off_from_the_start() -> None:
    policy = RestartPolicy(backoff_initial=0.4, backoff_max=5.0, jitter=0.0, stable_after=0.6,
                           crash_restart_immediately_if_stable=False)
    lc = Lifecycle(policy)
    started(lc, 0.0)
    for now in (0.1, 1.0):
        crash(lc, now, uptime=0.1)
        lc.tick(lc.next_start or 0)
        started(lc, lc.next_start or now, automatic=True)
    _, actions = crash(lc, 10.0, uptime=1.2)
    assert next(a for a in actions if isinstance(a, SetState)).extra["delay"] == 0.4


def test_clean_exit_stops_and_is_not_restarted() -> None:
    lc = running()
    outcome, actions = lc.exited(5.0, 0, "exited cleanly (exit code 0)", 5.0, restart_pending=False, closing=False)
    assert outcome == "stopped" and states(actions) == [WorkerState.STOPPED]
    assert lc.tick(10_000.0) == [] and lc.next_start is None


def test_config_error_fails_for_good() -> None:
    lc = running()
    outcome, actions = lc.exited(5.0, 78, "configuration error (exit code 78): bad url", 5.0,
                                 restart_pending=False, closing=False)
    assert outcome == "failed"
    assert actions == [
        Log("ERROR", "worker failed: configuration error (exit code 78): bad url (not retried)"),
        SetState(WorkerState.FAILED, "configuration error (exit code 78): bad url"),
        Failed("configuration error (exit code 78): bad url", retry=False, next_retry_in=None),
    ]
    assert lc.next_start is None and lc.tick(1e9) == []


def test_rate_limit_fails_then_probes_slowly_and_recovers() -> None:
    policy = RestartPolicy(backoff_initial=0.1, backoff_max=0.1, jitter=0.0, rate_limit_starts=3,
                           rate_limit_window=60.0, failed_retry_interval=300.0, stable_after=10.0)
    lc = Lifecycle(policy)
    started(lc, 0.0)
    now = 0.0
    for _ in range(2):
        now += 0.5
        crash(lc, now)
        now = lc.next_start or now
        assert lc.tick(now) == [Spawn(automatic=True)]
        started(lc, now, automatic=True)
    now += 0.5
    crash(lc, now)
    now = lc.next_start or now
    actions = lc.tick(now)
    assert states(actions) == [WorkerState.FAILED]
    failed = next(a for a in actions if isinstance(a, Failed))
    assert failed.retry and failed.next_retry_in == 300.0
    assert "start rate limit reached: 3 starts within 60 s (limit 3); retrying every 300 s" in failed.reason
    assert lc.tick(now + 299.0) == []
    probe = lc.tick(now + 300.0)
    assert probe == [Log("INFO", "retrying the failed worker (slow probe)"), Spawn(automatic=True)]
    assert lc.probing
    started(lc, now + 300.0, automatic=True)
    # A fast failure of the probe: FAILED again, next probe another interval away.
    outcome, actions = crash(lc, now + 301.0)
    assert outcome == "failed" and failed.reason not in actions
    assert next(a for a in actions if isinstance(a, Failed)).reason.startswith("retry failed: ")
    assert lc.next_start == now + 301.0 + 300.0
    probe_at = lc.next_start
    assert Spawn(automatic=True) in lc.tick(probe_at)
    started(lc, probe_at, automatic=True)
    lc.heartbeat(probe_at + 1)
    assert lc.tick(probe_at + 11.0) == [Log("INFO", "worker recovered: running stably again")]
    assert not lc.probing and lc.limiter.count(probe_at + 11.0) == 0


def test_transient_spawn_error_backs_off_but_a_broken_command_fails() -> None:
    lc = Lifecycle(POLICY)
    lc.start_requested()
    actions = lc.spawn_failed(0.0, "cannot start worker: [Errno 24] Too many open files", transient=True,
                              automatic=False)
    assert actions == [Log("WARNING", "cannot start worker: [Errno 24] Too many open files: retrying in 1.00 s"),
                       SetState(WorkerState.BACKOFF, "restart in 1.00 s", {"delay": 1.0})]
    assert lc.tick(1.0) == [Spawn(automatic=True)]
    actions = lc.spawn_failed(1.0, "no such file", transient=False, automatic=True)
    assert states(actions) == [WorkerState.FAILED] and lc.next_start == 301.0
    lc2 = Lifecycle(POLICY)
    actions = lc2.spawn_failed(0.0, "no such file", transient=False, automatic=False)
    assert next(a for a in actions if isinstance(a, Failed)).retry is False and lc2.next_start is None
    # While closing, even a transient error is final.
    lc3 = Lifecycle(POLICY)
    assert states(lc3.spawn_failed(0.0, "EAGAIN", transient=True, automatic=True, closing=True)) == [WorkerState.FAILED]


def test_hung_at_start_and_when_heartbeats_stop() -> None:
    lc = Lifecycle(POLICY)
    started(lc, 0.0)
    assert lc.overdue(14.9) is None
    assert lc.overdue(15.0) == "hung: no heartbeat within 15 s of start"
    lc.heartbeat(1.0)
    assert lc.overdue(5.9) is None
    assert lc.overdue(6.5) == "hung: no heartbeat for 5.5 s"
    actions = lc.kill_for("hung", "hung: no heartbeat for 5.5 s")
    assert actions == [Log("WARNING", "hung: no heartbeat for 5.5 s: restarting the worker (pid 100)"),
                       SetState(WorkerState.STALLED, "hung: no heartbeat for 5.5 s"),
                       Kill("hung", "hung: no heartbeat for 5.5 s")]
    assert lc.overdue(100.0) is None and lc.kill_for("hung", "again") == []  # judged once
    outcome, _ = crash(lc, 7.0, code=None)
    assert outcome == "backoff"


def test_a_stall_of_the_supervisor_itself_does_not_count() -> None:
    lc = Lifecycle(POLICY)
    started(lc, 0.0)
    lc.heartbeat(1.0)
    lc.resumed_at = 30.0
    assert lc.overdue(31.0) is None and lc.overdue(35.0) is not None


def test_a_stalled_source_is_killed_gracefully() -> None:
    lc = running()
    assert lc.stalled(9.0, 10.0) == []
    actions = lc.stalled(12.5, 10.0)
    assert Kill("stalled", "stalled: source up but last frame 12.5 s old (stall timeout 10 s)") in actions
    assert lc.state is WorkerState.STALLED


def test_stop_ends_the_run_and_the_exit_stops() -> None:
    lc = running()
    actions = lc.stop_requested(3.0)
    assert actions == [Log("INFO", "stop requested (pid 100, timeout 3 s)"),
                       SetState(WorkerState.STOPPING, "stop requested"), Terminate(3.0)]
    assert lc.stop_requested(3.0) == []  # already under way
    outcome, actions = lc.exited(1.0, None, "stopped (killed by SIGTERM)", 1.0, restart_pending=False, closing=False)
    assert outcome == "stopped" and states(actions) == [WorkerState.STOPPED]


def test_stop_while_waiting_cancels_the_retry() -> None:
    lc = running()
    crash(lc, 1.0)
    assert lc.stop_requested(5.0) == [Log("INFO", "stop requested while backoff: retry cancelled"),
                                      SetState(WorkerState.STOPPED, "stopped by request")]
    assert lc.next_start is None and lc.tick(1e9) == []


def test_restart_with_a_process_respawns_after_the_exit() -> None:
    lc = running()
    assert lc.restart_requested() == [SetState(WorkerState.STOPPING, "restart requested"), Terminate(5.0)]
    outcome, actions = lc.exited(1.0, 0, "stopped for restart", 1.0, restart_pending=True, closing=False)
    assert outcome == "respawn" and actions == [Spawn(automatic=False)]


def test_shutdown_ends_everything_and_nothing_restarts() -> None:
    lc = running()
    assert lc.shutdown_requested(2.0) == [SetState(WorkerState.STOPPING, "station shutting down"), Terminate(2.0)]
    outcome, _ = crash(lc, 1.0)
    assert outcome == "stopped" and lc.next_start is None
    waiting = running()
    crash(waiting, 1.0)
    assert states(waiting.shutdown_requested(2.0)) == [WorkerState.STOPPED]
    assert waiting.tick(1e9) == []


# ---------------------------------------------------------------- invariants

EVENTS = st.lists(st.tuples(
    st.sampled_from(["crash", "clean", "config", "signal", "heartbeat", "tick", "stop", "restart",
                     "spawn_fail", "spawn_fail_transient", "start", "hung", "stall"]),
    st.floats(min_value=0.0, max_value=400.0)), max_size=60)


def drive(lc: Lifecycle, events: list[tuple[str, float]]) -> list[tuple[float, list]]:
    """Apply events in time order, carrying out Spawn like the supervisor does; returns the actions."""
    now = 0.0
    pid = 1
    log: list[tuple[float, list]] = []

    def carry(actions: list) -> None:
        nonlocal pid
        log.append((now, actions))
        for a in actions:
            if isinstance(a, Spawn):
                pid += 1
                carry(lc.spawned(now, pid, a.automatic))

    for kind, dt in events:
        now += dt
        if kind == "start" and lc.state in (WorkerState.STOPPED, WorkerState.FAILED):
            carry(lc.start_requested())
        elif kind == "stop" and lc.state is not WorkerState.STOPPED:
            carry(lc.stop_requested(5.0))
        elif kind == "restart":
            carry(lc.restart_requested())
        elif kind == "heartbeat":
            carry(lc.heartbeat(now, "up"))
        elif kind == "tick":
            carry(lc.tick(now))
        elif kind == "hung" and lc.overdue(now):
            carry(lc.kill_for("hung", lc.overdue(now) or ""))
        elif kind == "stall":
            carry(lc.stalled(30.0, 10.0))
        elif kind in ("crash", "clean", "config", "signal") and lc.run is not None:
            code = {"crash": 1, "clean": 0, "config": 78, "signal": None}[kind]
            uptime = now - lc.run.spawned_at
            carry(lc.exited(now, code, kind, uptime, restart_pending=False, closing=False)[1])
        elif kind.startswith("spawn_fail") and lc.run is None and lc.state not in (
                WorkerState.STOPPED, WorkerState.FAILED):
            carry(lc.spawn_failed(now, "no", kind.endswith("transient"), automatic=True))
        assert lc.tick(now - 1e-9) is not None
    return log


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_a_stopped_worker_is_never_restarted(events: list[tuple[str, float]]) -> None:
    lc = Lifecycle(POLICY)
    drive(lc, events)
    if lc.state is WorkerState.STOPPED:
        assert lc.next_start is None and lc.run is None
        for later in (1.0, 1e3, 1e6):
            assert not any(isinstance(a, Spawn) for a in lc.tick(later + 1e7))


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.floats(min_value=0.0, max_value=0.99), st.integers(0, 2**32))
def test_the_backoff_never_exceeds_the_cap(events: list[tuple[str, float]], jitter: float, seed: int) -> None:
    policy = RestartPolicy(backoff_initial=1.0, backoff_max=8.0, jitter=jitter)
    lc = Lifecycle(policy, random.Random(seed))
    for _now, actions in drive(lc, events):
        for a in actions:
            if isinstance(a, SetState) and a.state is WorkerState.BACKOFF:
                assert 0.0 <= a.extra["delay"] <= policy.backoff_max * (1 + jitter)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10), st.floats(min_value=0.0, max_value=5.0))
def test_failed_after_the_limit_of_starts_in_the_window(limit: int, spacing: float) -> None:
    policy = RestartPolicy(backoff_initial=0.0, backoff_max=0.0, jitter=0.0, rate_limit_starts=limit,
                           rate_limit_window=60.0, stable_after=1000.0)
    lc = Lifecycle(policy)
    now = 0.0
    lc.start_requested()
    lc.spawned(now, 1, automatic=False)
    starts = 1
    while True:
        now += spacing
        _, actions = lc.exited(now, 1, "crashed", spacing, restart_pending=False, closing=False)
        actions += lc.tick(now)
        if any(isinstance(a, Failed) for a in actions):
            break
        assert Spawn(automatic=True) in actions
        lc.spawned(now, starts + 1, automatic=True)
        starts += 1
        assert starts <= limit
    if limit * spacing < 60.0:
        assert starts == limit  # exactly `limit` starts fitted in the window
    assert lc.state is WorkerState.FAILED and lc.next_start == now + policy.failed_retry_interval


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_every_state_change_is_announced(events: list[tuple[str, float]]) -> None:
    lc = Lifecycle(POLICY)
    announced = WorkerState.STOPPED
    for _now, actions in drive(lc, events):
        for a in actions:
            if isinstance(a, SetState):
                announced = a.state
    assert announced is lc.state
