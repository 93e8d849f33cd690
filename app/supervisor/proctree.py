"""Process-tree helpers: identity checks, descendant tracking, signalling, stats.

A worker runs in its own session (process group = its pid). Grandchildren that call
``setsid`` leave that group, so the supervisor also tracks descendants by parent pid
(sampled periodically and right before a stop) and, as a last resort, by the
per-spawn token every descendant inherits in its environment
(``EDGE_STATION_INSTANCE``). Nothing is ever signalled unless its pid *and*
create_time match what was recorded.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

MARKER_ENV = "EDGE_STATION_WORKER"  # "1" in every worker (and its descendants)
OWNER_ENV = "EDGE_STATION_OWNER"  # owner token of the supervisor that spawned it
INSTANCE_ENV = "EDGE_STATION_INSTANCE"  # unique per spawn
CAMERA_ENV = "EDGE_STATION_CAMERA_ID"
PARENT_ENV = "EDGE_STATION_SUPERVISOR_PID"  # lets a worker notice a parent that died early

# psutil derives create_time from boot time + clock ticks; the same process always
# reads back the same value, a tolerance only absorbs float formatting in pid files.
CREATE_TIME_TOLERANCE = 0.05


@dataclass(frozen=True)
class ProcRef:
    """A process identity that survives pid reuse: (pid, create_time)."""

    pid: int
    create_time: float

    def resolve(self) -> psutil.Process | None:
        """The live process if it is still the same one, else None."""
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.create_time) > CREATE_TIME_TOLERANCE:
                return None
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None


def ref_of(p: psutil.Process) -> ProcRef | None:
    try:
        return ProcRef(p.pid, p.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def ppid_map() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process visible now (one /proc pass).

    On Linux this reads /proc/<pid>/stat directly: psutil's public API has no bulk
    parent map, and building one through process_iter costs several times more,
    which matters because the supervisor thread does this every stats interval.
    """
    if _PROC_STAT:
        return _ppid_map_proc()
    children: dict[int, list[int]] = {}
    for p in psutil.process_iter(["ppid"]):
        ppid = p.info.get("ppid")
        if ppid is not None:
            children.setdefault(ppid, []).append(p.pid)
    return children


_PROC_STAT = os.path.exists("/proc/self/stat")


def _ppid_map_proc() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        rest = data[data.rfind(b")") + 2:].split(b" ", 2)
        try:
            ppid = int(rest[1])
        except (IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(pid: int, pmap: dict[int, list[int]]) -> list[int]:
    out: list[int] = []
    stack = list(pmap.get(pid, ()))
    seen = {pid}
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        out.append(c)
        stack.extend(pmap.get(c, ()))
    return out


def environ_of(p: psutil.Process) -> dict[str, str] | None:
    try:
        return p.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def find_by_env(name: str, value: str, created_after: float = 0.0) -> list[psutil.Process]:
    """Live processes whose environment has name=value (created after a time, to keep it cheap)."""
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["create_time"]):
        ct = p.info.get("create_time")
        if p.pid == me or ct is None or ct < created_after - 1.0:
            continue
        env = environ_of(p)
        if env is not None and env.get(name) == value:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                continue
    return found


def find_by_env_values(name: str, values: Iterable[str], created_after: float = 0.0,
                       ) -> dict[str, list[psutil.Process]]:
    """One pass over the processes for several env values at once: value -> live processes.

    Only this user's processes created after ``created_after`` are looked at (another
    user's environment cannot be read anyway, and each refused read costs a system
    call): the pass is bounded by what this station started, not by the machine.
    """
    wanted = set(values)
    found: dict[str, list[psutil.Process]] = {}
    if not wanted:
        return found
    me = os.getpid()
    uid = os.getuid() if hasattr(os, "getuid") else None
    for p in psutil.process_iter(["create_time", "uids"]):
        ct = p.info.get("create_time")
        if p.pid == me or ct is None or ct < created_after - 1.0:
            continue
        uids = p.info.get("uids")
        if uid is not None and uids is not None and uids.real != uid:
            continue
        env = environ_of(p)
        value = env.get(name) if env is not None else None
        if value not in wanted:
            continue
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                found.setdefault(value, []).append(p)
        except psutil.Error:
            continue
    return found


def signal_group(pgid: int, sig: int) -> bool:
    """Send a signal to a process group; False if the group no longer exists."""
    if not hasattr(os, "killpg"):
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def signal_refs(refs: Iterable[ProcRef], sig: int) -> int:
    """Signal every process in refs that is still the same process; returns how many."""
    n = 0
    for ref in refs:
        p = ref.resolve()
        if p is None:
            continue
        try:
            p.send_signal(sig)
            n += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return n


def wait_gone(refs: Iterable[ProcRef], timeout: float) -> list[ProcRef]:
    """Wait until none of refs is alive (or timeout); returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [r for r in refs if r.resolve() is not None]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [r for r in alive if r.resolve() is not None]
    return alive


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


class TreeSampler:
    """Per-worker CPU/RSS/threads over the worker and its tracked descendants.

    psutil's cpu_percent(None) compares against the previous call on the *same*
    Process object, so the objects are cached and primed when first seen (the first
    reading of a new process counts as 0).
    """

    def __init__(self) -> None:
        self._procs: dict[ProcRef, psutil.Process] = {}

    def prime(self, p: psutil.Process) -> None:
        ref = ref_of(p)
        if ref is None or ref in self._procs:
            return
        try:
            p.cpu_percent(None)
        except psutil.Error:
            return
        self._procs[ref] = p

    def sample(self, members: Iterable[ProcRef]) -> tuple[float, int, int, int]:
        """(cpu_percent, rss_bytes, threads, live members) summed over members."""
        cpu = 0.0
        rss = 0
        threads = 0
        live = 0
        keep: dict[ProcRef, psutil.Process] = {}
        for ref in members:
            p = self._procs.get(ref)
            fresh = p is None
            if p is None:
                try:
                    p = psutil.Process(ref.pid)
                    if abs(p.create_time() - ref.create_time) > CREATE_TIME_TOLERANCE:
                        continue
                except psutil.Error:
                    continue
            try:
                with p.oneshot():
                    c = p.cpu_percent(None)
                    rss += p.memory_info().rss
                    threads += p.num_threads()
            except psutil.Error:
                continue
            if not fresh:
                cpu += c
            keep[ref] = p
            live += 1
        self._procs = keep
        return cpu, rss, threads, live
