"""A stop that lands while a launcher's child is still becoming a worker: before its setsid (no
process group to signal yet) and before its TERM handler (TERM is held until then). It must be a
clean stop at once, not a lost signal and a SIGKILL at the stop timeout, nor death by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

from app.supervisor.process import WorkerProcess
from app.supervisor.proctree import ref_of
from app.supervisor.spawner import begin_stop


def test_a_worker_without_its_own_group_yet_is_stopped_itself() -> None:
    # A child in this test's process group: there is no group whose id is its pid, as for a
    # launcher's child before its setsid.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ref = ref_of(psutil.Process(child.pid))
        assert ref is not None
        proc = WorkerProcess(popen=child, ref=ref, instance="t", spawn_mono=time.monotonic(),
                             started_at=time.time(), preview=None)
        begin_stop(proc, time.monotonic() + 30)
        assert child.wait(10) == -signal.SIGTERM  # it got TERM, long before the deadline
        assert not proc.killed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


_HELD_TERM = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # as the launcher forks a worker
os.kill(os.getpid(), signal.SIGTERM)  # the stop arrives before the worker's handler exists
from app.worker.cli import main
sys.exit(main(["run", "--camera-id", "1", "--source", "test://still", "--log-level", "WARNING"]))
"""


def test_a_stop_held_until_the_handler_is_a_clean_stop() -> None:
    worker = subprocess.Popen([sys.executable, "-c", _HELD_TERM], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        code = worker.wait(30)
        assert code == 0, (code, worker.stderr.read() if worker.stderr else "")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
        if worker.stderr is not None:
            worker.stderr.close()
