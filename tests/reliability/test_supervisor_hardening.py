"""Supervision that a local user cannot stall: descriptors, pauses, shutdown scans, secrets.

* a full descriptor table still lets a killed worker respawn (the reserve), and a
  spawn that fails for want of descriptors is retried with backoff, not FAILED;
* a station paused (SIGSTOP) for longer than the heartbeat timeout keeps its
  healthy workers when it resumes;
* a shutdown scans the process table once, not once per worker;
* the source reaches the worker on stdin: no password on any command line, and the
  camera's log (0600) masks it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from app.supervisor import WorkerState
from app.supervisor.fdreserve import raise_nofile_limit
from tests.reliability.conftest import HERE, Harness, fast_policy, running, wait_for

pytestmark = pytest.mark.slow

SECRET_SOURCE = "rtsp://admin:Sup3rSecret@127.0.0.1:9/live"


@contextlib.contextmanager
def descriptor_table_full(headroom: int = 0) -> Iterator[list[int]]:
    """Lower the soft open-files limit and fill the table (leaving ``headroom`` free)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 64, hard))
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        for _ in range(min(headroom, len(held))):
            os.close(held.pop())
        yield held
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_killed_worker_respawns_with_the_descriptor_table_full(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=30.0))
    sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 15, "worker running")
    first = sup.status(1).pid
    with descriptor_table_full() as held:
        assert held, "the table should be full"
        with pytest.raises(OSError):  # nothing else in this process can open a file now
            os.open(os.devnull, os.O_RDONLY)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: running(sup, 1, other_than=first), 15, "the killed worker to respawn")
    assert sup.status(1).state == WorkerState.RUNNING
    assert "failed" not in harness.recorder.states(1)


def test_spawn_without_descriptors_backs_off_and_recovers(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=30.0, backoff_initial=0.3, backoff_max=0.6), fd_reserve=0)
    sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 15, "worker running")
    first = sup.status(1).pid
    with descriptor_table_full():
        os.kill(first, signal.SIGKILL)
        line = wait_for(lambda: next((ln for ln in sup.logs(1) if "Too many open files" in ln.text), None),
                        15, "the spawn to fail for want of descriptors")
        assert "retrying in" in line.text
        st = sup.status(1)
        assert st.state in (WorkerState.BACKOFF, WorkerState.STARTING), st
    wait_for(lambda: running(sup, 1, other_than=first), 15, "a respawn once descriptors are free")
    assert "failed" not in harness.recorder.states(1)


def test_raise_nofile_limit_moves_the_soft_limit_toward_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        new_soft, new_hard = raise_nofile_limit(target=512)
        assert (new_soft, new_hard) == (min(512, hard), hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(512, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---------------------------------------------------------------- a paused station


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, object]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError(f"station printed nothing within {timeout:g} s")
        line = proc.stdout.readline()
    finally:
        sel.close()
    if not line:
        raise AssertionError(f"station ended without output (exit {proc.wait(5)})")
    return json.loads(line)


def test_a_paused_station_keeps_its_healthy_workers(harness: Harness) -> None:
    hb_timeout = 1.5  # heartbeats every 0.2 s; the pause is well past this
    pause = 4.0
    station = subprocess.Popen(
        [sys.executable, str(HERE / "fakeworkers" / "pausable_station.py"), str(harness.tmp / "run"),
         str(harness.tmp / "logs"), harness.owner, "3", str(hb_timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        pids = read_line(station, 60)["pids"]
        assert isinstance(pids, list) and len(pids) == 3 and all(pids)
        os.kill(station.pid, signal.SIGSTOP)
        time.sleep(pause)  # the pause itself
        assert psutil.Process(station.pid).status() == psutil.STATUS_STOPPED
        os.kill(station.pid, signal.SIGCONT)
        resumed = time.monotonic()
        seen: dict[str, object] = {}
        beats_at_resume: int | None = None
        while time.monotonic() - resumed < 10:
            seen = read_line(station, 10)
            if beats_at_resume is None:
                beats_at_resume = int(seen["beats"])  # type: ignore[arg-type]
            # Two heartbeat timeouts after the resume, with fresh heartbeats since.
            if time.monotonic() - resumed > 2 * hb_timeout and int(seen["beats"]) > beats_at_resume + 10:  # type: ignore[arg-type]
                break
        assert seen.get("hung") == [], f"healthy workers were killed after the pause: {seen.get('hung')}"
        assert seen.get("pids") == pids
    finally:
        station.terminate()
        try:
            station.wait(15)
        except subprocess.TimeoutExpired:
            station.kill()
            station.wait(5)
        if station.stdout is not None:
            station.stdout.close()


# ---------------------------------------------------------------- shutdown


def test_shutdown_scans_the_process_table_once(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    sup = harness.supervisor()
    for cid in (1, 2, 3, 4):
        sup.start_worker(harness.spec(cid))
    wait_for(lambda: all(running(sup, c) for c in (1, 2, 3, 4)), 20, "four workers running")
    scans = []
    real_iter = psutil.process_iter

    def counting_iter(*args: object, **kw: object):  # a spy: counts, then does the real scan
        scans.append(time.monotonic())
        return real_iter(*args, **kw)

    monkeypatch.setattr(psutil, "process_iter", counting_iter)
    t0 = time.monotonic()
    sup.shutdown(timeout=2.0)
    took = time.monotonic() - t0
    assert len(scans) == 1, f"{len(scans)} process-table scans during shutdown"
    assert took < 5.0
    stopped = [ln for cid in (1, 2, 3, 4) for ln in sup.logs(cid) if "did not stop within the timeout" in ln.text]
    assert stopped == []


# ---------------------------------------------------------------- the source on stdin


def test_the_source_reaches_the_worker_on_stdin_and_never_on_a_command_line(harness: Harness) -> None:
    sup = harness.supervisor()
    sup.start_worker(harness.spec(1, source=SECRET_SOURCE))
    wait_for(lambda: running(sup, 1), 15, "worker running")
    pid = sup.status(1).pid
    assert pid is not None
    cmdline = " ".join(psutil.Process(pid).cmdline())
    assert "Sup3rSecret" not in cmdline and "--source -" in cmdline
    started = harness.journal().starts()
    assert started and started[-1]["source"] == SECRET_SOURCE  # it arrived intact
    wait_for(lambda: any("fake worker" in line.text for line in sup.logs(1)), 10, "the worker's first line")
    texts = [line.text for line in sup.logs(1)]
    assert any("rtsp://admin:***@127.0.0.1:9/live" in t for t in texts), texts
    assert not any("Sup3rSecret" in t for t in texts)
    log_file = sup.log_path(1)
    wait_for(lambda: log_file.exists() and "fake worker" in log_file.read_text(), 5, "the log file")
    assert "Sup3rSecret" not in log_file.read_text()
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    events = [repr(e.detail) for e in harness.recorder.events if e.camera_id == 1]
    assert events and not any("Sup3rSecret" in t for t in events)
