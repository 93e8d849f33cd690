"""``edge-station --kiosk`` as a real process: a second launch raises it, SIGTERM ends it and its workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _launch(data_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    return subprocess.Popen([sys.executable, "-m", "app", "--data-dir", str(data_dir), *extra], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kiosk_process_second_launch_and_sigterm(data_dir):
    lock = data_dir / "run" / "instance.lock"
    first = _launch(data_dir, "--kiosk")
    try:
        _wait(lambda: lock.exists() and "socket" in lock.read_text(), 30, "the kiosk to listen for second launches")
        assert json.loads(lock.read_text())["pid"] == first.pid
        proc = psutil.Process(first.pid)
        def workers_now() -> list[psutil.Process]:  # forked by the worker launcher, a child of the station
            found = []
            for p in proc.children(recursive=True):
                try:
                    if "run" in p.cmdline():
                        found.append(p)
                except psutil.Error:
                    continue
            return found

        _wait(lambda: len(workers_now()) >= 3, 30, "the active demo cameras to autostart")
        workers = proc.children(recursive=True)  # the workers and their launcher

        second = _launch(data_dir)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err
        assert f"already running on {data_dir} (pid {first.pid}); its window was brought forward" in err
        assert first.poll() is None

        first.send_signal(signal.SIGTERM)  # a service manager or a logout: no PIN asked
        first.communicate(timeout=30)
        assert first.returncode == 0
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers left: {alive}"
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=10)
