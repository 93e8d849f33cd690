"""ProbeRunner: the short-lived probe subprocess, its answer parsing and its hard timeout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from app.domain import ErrorCode, OperationError
from app.services import ProbeRunner
from tests.contract.helpers import wait_for


def py(code: str) -> tuple[str, ...]:
    """A probe 'worker' that runs ``code`` (the probe arguments land in sys.argv[1:], the source on stdin)."""
    return (sys.executable, "-c", code)


def test_the_real_worker_probe() -> None:
    got = ProbeRunner().probe("test://still?size=160x90&rate=5", 5)
    assert got["ok"] is True and (got["width"], got["height"], got["fps"]) == (160, 90, 5.0)


def test_the_probe_arguments() -> None:
    runner = ProbeRunner(command=("worker",))
    # The source goes on stdin: a password must not be on a command line `ps` shows to everyone.
    assert runner.command_for("rtsp://admin:pw@cam/1", 2.5) == ["worker", "probe", "-", "--timeout", "2.5"]


def test_the_last_json_object_on_stdout_is_the_answer() -> None:
    code = ("import json, sys; print('warming up'); print('{broken'); "
            "print(json.dumps({'ok': False, 'error': 'cannot open ' + sys.stdin.readline().strip()})); sys.exit(1)")
    assert ProbeRunner(command=py(code)).probe("rtsp://cam/1", 2) == {"ok": False, "error": "cannot open rtsp://cam/1"}


def test_a_probe_that_dies_without_an_answer() -> None:
    got = ProbeRunner(command=py("import sys; sys.stderr.write('Segmentation fault\\n'); sys.exit(3)")).probe("x", 2)
    assert got["ok"] is False and "code 3" in got["error"] and "Segmentation fault" in got["error"]


def test_a_probe_that_cannot_be_started() -> None:
    with pytest.raises(OperationError) as ei:
        ProbeRunner(command=("/nonexistent/edge-worker",)).probe("test://moving", 2)
    assert ei.value.code is ErrorCode.UNAVAILABLE and "/nonexistent/edge-worker" in ei.value.message


def test_a_hanging_probe_and_its_children_are_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(g.pid)); time.sleep(60)")
    runner = ProbeRunner(command=py(code), grace=0.5)
    t0 = time.monotonic()
    with pytest.raises(OperationError) as ei:
        runner.probe("rtsp://admin:hunter2@10.1.1.1/live", 0.5)
    took = time.monotonic() - t0
    assert ei.value.code is ErrorCode.UNAVAILABLE and 1.0 <= took < 3.0
    msg = ei.value.message
    assert "0.5 s timeout" in msg and "admin:***@10.1.1.1" in msg and "hunter2" not in msg
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 2.0, "the grandchild's pid"))

    def gone() -> bool:
        try:
            return psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_for(gone, 3.0, "the probe's grandchild to be killed with its group")


def test_grace_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        ProbeRunner(grace=-1)
