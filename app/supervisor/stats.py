"""Sampling the resource use of every live worker and its descendants (once a second).

The sampling runs on a thread of its own (``StatsSampler``), never on the supervisor
thread and never under the workers' lock: with 80 workers one pass reads a few
hundred /proc files (half a second on a busy two-core machine), and a status read or
a start command must not wait for that. A pass copies what it needs under the lock
(``take``), scans /proc without it (``scan``), and publishes under a short lock
(``publish``): each process's ``stats`` is replaced by a new immutable
``ProcessStats``, and its descendant set is merged with what the supervisor thread
may have added meanwhile (a stop refreshes it too).

Finding new descendants takes one pass over every process of the machine (``ppid_map``), which
costs more than sampling the workers themselves: it runs every ``TREE_RESCAN_S`` seconds, and on
every pass while a worker is new (not sampled yet, or younger than that: a worker starts its
helpers early). In between, the descendants already known are sampled (those still alive).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from app.supervisor.model import ProcessStats
from app.supervisor.process import WorkerProcess
from app.supervisor.proctree import ProcRef, descendants, ppid_map, ref_of

__all__ = ["STATS_INTERVAL", "TREE_RESCAN_S", "Sample", "StatsSampler", "publish", "sample_stats", "scan", "take"]

log = logging.getLogger("app.supervisor.core")

STATS_INTERVAL = 1.0
#: how often a pass looks for new descendants of workers that are not new (seconds)
TREE_RESCAN_S = 5.0


@dataclass(frozen=True)
class Sample:
    """What one pass knows of one process: taken under the lock, filled in without it."""

    proc: WorkerProcess
    before: frozenset[ProcRef]  # its descendants when the pass took it
    after: frozenset[ProcRef] = frozenset()
    stats: ProcessStats | None = None


def take(procs: Iterable[WorkerProcess]) -> list[Sample]:
    """Under the lock: the processes to sample and their descendants as known now."""
    return [Sample(p, frozenset(p.descendants)) for p in procs if not p.exited]


def scan(samples: list[Sample], *, tree: bool = True) -> list[Sample]:
    """Without the lock: one /proc pass for the tree (``tree``; else only the descendants known
    before are kept, those still alive), then each process's figures."""
    if not samples:
        return []
    pmap = ppid_map() if tree else {}
    out = []
    for s in samples:
        proc = s.proc
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
        kept = {r for r in s.before - current if r.resolve() is not None}
        after = frozenset(current | kept)
        # The sampler of a process is touched by this pass only (primed before it was published).
        cpu, rss, threads, live = proc.sampler.sample([proc.ref, *sorted(after, key=lambda r: r.pid)])
        stats = ProcessStats(pid=proc.pid, cpu_percent=round(cpu, 2), rss_bytes=rss,
                             threads=threads, children=max(0, live - 1), at=time.time())
        out.append(Sample(proc, s.before, after, stats))
    return out


def publish(samples: list[Sample]) -> None:
    """Under the lock: swap in the new figures; descendants that died are dropped, ones
    the supervisor thread added since the pass took its copy are kept."""
    for s in samples:
        proc = s.proc
        if proc.exited:
            continue
        gone = s.before - s.after
        proc.descendants = (proc.descendants - gone) | s.after
        proc.stats = s.stats


def sample_stats(procs: Iterable[WorkerProcess]) -> None:
    """One whole pass at once (callers that hold no lock, or hold it on purpose)."""
    publish(scan(take(procs)))


class StatsSampler:
    """The thread that samples every ``interval`` seconds until ``stop``."""

    def __init__(self, lock: threading.RLock, procs: Callable[[], list[WorkerProcess]],
                 interval: float = STATS_INTERVAL, *, tree_every: float = TREE_RESCAN_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = lock
        self._procs = procs
        self.interval = interval
        self.tree_every = tree_every
        self._clock = clock  # wall clock, as a worker's started_at
        self._tree_at = float("-inf")  # when a pass last looked for new descendants
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: completed passes (a test waits on it), and how many of them looked for new descendants
        self.passes = 0
        self.tree_passes = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edge-supervisor-stats", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run_once(self) -> None:
        with self._lock:
            taken = take(self._procs())
        now = self._clock()
        tree = now - self._tree_at >= self.tree_every or any(
            s.proc.stats is None or now - s.proc.started_at < self.tree_every for s in taken)
        done = scan(taken, tree=tree)
        with self._lock:
            publish(done)
        if tree and taken:
            self._tree_at = now
            self.tree_passes += 1
        self.passes += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug in a pass is logged; the next pass tries again
                log.exception("supervisor: unexpected error while sampling worker stats")
            if self._stop.wait(self.interval):
                return
