"""Restart behaviour: crash, backoff, clean exit, config error, signals, rate limit.

Real worker stand-in processes (tests/reliability/fakeworkers/fakeworker.py) driven
by a real Supervisor; timing is measured from the supervisor's events and the
stand-in's own start journal.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.supervisor import WorkerState
from tests.reliability.conftest import Harness, fast_policy, loop_passes, running, wait_for

pytestmark = pytest.mark.slow


def test_crash_after_running_restarts_once(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=0.5))
    journal = harness.journal()
    spec = harness.spec(1, "--fake-exit-after", "1.0", "--fake-exit-code", "1",
                        "--fake-faulty-runs", "1")
    first = sup.start_worker(spec)
    assert first.state == WorkerState.STARTING and first.pid is not None
    wait_for(lambda: running(sup, 1, other_than=first.pid), 10, "the restarted worker running")
    # No second restart is due (the lifecycle tests cover the timing without processes).
    loop_passes(sup)
    st = sup.status(1)
    assert st.state == WorkerState.RUNNING and st.next_retry_in is None
    assert st.restarts == 1
    assert st.last_exit is not None and st.last_exit.code == 1 and st.last_exit.signal is None
    assert "crashed" in st.last_exit.reason
    assert len(journal.starts()) == 2
    # A crash after a stable run restarts at once: no BACKOFF on the way.
    assert "backoff" not in harness.recorder.states(1)
    exits = harness.recorder.of("exit", 1)
    assert [e.detail["code"] for e in exits] == [1]


def test_fast_failure_backoff_delays_then_failed(harness: Harness) -> None:
    # Delays long enough that a busy 2-core machine's scheduling latency (tens of ms)
    # stays inside the +/- 10 % the policy promises.
    policy = fast_policy(backoff_initial=0.5, backoff_factor=2.0, backoff_max=2.0, jitter=0.0,
                         stable_after=30.0, rate_limit_starts=5, rate_limit_window=60.0,
                         failed_retry_interval=60.0)
    sup = harness.supervisor(policy)
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0", "--fake-exit-code", "3"))
    failed = harness.recorder.wait(lambda e: e.kind == "failed", 15, "the 'failed' event")
    assert "rate limit" in failed.detail["reason"]
    assert failed.detail["retry"] is True

    # Each BACKOFF -> restart attempt interval is the configured delay (+/- 10 %). The
    # attempt is stamped when the supervisor starts spawning; the fork/exec that follows
    # is the machine's time, not the policy's (it is checked to be short on its own).
    states = harness.recorder.of("state", 1)
    delays = []
    for i, ev in enumerate(states):
        if ev.detail["to"] == "backoff" and i + 1 < len(states) and states[i + 1].detail["to"] == "starting":
            delays.append(states[i + 1].detail["initiated_at"] - ev.ts)
            assert states[i + 1].ts - states[i + 1].detail["initiated_at"] < 0.25
    expected = [0.5, 1.0, 2.0, 2.0]
    assert len(delays) == len(expected), f"measured {delays}"
    for got, want in zip(delays, expected, strict=True):
        assert abs(got - want) <= 0.1 * want, f"backoff {got:.3f} s, configured {want} s ({delays})"

    st = sup.status(1)
    assert st.state == WorkerState.FAILED
    assert st.pid is None
    assert st.next_retry_in is not None and 50 < st.next_retry_in <= 60
    assert st.error and "rate limit" in st.error
    assert st.last_exit is not None and st.last_exit.code == 3
    # Exactly the allowed number of starts happened, then nothing more (the next one is a
    # retry interval away, see next_retry_in above).
    wait_for(lambda: len(journal.starts()) >= 5, 5, "the journal of the five starts")
    loop_passes(sup)
    assert len(journal.starts()) == 5


def test_backoff_jitter_spreads_delays_within_bounds(harness: Harness) -> None:
    policy = fast_policy(backoff_initial=0.8, backoff_factor=1.0, backoff_max=0.8, jitter=0.1,
                         stable_after=30.0, rate_limit_starts=5)
    sup = harness.supervisor(policy)
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0"))
    harness.recorder.wait(lambda e: e.kind == "failed", 15, "the 'failed' event")
    states = harness.recorder.of("state", 1)
    pairs = [(ev, states[i + 1]) for i, ev in enumerate(states[:-1])
             if ev.detail["to"] == "backoff" and states[i + 1].detail["to"] == "starting"]
    assert len(pairs) == 4
    announced = [b.detail["delay"] for b, _ in pairs]
    measured = [s.detail["initiated_at"] - b.ts for b, s in pairs]
    for d in announced:
        assert 0.72 <= d <= 0.88
    for got, want in zip(measured, announced, strict=True):
        assert abs(got - want) <= 0.1 * want, (measured, announced)
    assert len(set(announced)) > 1, "jitter did not vary the delays"


def test_clean_exit_zero_is_not_restarted(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=0.2))
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0.6", "--fake-exit-code", "0"))
    harness.recorder.wait(lambda e: e.kind == "exit", 10, "the worker's exit")
    wait_for(lambda: sup.status(1).state == WorkerState.STOPPED, 5, "state stopped")
    loop_passes(sup)
    st = sup.status(1)
    assert st.state == WorkerState.STOPPED and st.next_retry_in is None
    assert st.last_exit is not None and st.last_exit.code == 0
    assert "cleanly" in st.last_exit.reason
    assert st.restarts == 0
    assert len(journal.starts()) == 1


def test_config_error_78_fails_without_retry(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(failed_retry_interval=0.5))
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0", "--fake-exit-code", "78"))
    failed = harness.recorder.wait(lambda e: e.kind == "failed", 10, "the 'failed' event")
    assert failed.detail["retry"] is False
    loop_passes(sup)  # no retry is due: next_retry_in is None
    st = sup.status(1)
    assert st.state == WorkerState.FAILED
    assert st.next_retry_in is None
    assert st.last_exit is not None and st.last_exit.code == 78
    assert "configuration error" in st.last_exit.reason
    # The worker's own last error line explains it.
    assert "on purpose" in st.last_exit.reason
    assert len(journal.starts()) == 1
    # An operator can stop the failed camera, which clears it.
    assert sup.stop_worker(1).state == WorkerState.STOPPED


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGSEGV"])
def test_killed_by_signal_is_restarted_with_signal_recorded(harness: Harness, signame: str) -> None:
    sig = getattr(signal, signame)
    sup = harness.supervisor(fast_policy(stable_after=0.3))
    if sig == signal.SIGKILL:
        spec = harness.spec(1)
    else:  # the worker faults by itself
        spec = harness.spec(1, "--fake-signal-after", "0.8", "--fake-signal", signame,
                            "--fake-faulty-runs", "1")
    first = sup.start_worker(spec)
    wait_for(lambda: running(sup, 1), 10, "worker running")
    if sig == signal.SIGKILL:
        wait_for(lambda: (sup.status(1).uptime or 0.0) >= 0.4, 5, "a run past stable_after")
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: running(sup, 1, other_than=first.pid), 10, "a new worker running")
    st = sup.status(1)
    assert st.last_exit is not None
    assert st.last_exit.signal == sig and st.last_exit.code is None
    assert signame in st.last_exit.reason
    assert st.restarts == 1
    exit_ev = harness.recorder.of("exit", 1)[0]
    assert exit_ev.detail["signal"] == sig


def test_exit_detected_promptly(harness: Harness) -> None:
    """pidfd: the exit event follows the kill within a few tens of milliseconds."""
    sup = harness.supervisor(fast_policy(stable_after=0.2))
    st = sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    wait_for(lambda: (sup.status(1).uptime or 0.0) >= 0.3, 5, "a run past stable_after")
    assert st.pid is not None
    t0 = time.time()
    os.kill(st.pid, signal.SIGKILL)
    ev = harness.recorder.wait(lambda e: e.kind == "exit", 5, "exit event")
    assert ev.ts - t0 < 0.2


def test_flapping_worker_start_rate_held_to_limit(harness: Harness) -> None:
    # Each run lasts long enough to count as stable, so every crash restarts at once:
    # only the rate limit stands between this worker and a restart storm.
    policy = fast_policy(stable_after=0.2, rate_limit_starts=4, rate_limit_window=30.0,
                         failed_retry_interval=30.0)
    sup = harness.supervisor(policy)
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0.4"))
    failed = harness.recorder.wait(lambda e: e.kind == "failed", 20, "the 'failed' event")
    assert "rate limit" in failed.detail["reason"]
    wait_for(lambda: len(journal.starts()) >= 4, 5, "the journal of the four starts")
    loop_passes(sup)
    starts = journal.starts()
    assert len(starts) == 4
    span = float(starts[-1]["ts"]) - float(starts[0]["ts"])  # type: ignore[arg-type]
    assert span < 30.0
    st = sup.status(1)
    assert st.state == WorkerState.FAILED and st.restarts == 3
    assert st.next_retry_in is not None and st.next_retry_in > 25


def test_failed_worker_is_retried_slowly_and_recovers(harness: Harness) -> None:
    policy = fast_policy(stable_after=0.8, rate_limit_starts=2, rate_limit_window=30.0,
                         failed_retry_interval=1.0, backoff_initial=0.1)
    sup = harness.supervisor(policy)
    journal = harness.journal()
    # The first 4 runs die at once; the 5th works.
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0", "--fake-faulty-runs", "4"))
    harness.recorder.wait(lambda e: e.kind == "failed", 10, "first 'failed' event")
    t_failed = time.time()
    # Probe 1 (run 3) fails -> FAILED again; probe 2 (run 4) fails; probe 3 (run 5) recovers.
    wait_for(lambda: len(harness.recorder.of("failed", 1)) >= 3, 15, "failed again after probes")
    wait_for(lambda: running(sup, 1), 10, "recovered worker running")
    starts = journal.starts()
    assert len(starts) == 5
    # Probes are spaced by the retry interval, not by the fast backoff.
    probe_times = [float(s["ts"]) for s in starts[2:]]  # type: ignore[arg-type]
    assert probe_times[0] - t_failed >= 0.8
    for a, b in zip(probe_times, probe_times[1:], strict=False):
        assert b - a >= 0.9
    wait_for(lambda: sup.status(1).error is None and sup.status(1).uptime > 1.0, 5, "stable run")
    assert sup.status(1).state == WorkerState.RUNNING


def test_exit_detected_by_polling_without_pidfd(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no pidfd (not Linux), exits are polled: still seen within ~0.1 s."""
    import app.supervisor.spawner as spawner

    monkeypatch.setattr(spawner, "HAS_PIDFD", False)
    sup = harness.supervisor(fast_policy(stable_after=0.2))
    st = sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    wait_for(lambda: (sup.status(1).uptime or 0.0) >= 0.3, 5, "a run past stable_after")
    assert st.pid is not None
    t0 = time.time()
    os.kill(st.pid, signal.SIGKILL)
    ev = harness.recorder.wait(lambda e: e.kind == "exit", 5, "exit event")
    assert ev.ts - t0 < 0.4
    wait_for(lambda: running(sup, 1, other_than=st.pid), 10, "restarted worker")
    assert sup.stop_worker(1).state == WorkerState.STOPPED


