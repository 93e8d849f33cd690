"""No orphans: the station killed outright, leftovers reaped, strangers never touched."""

from __future__ import annotations

import json
import os
import secrets
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.supervisor import Supervisor
from app.supervisor.proctree import INSTANCE_ENV, MARKER_ENV, OWNER_ENV
from tests.reliability.conftest import FAKE_COMMAND, HERE, Harness, fast_policy, wait_for

pytestmark = pytest.mark.slow

STATION = HERE / "fakeworkers" / "station.py"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, object]:
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


def start_station(harness: Harness, n: int, mode: str, run_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(STATION), str(run_dir), str(harness.tmp / "station-logs"),
         harness.owner, str(n), mode],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def station_procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(5)
        if p.stdout is not None:
            p.stdout.close()


@pytest.mark.parametrize("mode", ["fake", "real"])
def test_station_sigkilled_leaves_no_worker_alive(harness: Harness, station_procs: list, mode: str) -> None:
    station = start_station(harness, 3, mode, harness.tmp / "run")
    station_procs.append(station)
    pids = read_json_line(station, 60)["pids"]
    assert isinstance(pids, list) and len(pids) == 3 and all(pids)
    assert all(alive(p) for p in pids)
    # Spawned workers are the station's children; forked ones (the real worker) its worker
    # launcher's, which is the station's child.
    assert all(psutil.Process(p).ppid() == station.pid
               or psutil.Process(psutil.Process(p).ppid()).ppid() == station.pid for p in pids)
    if mode == "real":
        launchers = {psutil.Process(p).ppid() for p in pids}
        assert len(launchers) == 1 and launchers != {station.pid}
    station.kill()
    station.wait(5)
    t0 = time.monotonic()
    wait_for(lambda: not any(alive(p) for p in pids), 2.0, "every worker of the killed station to die")
    assert time.monotonic() - t0 <= 2.0
    # The next station on this run dir clears the dead run's pid files and preview slots.
    run_dir = harness.tmp / "run"
    assert len(list(run_dir.glob("worker-*.pid"))) == 3
    sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
    sup.start()
    sup.shutdown()
    assert sup.reap_report is not None and sup.reap_report.killed == []
    assert len([f for f in sup.reap_report.removed_files if f.startswith("worker-")]) == 3
    assert not list(run_dir.glob("worker-*.pid"))
    assert not sup.preview_dir.exists() or not list(sup.preview_dir.iterdir())


def test_leftovers_of_a_crashed_station_are_reaped_at_startup(harness: Harness, station_procs: list) -> None:
    run_dir = harness.tmp / "run"
    # These stand-ins do not die with their parent: only the reaping can end them.
    station = start_station(harness, 2, "fake-immortal", run_dir)
    station_procs.append(station)
    pids = read_json_line(station, 30)["pids"]
    assert isinstance(pids, list)
    station.kill()
    station.wait(5)
    assert all(keeps_running(p) for p in pids), "the immortal stand-ins should have survived the station"
    assert all(alive(p) for p in pids), "the immortal stand-ins should have survived the station"
    assert len(list(run_dir.glob("worker-*.pid"))) == 2
    sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
    sup.start()
    try:
        assert sup.reap_report is not None
        assert sorted(sup.reap_report.killed) == sorted(pids)
        wait_for(lambda: not any(alive(p) for p in pids), 5, "leftovers reaped")
        assert not list(run_dir.glob("worker-*.pid"))
        assert not list(sup.preview_dir.glob("cam-*.preview"))
    finally:
        sup.shutdown()


def write_pidfile(run_dir: Path, camera_id: int, pid: int, create_time: float, instance: str = "") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"worker-{camera_id}.pid"
    path.write_text(json.dumps({"camera_id": camera_id, "pid": pid, "create_time": create_time,
                                "instance": instance, "owner": "someone", "started_at": time.time()}))
    return path


def test_pidfile_pointing_at_an_unrelated_process_leaves_it_untouched(harness: Harness) -> None:
    run_dir = harness.tmp / "run"
    stranger = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    try:
        assert answers(stranger), "the stranger did not start"
        ct = psutil.Process(stranger.pid).create_time()
        path = write_pidfile(run_dir, 1, stranger.pid, ct)  # even pid AND create_time match
        sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
        sup.start()
        sup.shutdown()
        assert answers(stranger), "an unrelated process was killed"
        assert stranger.poll() is None, "an unrelated process was killed"
        assert not path.exists()
        assert sup.reap_report is not None and sup.reap_report.kept == [stranger.pid]
        assert sup.reap_report.killed == []
    finally:
        stranger.kill()
        stranger.communicate(timeout=5)  # reaps it and closes its pipes


