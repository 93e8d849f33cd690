"""Sampling the resource use of every live worker and its descendants (once a second)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import psutil

from app.supervisor.model import ProcessStats
from app.supervisor.process import WorkerProcess
from app.supervisor.proctree import ProcRef, descendants, ppid_map, ref_of

__all__ = ["STATS_INTERVAL", "sample_stats"]

STATS_INTERVAL = 1.0


def sample_stats(procs: Iterable[WorkerProcess]) -> None:
    """Refresh each process's descendant set and its ``stats``."""
    procs = list(procs)
    if not procs:
        return
    pmap = ppid_map()
    for proc in procs:
        current: set[ProcRef] = set()
        for pid in descendants(proc.pid, pmap):
            try:
                ref = ref_of(psutil.Process(pid))
            except psutil.Error:
                continue
            if ref is not None:
                current.add(ref)
        # Keep earlier descendants that are still alive even if re-parented away
        # (a setsid grandchild whose parent died is no longer in the tree).
        kept = {r for r in proc.descendants - current if r.resolve() is not None}
        proc.descendants = current | kept
        cpu, rss, threads, live = proc.sampler.sample([proc.ref, *sorted(proc.descendants, key=lambda r: r.pid)])
        proc.stats = ProcessStats(pid=proc.pid, cpu_percent=round(cpu, 2), rss_bytes=rss,
                                  threads=threads, children=max(0, live - 1), at=time.time())
