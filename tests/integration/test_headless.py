"""``edge-station headless``: real workers on demo cameras, a clean stop on TERM and on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _read_until(proc, predicate, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if predicate(line):
            return seen
    raise AssertionError("did not see the expected line; got:\n" + "\n".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_headless_runs_demo_cameras_and_stops_cleanly(tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "headless", "--data-dir", str(tmp_path / "d"), "--status-interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ),
    )
    try:
        _read_until(proc, lambda line: "Lobby: running" in line and " fps" in line.split("Lobby: running")[1][:12],
                    timeout=30)
        procs = psutil.Process(proc.pid).children(recursive=True)  # the workers and their launcher
        workers = [p for p in procs if {"run", "--camera-id"} <= set(p.cmdline())]
        assert len(workers) == 3  # three active demo cameras, the fourth is inactive
        assert len(procs) <= 4
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "all workers stopped" in out
    assert "Traceback" not in err
    gone, alive = psutil.wait_procs(procs, timeout=2)
    assert alive == []


def test_second_headless_on_same_data_dir_is_refused(tmp_path):
    d = str(tmp_path / "d")
    first = subprocess.Popen(
        [sys.executable, "-m", "app", "headless", "--data-dir", d, "--no-demo", "--status-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        _read_until(first, lambda line: "Stop with Ctrl-C" in line, timeout=30)
        second = subprocess.run([sys.executable, "-m", "app", "headless", "--data-dir", d],
                                capture_output=True, text=True, timeout=30, cwd=REPO)
        assert second.returncode == 6
        assert second.stderr.strip() == (
            f"edge-station: error: Edge Station is already running on this data dir (pid {first.pid}); "
            "stop it first or use another --data-dir")
    finally:
        first.terminate()
        first.communicate(timeout=15)
    assert first.returncode == 0


def test_bad_rollout_environment_is_one_clear_line(tmp_path):
    env = dict(os.environ, ROLLOUT_PERCENT="37x")
    out = subprocess.run([sys.executable, "-m", "app", "headless", "--data-dir", str(tmp_path / "d"), "--duration", "1"],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert out.returncode == 2
    assert out.stderr.strip() == "edge-station: error: ROLLOUT_PERCENT='37x' is not a percentage (an integer 0-100)"
    assert out.stdout == ""