def test_missing_worker_executable_fails_with_a_clear_error(harness: Harness) -> None:
    from app.supervisor import SpawnError, WorkerSpec

    sup = harness.supervisor()
    spec = WorkerSpec(1, "cam1", "test://moving", command=(str(harness.tmp / "no-such-worker"),))
    with pytest.raises(SpawnError, match="no-such-worker"):
        sup.start_worker(spec)
    st = sup.status(1)
    assert st.state == WorkerState.FAILED and st.next_retry_in is None
    assert st.error is not None and "cannot start worker" in st.error
    assert harness.recorder.of("failed", 1)[0].detail["retry"] is False


def test_backoff_resets_after_a_stable_run(harness: Harness) -> None:
    policy = fast_policy(backoff_initial=0.4, backoff_factor=2.0, backoff_max=5.0, jitter=0.0,
                         stable_after=0.6, crash_restart_immediately_if_stable=False)
    sup = harness.supervisor(policy)
    journal = harness.journal()
    # Runs 1-2 fail at once (0.4 s, 0.8 s backoff); run 3 is stable, then crashes:
    # its backoff starts over at 0.4 s instead of going on to 1.6 s.
    sup.start_worker(harness.spec(1, "--fake-exit-schedule", "0,0,1.2"))
    wait_for(lambda: len(journal.starts()) >= 4 and running(sup, 1), 15, "the fourth run")
    announced = [e.detail["delay"] for e in harness.recorder.of("state", 1) if e.detail["to"] == "backoff"]
    assert announced == [0.4, 0.8, 0.4]
    assert sup.status(1).restarts == 3
