"""The stats sampler's look for new descendants: every pass while a worker is new, then every
TREE_RESCAN_S seconds; known descendants are sampled in between. Real processes, a fake clock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil

from app.supervisor.process import WorkerProcess
from app.supervisor.proctree import ref_of
from app.supervisor.stats import TREE_RESCAN_S, StatsSampler

# A stand-in worker: "go" starts a grandchild and prints its pid, "end" ends it (and reaps it).
_WORKER = """
import subprocess, sys
kids = []
for line in sys.stdin:
    if line.strip() == "go":
        kids.append(subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE))
        print(kids[-1].pid, flush=True)
    else:
        kid = kids.pop()
        kid.stdin.close()
        print(kid.wait(10), flush=True)
for k in kids:
    k.stdin.close()
    k.wait(10)
"""


def _worker(started_at: float) -> tuple[subprocess.Popen[str], WorkerProcess]:
    popen = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    ref = ref_of(psutil.Process(popen.pid))
    assert ref is not None
    return popen, WorkerProcess(popen=popen, ref=ref, instance="t", spawn_mono=time.monotonic(),
                                started_at=started_at, preview=None)


def _say(popen: subprocess.Popen[str], what: str) -> int:
    assert popen.stdin is not None and popen.stdout is not None
    popen.stdin.write(what + "\n")
    popen.stdin.flush()
    return int(popen.stdout.readline())


def _grandchild(popen: subprocess.Popen[str]) -> int:
    return _say(popen, "go")


def _end(popen: subprocess.Popen[str]) -> None:
    if popen.stdin is not None and not popen.stdin.closed:
        popen.stdin.close()
    try:
        popen.wait(10)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(5)
        if popen.stdout is not None:
            popen.stdout.close()


def test_a_worker_that_is_not_new_is_looked_at_for_new_descendants_every_rescan_interval() -> None:
    now = [1000.0]
    popen, proc = _worker(started_at=now[0] - 60)  # adopted, long running
    sampler = StatsSampler(threading.RLock(), lambda: [proc], clock=lambda: now[0])
    try:
        sampler.run_once()  # never sampled: looks at the tree
        assert sampler.tree_passes == 1 and proc.stats is not None and proc.stats.children == 0
        gc = _grandchild(popen)
        now[0] += 1
        sampler.run_once()  # within the interval: only the known descendants
        assert sampler.tree_passes == 1 and proc.stats.children == 0
        now[0] += TREE_RESCAN_S - 1
        sampler.run_once()  # the interval is up: found
        assert sampler.tree_passes == 2 and proc.stats.children == 1
        assert {r.pid for r in proc.descendants} == {gc}
        now[0] += 1
        sampler.run_once()  # known: still counted between looks
        assert sampler.tree_passes == 2 and proc.stats.children == 1
        assert _say(popen, "end") == 0  # the grandchild exits, and is reaped
        now[0] += 1
        sampler.run_once()  # a known one that died is dropped without waiting for the next look
        assert sampler.tree_passes == 2 and gc not in {r.pid for r in proc.descendants}
    finally:
        _end(popen)


def test_a_young_worker_is_looked_at_on_every_pass() -> None:
    now = [1000.0]
    popen, proc = _worker(started_at=now[0])
    sampler = StatsSampler(threading.RLock(), lambda: [proc], clock=lambda: now[0])
    try:
        sampler.run_once()
        gc = _grandchild(popen)
        now[0] += 1
        sampler.run_once()  # one second old: it starts its helpers now, and they are found at once
        assert sampler.tree_passes == 2 and proc.stats is not None and proc.stats.children == 1
        assert gc in {r.pid for r in proc.descendants}
        now[0] += TREE_RESCAN_S
        sampler.run_once()
        now[0] += 1
        sampler.run_once()  # no longer young: the next look waits for the interval
        assert sampler.tree_passes == 3
    finally:
        _end(popen)