# A process that echoes each line it reads: it blocks on its stdin, and answers as long as it lives.
ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


def answers(proc: subprocess.Popen[str], timeout: float = 10.0) -> bool:
    """The echo process is alive: it sends back a line written to it within ``timeout``."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("ping\n")
        proc.stdin.flush()
    except BrokenPipeError:
        return False
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready) and proc.stdout.readline() == "ping\n"


def keeps_running(pid: int) -> bool:
    """The process still runs: it uses CPU time (the fake worker polls every 10 ms; one clock tick)."""
    ps = psutil.Process(pid)
    used = sum(ps.cpu_times()[:2])
    try:
        wait_for(lambda: sum(ps.cpu_times()[:2]) >= used + 0.01, 10, f"pid {pid} to use CPU")
    except (AssertionError, psutil.Error):
        return False
    return True


def spawn_marked_worker(harness: Harness, instance: str, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({MARKER_ENV: "1", OWNER_ENV: harness.owner, INSTANCE_ENV: instance})
    return subprocess.Popen(
        [*FAKE_COMMAND, "run", "--camera-id", "1", "--source", "test://moving", "--fake-no-pdeathsig", *extra],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_pidfile_with_mismatched_create_time_leaves_the_process_untouched(harness: Harness) -> None:
    run_dir = harness.tmp / "run"
    worker = spawn_marked_worker(harness, secrets.token_hex(8))
    try:
        ct = psutil.Process(worker.pid).create_time()
        write_pidfile(run_dir, 1, worker.pid, ct - 100.0)  # as if the pid had been reused
        sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
        sup.start()
        sup.shutdown()
        assert keeps_running(worker.pid)
        assert worker.poll() is None
        assert sup.reap_report is not None and sup.reap_report.killed == []
    finally:
        worker.kill()
        worker.wait(5)


def test_our_leftover_and_its_setsid_grandchild_are_reaped(harness: Harness) -> None:
    run_dir = harness.tmp / "run"
    instance = secrets.token_hex(8)
    gc_file = harness.tmp / "gc.pid"
    worker = spawn_marked_worker(harness, instance, "--fake-grandchild", str(gc_file))
    try:
        gc_pid = int(wait_for(lambda: gc_file.exists() and gc_file.read_text().strip(), 10, "grandchild"))  # type: ignore[arg-type]
        ct = psutil.Process(worker.pid).create_time()
        write_pidfile(run_dir, 1, worker.pid, ct, instance)
        sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
        t0 = time.monotonic()
        sup.start()
        took = time.monotonic() - t0
        sup.shutdown()
        assert worker.wait(5) in (-signal.SIGTERM, -signal.SIGKILL, 0)
        wait_for(lambda: not alive(gc_pid), 3, "grandchild reaped")
        assert sup.reap_report is not None and sup.reap_report.killed == [worker.pid]
        assert took < 4.0  # TERM, 2 s grace for the TERM-ignoring grandchild, KILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)


def test_second_station_on_the_same_run_dir_is_refused(harness: Harness) -> None:
    from app.supervisor import SupervisorError

    sup = harness.supervisor()
    other = Supervisor(sup.run_dir, harness.tmp / "other-logs", owner=harness.owner)
    with pytest.raises(SupervisorError, match="in use by another running station"):
        other.start()


def test_a_leftover_worker_launcher_is_reaped_at_startup(harness: Harness) -> None:
    """A launcher that outlived its station (its parent-death signal did not fire) is killed by its
    pid file, as a leftover worker is."""
    from app.supervisor.pidfiles import LAUNCHER_PIDFILE, PidRecord, write_launcher_pidfile

    run_dir = harness.tmp / "run"
    run_dir.mkdir(parents=True)
    instance = secrets.token_hex(8)
    env = dict(os.environ)
    env.update({MARKER_ENV: "1", OWNER_ENV: harness.owner, INSTANCE_ENV: instance})
    stand_in = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
    try:
        assert answers(stand_in), "the stand-in did not start"
        ct = psutil.Process(stand_in.pid).create_time()
        write_launcher_pidfile(run_dir, PidRecord(camera_id=0, pid=stand_in.pid, create_time=ct,
                                                  instance=instance, owner=harness.owner, started_at=time.time()))
        sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
        sup.start()
        sup.shutdown()
        assert sup.reap_report is not None and sup.reap_report.killed == [stand_in.pid]
        assert stand_in.wait(5) is not None
        assert not (run_dir / LAUNCHER_PIDFILE).exists()
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
        stand_in.wait(5)
        for stream in (stand_in.stdin, stand_in.stdout):
            if stream is not None:
                stream.close()
