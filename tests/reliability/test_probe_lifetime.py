"""Probes die with the station, and one a killed station left behind is reaped at the next start."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from app.supervisor import Supervisor
from app.supervisor.pidfiles import PidRecord, write_probe_pidfile
from app.supervisor.proctree import INSTANCE_ENV, MARKER_ENV
from tests.reliability.conftest import HERE, Harness, fast_policy, wait_for
from tests.reliability.test_supervisor_orphans import alive, read_json_line

pytestmark = pytest.mark.slow


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An RTSP "camera" that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    try:
        yield f"rtsp://admin:Sup3rSecret@127.0.0.1:{srv.getsockname()[1]}/live"
    finally:
        srv.close()


def test_probes_in_flight_die_with_a_killed_station(harness: Harness, blackhole: str) -> None:
    run_dir = harness.tmp / "run"
    station = subprocess.Popen([sys.executable, str(HERE / "fakeworkers" / "probe_station.py"),
                                str(run_dir), "3", blackhole],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pids: list[int] = []
    try:
        pids = read_json_line(station, 60)["pids"]  # type: ignore[assignment]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        for p in pids:
            cmd = " ".join(psutil.Process(p).cmdline())
            assert "Sup3rSecret" not in cmd and " probe - " in f"{cmd} "
        station.kill()
        station.wait(5)
        wait_for(lambda: not any(alive(p) for p in pids), 3.0, "the probes of the killed station to die")
    finally:
        if station.poll() is None:
            station.kill()
            station.wait(5)
        if station.stdout is not None:
            station.stdout.close()
        for p in pids:
            if alive(p):
                psutil.Process(p).kill()


def test_a_leftover_probe_is_reaped_at_start(harness: Harness) -> None:
    run_dir = harness.tmp / "run"
    run_dir.mkdir()
    instance = secrets.token_hex(8)
    env = dict(os.environ)
    env.update({MARKER_ENV: "1", INSTANCE_ENV: instance})
    # A probe that outlived its station (no parent-death signal in this stand-in).
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                              start_new_session=True)
    try:
        # Until it has exec'd, the child still shows this process's environment (no marker).
        wait_for(lambda: (psutil.Process(orphan.pid).environ().get(INSTANCE_ENV) == instance), 10,
                 "the stand-in to run with its marker")
        write_probe_pidfile(run_dir, PidRecord(camera_id=-1, pid=orphan.pid,
                                               create_time=psutil.Process(orphan.pid).create_time(),
                                               instance=instance, owner="probe", started_at=time.time()))
        sup = Supervisor(run_dir, harness.tmp / "logs", policy=fast_policy(), owner=harness.owner)
        sup.start()
        sup.shutdown()
        assert orphan.wait(5) is not None
        assert sup.reap_report is not None and sup.reap_report.killed == [orphan.pid]
        assert not list(run_dir.glob("probe-*.pid"))
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(5)


def test_a_finished_probe_removes_its_pid_file(tmp_path) -> None:
    from app.services.ports import ProbeRunner

    runner = ProbeRunner(run_dir=tmp_path)
    got = runner.probe("test://still?size=160x90&rate=5", 5)
    assert got["ok"] is True
    assert list(tmp_path.glob("probe-*.pid")) == []
    assert json.dumps(got)
