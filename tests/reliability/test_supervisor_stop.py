"""Stopping: TERM -> timeout -> KILL, escaped grandchildren, parallel shutdown, cancels."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from app.supervisor import AlreadyRunning, NotRunning, WorkerState
from tests.reliability.conftest import Harness, fast_policy, loop_passes, running, wait_for

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pid(path: Path) -> int:
    text = wait_for(lambda: path.exists() and path.read_text().strip(), 10, f"pid in {path}")
    return int(text)  # type: ignore[arg-type]


def test_stop_is_graceful_and_cleans_up(harness: Harness) -> None:
    sup = harness.supervisor()
    st = sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    preview = sup.preview_path(1)
    assert preview is not None and preview.exists()
    pidfile = sup.run_dir / "worker-1.pid"
    assert pidfile.exists()
    t0 = time.monotonic()
    done = sup.stop_worker(1)
    assert time.monotonic() - t0 < 1.0
    assert done.state == WorkerState.STOPPED and done.pid is None
    assert done.last_exit is not None and done.last_exit.code == 0
    assert "stopped" in done.last_exit.reason
    assert st.pid is not None and not alive(st.pid)
    assert not preview.exists() and not pidfile.exists()
    assert sup.preview_path(1) is None
    with pytest.raises(NotRunning):
        sup.stop_worker(1)


def test_start_twice_raises_already_running(harness: Harness) -> None:
    sup = harness.supervisor()
    sup.start_worker(harness.spec(1))
    with pytest.raises(AlreadyRunning):
        sup.start_worker(harness.spec(1))


def test_worker_ignoring_term_is_killed_at_the_deadline(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stop_timeout=1.0))
    st = sup.start_worker(harness.spec(1, "--fake-ignore-term"))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    t0 = time.monotonic()
    done = sup.stop_worker(1)
    took = time.monotonic() - t0
    assert 0.95 <= took <= 1.5, f"stop took {took:.2f} s with a 1 s timeout"
    assert done.state == WorkerState.STOPPED
    assert done.last_exit is not None and done.last_exit.signal == signal.SIGKILL
    assert "killed after the stop timeout" in done.last_exit.reason
    assert st.pid is not None and not alive(st.pid)


def test_stop_timeout_argument_overrides_policy(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stop_timeout=5.0))
    sup.start_worker(harness.spec(1, "--fake-ignore-term"))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    t0 = time.monotonic()
    sup.stop_worker(1, timeout=0.3)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("when", ["stop", "crash"])
def test_setsid_grandchild_is_gone_after_the_worker(harness: Harness, when: str) -> None:
    gc_file = harness.tmp / "grandchild.pid"
    journal = harness.journal()
    args = ["--fake-grandchild", str(gc_file)]
    if when == "crash":
        # The worker dies right after forking, most likely before any periodic sample
        # saw the grandchild: its inherited spawn token still finds it.
        args += ["--fake-grandchild-after", "0.3", "--fake-exit-after", "0.45", "--fake-faulty-runs", "1"]
    sup = harness.supervisor(fast_policy(stop_timeout=1.0, stable_after=30.0, backoff_initial=5.0,
                                         backoff_max=5.0))
    st = sup.start_worker(harness.spec(1, *args))
    if when == "stop":
        gc_pid = read_pid(gc_file)  # written once the grandchild ignores TERM
        gc = psutil.Process(gc_pid)
        assert gc.ppid() == st.pid and os.getsid(gc_pid) == gc_pid  # escaped the worker's group
        wait_for(lambda: running(sup, 1), 10, "worker running")
        t0 = time.monotonic()
        sup.stop_worker(1)
        assert time.monotonic() - t0 < 1.0  # the worker obeyed TERM; no wait for the grandchild
    else:
        entry = wait_for(lambda: journal.entries("grandchild"), 10, "grandchild spawned")
        gc_pid = int(entry[0]["grandchild"])  # type: ignore[index]
        harness.recorder.wait(lambda e: e.kind == "exit", 10, "the worker's crash")
    wait_for(lambda: not alive(gc_pid), 2.0, "the setsid grandchild to be gone")
    assert any("leftover descendant" in line.text for line in sup.logs(1))


def test_grandchild_holding_the_pipes_does_not_block_exit_handling(harness: Harness) -> None:
    """The grandchild inherits stdout/stderr; the exit must still be handled at once."""
    gc_file = harness.tmp / "grandchild.pid"
    sup = harness.supervisor(fast_policy(stable_after=0.2))
    st = sup.start_worker(harness.spec(1, "--fake-grandchild", str(gc_file), "--fake-faulty-runs", "1"))
    gc_pid = read_pid(gc_file)
    wait_for(lambda: running(sup, 1), 10, "worker running")
    wait_for(lambda: (sup.status(1).uptime or 0.0) >= 0.3, 5, "a run past stable_after")
    assert st.pid is not None
    os.kill(st.pid, signal.SIGKILL)
    wait_for(lambda: running(sup, 1, other_than=st.pid), 5, "restarted worker")
    wait_for(lambda: not alive(gc_pid), 2.0, "grandchild gone")


def test_sixteen_workers_stop_in_parallel(harness: Harness) -> None:
    stop_timeout = 1.5
    sup = harness.supervisor(fast_policy(stop_timeout=stop_timeout, heartbeat_interval=0.5))
    pids = []
    for cid in range(1, 17):
        # Every one of them ignores TERM: a serial stop would take 16 x the timeout.
        pids.append(sup.start_worker(harness.spec(cid, "--fake-ignore-term")).pid)
    wait_for(lambda: all(running(sup, c) for c in range(1, 17)), 30, "16 workers running")
    t0 = time.monotonic()
    sup.shutdown()
    took = time.monotonic() - t0
    assert took <= stop_timeout + 1.0, f"shutdown of 16 workers took {took:.2f} s"
    assert not [p for p in pids if p is not None and alive(p)]
    statuses = sup.statuses()
    assert all(s.state == WorkerState.STOPPED for s in statuses.values())
    assert all(s.last_exit is not None and s.last_exit.signal == signal.SIGKILL
               for s in statuses.values())
    assert not list(sup.run_dir.glob("worker-*.pid"))
    assert not sup.preview_dir.exists()


def test_sixteen_cooperative_workers_stop_fast(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(heartbeat_interval=0.5))
    for cid in range(1, 17):
        sup.start_worker(harness.spec(cid))
    wait_for(lambda: all(running(sup, c) for c in range(1, 17)), 30, "16 workers running")
    t0 = time.monotonic()
    sup.shutdown()
    assert time.monotonic() - t0 < 1.0
    assert all(s.last_exit is not None and s.last_exit.code == 0 for s in sup.statuses().values())


def test_stop_cancels_backoff_and_failed(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(backoff_initial=5.0, backoff_max=5.0, stable_after=30.0))
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-exit-after", "0"))
    wait_for(lambda: sup.status(1).state == WorkerState.BACKOFF, 10, "backoff")
    assert sup.status(1).next_retry_in is not None
    st = sup.stop_worker(1)
    assert st.state == WorkerState.STOPPED and st.next_retry_in is None
    loop_passes(sup)
    assert len(journal.starts()) == 1
    # The camera can be started again afterwards.
    sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running again")


def test_restart_worker_replaces_the_process(harness: Harness) -> None:
    sup = harness.supervisor()
    first = sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    second = sup.restart_worker(harness.spec(1, source="test://still"))
    assert second.pid is not None and second.pid != first.pid
    assert second.state == WorkerState.STARTING
    assert first.pid is not None and not alive(first.pid)
    wait_for(lambda: running(sup, 1), 10, "restarted worker running")
    # Restarting a stopped camera simply starts it.
    sup.stop_worker(1)
    third = sup.restart_worker(harness.spec(1))
    assert third.state == WorkerState.STARTING


def test_shutdown_is_idempotent_and_final(harness: Harness) -> None:
    sup = harness.supervisor()
    sup.start_worker(harness.spec(1))
    sup.shutdown()
    sup.shutdown()
    assert sup.status(1).state == WorkerState.STOPPED
    from app.supervisor import SupervisorError

    with pytest.raises(SupervisorError):
        sup.start_worker(harness.spec(2))


def test_api_calls_from_many_threads(harness: Harness) -> None:
    import threading

    sup = harness.supervisor(fast_policy(heartbeat_interval=0.2))
    errors: list[BaseException] = []

    def cycle(cid: int) -> None:
        try:
            for _ in range(3):
                sup.start_worker(harness.spec(cid))
                wait_for(lambda: running(sup, cid), 20, f"camera {cid} running")
                assert sup.stop_worker(cid).state == WorkerState.STOPPED
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=cycle, args=(cid,)) for cid in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(s.state == WorkerState.STOPPED for s in sup.statuses().values())
    assert len(harness.recorder.of("exit")) == 18


def test_callbacks_may_read_but_not_block(harness: Harness) -> None:
    from app.supervisor import SupervisorError, SupervisorEvent

    sup = harness.supervisor()
    seen: list[object] = []

    def on_event(ev: SupervisorEvent) -> None:
        if ev.kind == "state" and ev.detail["to"] == "running":
            seen.append(sup.status(ev.camera_id).state)  # reads are fine here
            try:
                sup.stop_worker(ev.camera_id)  # would wait for this very thread
            except SupervisorError as exc:
                seen.append(exc)

    unsubscribe = sup.subscribe(on_event)
    sup.start_worker(harness.spec(1))
    wait_for(lambda: len(seen) >= 2, 10, "the callback to run")
    unsubscribe()
    assert seen[0] == WorkerState.RUNNING
    assert isinstance(seen[1], SupervisorError) and "supervisor thread" in str(seen[1])
    # Refused before doing anything: the worker runs on, and the loop is alive.
    loop_passes(sup)
    assert sup.status(1).state == WorkerState.RUNNING
    assert sup.stop_worker(1).state == WorkerState.STOPPED
