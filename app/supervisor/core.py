"""The process supervisor: one long-lived thread that spawns and watches camera workers.

``Supervisor`` is the coordinator; its parts are the command queue
(``app.supervisor.commands``), spawning and ending processes (``app.supervisor.spawner``;
default workers are forked by the worker launcher, ``app.supervisor.launcher``, see
docs/architecture.md "How workers are started"),
reading their pipes (``app.supervisor.pipes``), sampling their resource use
(``app.supervisor.stats``) and, per camera, the pure restart state machine
(``app.supervisor.lifecycle``).

Threading model
---------------
Everything that touches a process happens on the supervisor thread: spawning (so the
workers' PR_SET_PDEATHSIG, which fires when the *spawning thread* ends, stays armed
for the life of the station), signalling, reaping, reading pipes. Public methods
called from other threads enqueue a command, wake the thread through a pipe and wait
on a future. Reads (status, logs, stats) take a lock and copy.

One ``selectors`` loop (``app.supervisor.loop``) waits on: the wake pipe, every
worker's pidfd (Linux; exits are seen within a millisecond; elsewhere exits are
polled), every worker's stdout/stderr pipe (non-blocking, bounded buffers) and the worker
launcher's control socket (its exit reports, and its end of file if it dies).
Timers (backoff, stop deadlines, heartbeat timeouts) are plain deadlines
checked after each wake-up. The per-camera table it works on is
``app.supervisor.workers``. Resource figures come from a second thread
(``app.supervisor.stats.StatsSampler``) that scans /proc outside the lock and swaps
each process's immutable ``ProcessStats`` in under a short one: a status read never
waits for a scan.

State machine (per camera, ``app.supervisor.lifecycle.Lifecycle``)
-------------------------------------------------------------------
    STOPPED --start--> STARTING --first heartbeat--> RUNNING
    RUNNING --no heartbeat / stalled source--> STALLED --(killed)--> restart
    RUNNING|STARTING --exit 0--> STOPPED          (clean exit: not restarted)
    RUNNING|STARTING --exit 78--> FAILED          (configuration error: never retried)
    RUNNING|STARTING --crash--> STARTING          (ran >= stable_after: at once)
                            --> BACKOFF --delay--> STARTING   (fast failure)
    any start over the rate limit --> FAILED (+ "failed" event, slow retry probe)
    FAILED --retry interval--> STARTING (probe; a fast failure returns to FAILED)
    * --stop--> STOPPING --exit (TERM, then KILL at the deadline)--> STOPPED
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import selectors
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: the run-dir lock is skipped
    fcntl = None  # type: ignore[assignment]

from app.supervisor.commands import COMMAND_TIMEOUT, CommandQueue
from app.supervisor.evidence import request_evidence, take_snapshot
from app.supervisor.fdreserve import DEFAULT_RESERVE, FdReserve, raise_nofile_limit
from app.supervisor.lifecycle import Terminate
from app.supervisor.loop import SupervisorLoop
from app.supervisor.model import (
    AlreadyRunning,
    LogLine,
    NotRunning,
    ProcessStats,
    RestartPolicy,
    SupervisorError,
    SupervisorEvent,
    WorkerSpec,
    WorkerState,
    WorkerStatus,
)
from app.supervisor.pidfiles import ReapReport, reap_leftovers
from app.supervisor.proctree import ppid_map
from app.supervisor.stats import StatsSampler
from app.supervisor.workers import Workers

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)
STATUS_TICK = 0.1  # seconds a status snapshot may be reused while nothing happened

T = TypeVar("T")


def _sanitize(token: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", token)[:48] or "x"


class Supervisor:
    """Spawns, watches, restarts and stops one worker process per camera."""

    def __init__(
        self,
        run_dir: Path,
        log_dir: Path,
        policy: RestartPolicy | None = None,
        owner: str | None = None,
        log_max_bytes: int = 1_000_000,
        log_backups: int = 3,
        clock: Callable[[], float] = time.monotonic,
        log_ring_size: int = 1000,
        log_rate: float = 200.0,
        log_burst: float = 1000.0,
        preview_root: Path | None = None,
        fd_reserve: int = DEFAULT_RESERVE,
        raise_fd_limit: bool = True,
        launcher: str = "zygote",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.log_dir = Path(log_dir)
        self.policy = policy or RestartPolicy()
        digest = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        self.owner = owner or f"u{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}"
        self._clock = clock
        self._status_memo: tuple[tuple[int, int], Mapping[int, WorkerStatus]] | None = None
        if preview_root is None:
            shm = Path("/dev/shm")
            if shm.is_dir() and os.access(shm, os.W_OK):
                preview_root = shm / f"edge-station-{_sanitize(self.owner)}"
            else:
                preview_root = self.run_dir / "preview"
        self.preview_dir = preview_root
        log_options: dict[str, Any] = dict(ring_size=log_ring_size, max_bytes=log_max_bytes,
                                           backups=log_backups, rate=log_rate, burst=log_burst)
        if launcher not in ("zygote", "spawn"):
            raise ValueError(f"launcher must be 'zygote' or 'spawn', not {launcher!r}")
        self._workers = Workers(self.run_dir, self.log_dir, self.policy, self.owner, self.preview_dir,
                                clock, log_options, launcher=launcher == "zygote")
        self._commands = CommandQueue()
        self._loop = SupervisorLoop(self._workers, self._commands, self._finished)
        self._sampler = StatsSampler(self._workers.lock, self._workers.live_procs)
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._closed = False
        self.reap_report: ReapReport | None = None
        self._fd_reserve_size = fd_reserve
        self._raise_fd_limit = raise_fd_limit

    @property
    def preroll_seconds(self) -> float:
        """Seconds of packets each worker keeps for clips (0: none); applies at the next start."""
        return self._workers.spawner.preroll_seconds

    @preroll_seconds.setter
    def preroll_seconds(self, value: float) -> None:
        self._workers.spawner.preroll_seconds = value

    def warm_up(self) -> None:
        """Start the worker launcher now, without waiting for it: its imports (~0.2 s of CPU) then
        overlap whatever the caller does before the first camera start (the station: loading its
        cameras). Without a call the launcher starts at the first spawn of a default worker."""
        self._call(self._workers.warm_up_launcher)

    def launcher_pid(self) -> int | None:
        """The worker launcher's pid while one runs (see app.supervisor.launcher), else None."""
        return self._workers.launcher_pid()

    @property
    def loop_stalls(self) -> int:
        """How often the supervisor loop itself was stopped (SIGSTOP, a suspended machine)."""
        return self._loop.loop_stalls

    @property
    def loop_passes(self) -> int:
        """Passes of the supervisor loop so far: after N more, every timer due before has been seen."""
        return self._loop.loop_passes

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Reap a crashed run's leftovers, then start the supervisor thread."""
        if self._thread is not None:
            raise SupervisorError("supervisor already started")
        if self._closed:
            raise SupervisorError("supervisor was shut down; create a new one")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._raise_fd_limit:
            raise_nofile_limit()
        self._acquire_run_dir()
        try:
            self.reap_report = reap_leftovers(self.run_dir)
            self.preview_dir.mkdir(parents=True, exist_ok=True)
            selector = selectors.DefaultSelector()
            self._workers.selector = selector
            self._commands.open()
            selector.register(self._commands.wake_r, selectors.EVENT_READ, ("wake", None, None))
            self._workers.spawner.fd_reserve = FdReserve(self._fd_reserve_size)
        except BaseException:
            self._release_run_dir()
            raise
        self._thread = threading.Thread(target=self._loop.run, name="edge-supervisor", daemon=True)
        self._commands.owner = self._thread
        self._thread.start()
        self._sampler.start()
        # A station that exits without shutdown() still stops its workers gracefully
        # (a killed one relies on the workers' parent-death signal instead).
        atexit.register(self.shutdown)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every worker in parallel (TERM, KILL at the deadline) and end the thread."""
        thread = self._thread
        if thread is None or self._closed:
            self._closed = True
            return
        atexit.unregister(self.shutdown)
        stop_timeout = self.policy.stop_timeout if timeout is None else timeout
        if thread.is_alive() and threading.current_thread() is not thread:
            try:
                self._commands.submit(self._cmd_shutdown, stop_timeout).result(COMMAND_TIMEOUT)
            except (SupervisorError, FutureTimeout):
                pass
            thread.join(stop_timeout + 5.0)
            if thread.is_alive():
                log.error("supervisor thread did not end within %.1f s", stop_timeout + 5.0)
        elif threading.current_thread() is thread:
            raise SupervisorError("shutdown() cannot be called from a supervisor callback")

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ public API

    def start_worker(self, spec: WorkerSpec) -> WorkerStatus:
        """Spawn the camera's worker; raises AlreadyRunning if it is supervised already."""
        return self._call(self._cmd_start, spec)

    def stop_worker(self, camera_id: int, timeout: float | None = None) -> WorkerStatus:
        """TERM -> timeout -> KILL of the worker's group and descendants; cancels a backoff/failed retry."""
        self._commands.refuse_on_owner(f"stop_worker({camera_id})")
        stop_timeout = self.policy.stop_timeout if timeout is None else timeout
        done = self._call(self._cmd_stop, camera_id, stop_timeout)
        return self._commands.wait(done, stop_timeout + 10.0, f"stop of camera {camera_id}")

    def restart_worker(self, spec: WorkerSpec) -> WorkerStatus:
        """Stop (if needed) and start again with spec, as one operation."""
        self._commands.refuse_on_owner(f"restart_worker({spec.camera_id})")
        done = self._call(self._cmd_restart, spec)
        return self._commands.wait(done, self.policy.stop_timeout + 10.0, f"restart of camera {spec.camera_id}")

    def status(self, camera_id: int) -> WorkerStatus:
        ws = self.statuses().get(camera_id)
        return ws if ws is not None else WorkerStatus(camera_id=camera_id, state=WorkerState.STOPPED)

    def statuses(self) -> Mapping[int, WorkerStatus]:
        """Every supervised worker's status at one moment (read-only).

        The snapshot is kept while nothing happened (no event: state, heartbeat, exit, log) and for
        at most :data:`STATUS_TICK` seconds, so the ages and uptimes in it are at most that old. A
        change made by a command shows at once: its event is counted before the command returns.
        """
        key = (self._workers.changes, int(self._clock() / STATUS_TICK))
        memo = self._status_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        with self._workers.lock:
            now = self._clock()
            key = (self._workers.changes, int(now / STATUS_TICK))
            out = MappingProxyType({cid: self._workers.snapshot(s, now)
                                    for cid, s in sorted(self._workers.slots.items())})
            self._status_memo = (key, out)
        return out

    def logs(self, camera_id: int, limit: int = 200) -> list[LogLine]:
        with self._workers.lock:
            slot = self._workers.slots.get(camera_id)
        return slot.log.tail(limit) if slot is not None else []

    def log_path(self, camera_id: int) -> Path:
        return self._workers.log_path(camera_id)

    def stats(self, camera_id: int) -> ProcessStats | None:
        with self._workers.lock:
            slot = self._workers.slots.get(camera_id)
            if slot is None or slot.proc is None:
                return None
            return slot.proc.stats

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call callback(event) on the supervisor thread for every event; returns unsubscribe."""
        return self._workers.events.subscribe(callback)

    def preview_path(self, camera_id: int) -> Path | None:
        with self._workers.lock:
            slot = self._workers.slots.get(camera_id)
            if slot is None or slot.proc is None:
                return None
            return slot.proc.preview

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._workers.closing

    def request_evidence(self, camera_id: int, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Ask the camera's running worker for a snapshot or a clip (see app.supervisor.evidence)."""
        self._commands.refuse_on_owner(f"request_evidence({camera_id})")
        return request_evidence(self, camera_id, request, timeout)

    def take_snapshot(self, camera_id: int, fmt: str = "png", timeout: float = 5.0) -> tuple[dict[str, Any], bytes]:
        """The worker's latest frame at the source's resolution, as PNG or JPEG: (answer, bytes)."""
        self._commands.refuse_on_owner(f"take_snapshot({camera_id})")
        return take_snapshot(self, camera_id, fmt, timeout)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._workers.closing:
            raise SupervisorError("supervisor is shutting down")
        return self._commands.call(fn, *args)

    # ------------------------------------------------------------------ run dir lock

    def _acquire_run_dir(self) -> None:
        if fcntl is None:
            return
        path = self.run_dir / "supervisor.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SupervisorError(
                f"run dir {self.run_dir} is in use by another running station (pid {holder})"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_run_dir(self) -> None:
        if self._lock_fd is not None and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    def _finished(self) -> None:
        """The supervisor thread ends (every worker is gone)."""
        self._sampler.stop()
        with contextlib.suppress(OSError):
            self.preview_dir.rmdir()  # only if empty
        self._release_run_dir()
        self._closed = True

    # ------------------------------------------------------------------ commands (on the supervisor thread)

    def _cmd_start(self, spec: WorkerSpec) -> WorkerStatus:
        if self._workers.closing:
            raise SupervisorError("supervisor is shutting down")
        slot = self._workers.slot_for(spec)
        if slot.state not in (WorkerState.STOPPED, WorkerState.FAILED):
            raise AlreadyRunning(
                f"camera {spec.camera_id}: worker is already {slot.state.value}"
                + (f" (pid {slot.proc.pid})" if slot.proc else "")
            )
        slot.spec = spec
        actions = slot.lc.start_requested()
        self._workers.slog(slot, "INFO", f"start requested ({spec.name}: {spec.source})")
        self._workers.apply(slot, actions)
        return self._workers.snapshot(slot, self._clock())

    def _cmd_stop(self, camera_id: int, timeout: float) -> Future[WorkerStatus]:
        slot = self._workers.slots.get(camera_id)
        done: Future[WorkerStatus] = Future()
        if slot is None or slot.state == WorkerState.STOPPED:
            raise NotRunning(f"camera {camera_id}: worker is not running")
        slot.pending_spec = None
        waiters, slot.restart_waiters = slot.restart_waiters, []
        for w in waiters:  # a stop overrides a restart still under way
            w.set_exception(SupervisorError(f"camera {camera_id}: restart cancelled by a stop"))
        actions = slot.lc.stop_requested(timeout)
        if slot.proc is None:  # BACKOFF or FAILED: the pending retry is cancelled
            self._workers.apply(slot, actions)
            done.set_result(self._workers.snapshot(slot, self._clock()))
            return done
        slot.stop_waiters.append(done)
        self._workers.apply(slot, actions)
        return done

    def _cmd_restart(self, spec: WorkerSpec) -> Future[WorkerStatus]:
        if self._workers.closing:
            raise SupervisorError("supervisor is shutting down")
        slot = self._workers.slot_for(spec)
        done: Future[WorkerStatus] = Future()
        self._workers.slog(slot, "INFO", "restart requested")
        if slot.proc is None:
            slot.spec = spec
            try:
                self._workers.apply(slot, slot.lc.restart_requested())
            except SupervisorError as exc:
                done.set_exception(exc)
                return done
            done.set_result(self._workers.snapshot(slot, self._clock()))
            return done
        slot.pending_spec = spec
        slot.restart_waiters.append(done)
        self._workers.apply(slot, slot.lc.restart_requested())
        return done

    def _cmd_shutdown(self, timeout: float) -> None:
        self._workers.closing = True
        self._workers.pmap = ppid_map()
        now = self._clock()
        try:
            for slot in self._workers.slots.values():
                slot.pending_spec = None
                proc = slot.proc
                if proc is not None and proc.exited:
                    continue
                actions = slot.lc.shutdown_requested(timeout)
                self._workers.apply(slot, actions)
                if proc is not None and not any(isinstance(a, Terminate) for a in actions) \
                        and proc.stop_deadline is not None:
                    proc.stop_deadline = min(proc.stop_deadline, now + timeout)
        finally:
            self._workers.pmap = None
