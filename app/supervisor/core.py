"""The process supervisor: one long-lived thread that spawns and watches camera workers.

Threading model
---------------
Everything that touches a process happens on the supervisor thread: spawning (so the
workers' PR_SET_PDEATHSIG, which fires when the *spawning thread* ends, stays armed
for the life of the station), signalling, reaping, reading pipes. Public methods
called from other threads enqueue a command, wake the thread through a pipe and wait
on a future. Reads (status, logs, stats) take a lock and copy.

One ``selectors`` loop waits on: the wake pipe, every worker's pidfd (Linux; exits
are seen within a millisecond; elsewhere exits are polled), and every worker's
stdout/stderr pipe (non-blocking, bounded buffers). Timers (backoff, stop deadlines,
heartbeat timeouts, stats) are plain deadlines checked after each wake-up.

State machine (per camera)
--------------------------
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
import json
import logging
import os
import queue
import re
import secrets
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

try:
    import fcntl
except ImportError:  # not POSIX: the run-dir lock is skipped
    fcntl = None  # type: ignore[assignment]

from app.domain.text import mask_urls, printable
from app.supervisor.evidence import evidence_dir, request_evidence, take_snapshot
from app.supervisor.fdreserve import (
    DEFAULT_RESERVE,
    FdReserve,
    is_transient_spawn_error,
    raise_nofile_limit,
)
from app.supervisor.logbuf import LogSink, parse_worker_line
from app.supervisor.model import (
    AlreadyRunning,
    ExitInfo,
    LogLine,
    NotRunning,
    ProcessStats,
    RestartPolicy,
    SpawnError,
    SupervisorError,
    SupervisorEvent,
    WorkerSpec,
    WorkerState,
    WorkerStatus,
)
from app.supervisor.pidfiles import (
    PidRecord,
    ReapReport,
    reap_leftovers,
    remove_pidfile,
    write_pidfile,
)
from app.supervisor.policy import StartRateLimiter, backoff_delay
from app.supervisor.proctree import (
    CAMERA_ENV,
    INSTANCE_ENV,
    MARKER_ENV,
    OWNER_ENV,
    PARENT_ENV,
    ProcRef,
    TreeSampler,
    descendants,
    find_by_env_values,
    ppid_map,
    ref_of,
    signal_group,
    signal_name,
    signal_refs,
)

log = logging.getLogger(__name__)

CONFIG_ERROR_EXIT = 78
HAS_PIDFD = hasattr(os, "pidfd_open")
READ_CHUNK = 65536
MAX_PENDING_LINE = 65536  # a stdout/stderr "line" longer than this is cut
POLL_INTERVAL = 0.1  # exit polling where there is no pidfd
STATS_INTERVAL = 1.0
COMMAND_TIMEOUT = 30.0
# The loop wakes at least once a second; a wake-up this much later than planned (or a
# pass over the loop this long) means the station itself was stopped (SIGSTOP, a
# suspended machine, a long pause): heartbeat ages then count from the resume.
LOOP_STALL_SLACK = 1.0
MAX_SOURCE_BYTES = 65536  # what the worker reads of its source from stdin

_ACTIVE = (WorkerState.STARTING, WorkerState.RUNNING, WorkerState.STALLED, WorkerState.STOPPING)


def default_worker_command() -> list[str]:
    try:
        from app.worker.launch import worker_command
    except ImportError as exc:  # the worker package is missing from this build
        raise SpawnError(f"cannot find the worker launcher app.worker.launch: {exc}") from exc
    return list(worker_command())


def _has_exited(pid: int) -> bool:
    """Whether our child has exited, without reaping it (its pgid stays ours until _on_exit)."""
    if not hasattr(os, "waitid"):
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True
    except OSError:
        return False


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


_HB_FLOATS = ("ts", "fps", "motion", "last_frame_age")
_HB_INTS = ("camera_id", "decoded", "dropped", "width", "height", "preview_seq", "reconnects")
_SOURCES = ("up", "down", "opening")


def _clean_heartbeat(raw: dict[str, Any], prev_source: object) -> dict[str, Any]:
    """The contract's heartbeat fields with their contract types; anything else is dropped.

    A worker bug must not put a string where a number is read, or make the source
    state flap (an invalid "source" keeps the previous one).
    """
    hb: dict[str, Any] = {"type": "heartbeat"}
    for key in _HB_FLOATS:
        v = raw.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            hb[key] = float(v)
    for key in _HB_INTS:
        v = raw.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            hb[key] = v
    if isinstance(raw.get("motion_active"), bool):
        hb["motion_active"] = raw["motion_active"]
    source = raw.get("source")
    hb["source"] = source if source in _SOURCES else prev_source
    for key in ("codec", "error"):
        v = raw.get(key)
        hb[key] = printable(mask_urls(v[:500])) if isinstance(v, str) else None
    return hb


def _sanitize(token: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", token)[:48] or "x"


@dataclass(eq=False)
class _Proc:
    """One spawned worker process (a new one for every spawn)."""

    popen: subprocess.Popen[bytes]
    ref: ProcRef
    instance: str
    spawn_mono: float
    started_at: float
    preview: Path | None
    pidfd: int | None = None
    out_fd: int | None = None
    err_fd: int | None = None
    out_buf: bytearray = field(default_factory=bytearray)
    err_buf: bytearray = field(default_factory=bytearray)
    descendants: set[ProcRef] = field(default_factory=set)
    sampler: TreeSampler = field(default_factory=TreeSampler)
    stats: ProcessStats | None = None
    stop_reason: str | None = None  # stop | shutdown | restart | hung | stalled
    stop_note: str = ""  # human detail for hung/stalled
    stop_deadline: float | None = None
    killed: bool = False
    exited: bool = False
    stable: bool = False
    last_hb_mono: float | None = None
    hb: dict[str, Any] = field(default_factory=dict)
    last_err_line: str = ""
    strays_killed: int = 0

    @property
    def pid(self) -> int:
        return self.ref.pid


@dataclass(eq=False)
class _Slot:
    """Everything the supervisor keeps about one camera across spawns."""

    spec: WorkerSpec
    log: LogSink
    limiter: StartRateLimiter
    state: WorkerState = WorkerState.STOPPED
    proc: _Proc | None = None
    restarts: int = 0
    fail_streak: int = 0
    next_start: float | None = None  # monotonic time of the next automatic start
    probing: bool = False  # the current run is a FAILED-state retry probe
    last_exit: ExitInfo | None = None
    error: str | None = None
    stop_waiters: list[Future[WorkerStatus]] = field(default_factory=list)
    restart_waiters: list[Future[WorkerStatus]] = field(default_factory=list)
    pending_spec: WorkerSpec | None = None
    last_summary: float = 0.0

    @property
    def camera_id(self) -> int:
        return self.spec.camera_id


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
    ) -> None:
        self.run_dir = Path(run_dir)
        self.log_dir = Path(log_dir)
        self.policy = policy or RestartPolicy()
        digest = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        self.owner = owner or f"u{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}"
        self._log_max_bytes = log_max_bytes
        self._log_backups = log_backups
        self._log_ring_size = log_ring_size
        self._log_rate = log_rate
        self._log_burst = log_burst
        self._clock = clock
        if preview_root is None:
            shm = Path("/dev/shm")
            if shm.is_dir() and os.access(shm, os.W_OK):
                preview_root = shm / f"edge-station-{_sanitize(self.owner)}"
            else:
                preview_root = self.run_dir / "preview"
        self.preview_dir = preview_root
        #: seconds of packets each worker keeps for clips (0: none); applies at the next start
        self.preroll_seconds = 10.0

        self._lock = threading.RLock()
        self._slots: dict[int, _Slot] = {}
        self._subscribers: list[Callable[[SupervisorEvent], None]] = []
        self._pending_events: list[SupervisorEvent] = []
        self._commands: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]]
        self._commands = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r = -1
        self._wake_w = -1
        self._lock_fd: int | None = None
        self._closing = False
        self._closed = False
        self._next_stats = 0.0
        self._sweeps: list[tuple[_Slot, _Proc]] = []
        self.reap_report: ReapReport | None = None
        self._fd_reserve_size = fd_reserve
        self._raise_fd_limit = raise_fd_limit
        self._fd_reserve: FdReserve | None = None
        # Monotonic time the loop last resumed from a stall of its own (see LOOP_STALL_SLACK).
        self._resumed_at = float("-inf")
        self.loop_stalls = 0

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
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None, None))
            self._fd_reserve = FdReserve(self._fd_reserve_size)
        except BaseException:
            self._release_run_dir()
            raise
        self._thread = threading.Thread(target=self._run, name="edge-supervisor", daemon=True)
        self._thread.start()
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
                self._submit(self._cmd_shutdown, stop_timeout).result(COMMAND_TIMEOUT)
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

    def start_workers(self, specs: Iterable[WorkerSpec]) -> dict[int, WorkerStatus | SupervisorError]:
        """Start several workers in one command (autostart); errors are returned, not raised."""
        return self._call(self._cmd_start_many, list(specs))

    def stop_worker(self, camera_id: int, timeout: float | None = None) -> WorkerStatus:
        """TERM -> timeout -> KILL of the worker's group and descendants; cancels a backoff/failed retry."""
        self._refuse_on_own_thread(f"stop_worker({camera_id})")
        stop_timeout = self.policy.stop_timeout if timeout is None else timeout
        done: Future[WorkerStatus] = self._call(self._cmd_stop, camera_id, stop_timeout)
        return self._wait(done, stop_timeout + 10.0, f"stop of camera {camera_id}")

    def restart_worker(self, spec: WorkerSpec) -> WorkerStatus:
        """Stop (if needed) and start again with spec, as one operation."""
        self._refuse_on_own_thread(f"restart_worker({spec.camera_id})")
        done: Future[WorkerStatus] = self._call(self._cmd_restart, spec)
        return self._wait(done, self.policy.stop_timeout + 10.0, f"restart of camera {spec.camera_id}")

    def status(self, camera_id: int) -> WorkerStatus:
        with self._lock:
            slot = self._slots.get(camera_id)
            if slot is None:
                return WorkerStatus(camera_id=camera_id, state=WorkerState.STOPPED)
            return self._snapshot(slot, self._clock())

    def statuses(self) -> dict[int, WorkerStatus]:
        with self._lock:
            now = self._clock()
            return {cid: self._snapshot(s, now) for cid, s in sorted(self._slots.items())}

    def logs(self, camera_id: int, limit: int = 200) -> list[LogLine]:
        with self._lock:
            slot = self._slots.get(camera_id)
        return slot.log.tail(limit) if slot is not None else []

    def log_path(self, camera_id: int) -> Path:
        return self.log_dir / f"camera-{camera_id}.log"

    def stats(self, camera_id: int) -> ProcessStats | None:
        with self._lock:
            slot = self._slots.get(camera_id)
            if slot is None or slot.proc is None:
                return None
            return slot.proc.stats

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call callback(event) on the supervisor thread for every event; returns unsubscribe."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def preview_path(self, camera_id: int) -> Path | None:
        with self._lock:
            slot = self._slots.get(camera_id)
            if slot is None or slot.proc is None:
                return None
            return slot.proc.preview

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closing

    # ------------------------------------------------------------------ command plumbing

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        if threading.current_thread() is self._thread:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)
            return fut
        if self._thread is None or not self._thread.is_alive():
            raise SupervisorError("supervisor is not running (start() it first, or it was shut down)")
        self._commands.put((fn, args, fut))
        self._wake()
        return fut

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closing:
            raise SupervisorError("supervisor is shutting down")
        return self._wait(self._submit(fn, *args), COMMAND_TIMEOUT, fn.__name__.lstrip("_"))

    def _refuse_on_own_thread(self, what: str) -> None:
        if threading.current_thread() is self._thread:
            raise SupervisorError(
                f"{what} waits for the supervisor thread and cannot be called from a "
                "supervisor callback; hand it to another thread"
            )

    def _wait(self, fut: Future[Any], timeout: float, what: str) -> Any:
        if threading.current_thread() is self._thread and not fut.done():
            raise SupervisorError(f"{what}: cannot wait for completion on the supervisor thread")
        try:
            return fut.result(timeout)
        except FutureTimeout as exc:
            raise SupervisorError(f"{what}: no answer from the supervisor thread within {timeout:.0f} s") from exc

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

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

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        assert self._selector is not None
        try:
            while not (self._closing and not self._live_procs()):
                timeout = self._next_timeout()
                asleep = self._clock()
                ready = self._selector.select(timeout)
                awake = self._clock()
                self._note_stall(awake - asleep - timeout, "paused")
                with self._lock:
                    for key, _mask in ready:
                        self._guard(self._dispatch, key)
                    self._guard(self._drain_commands)
                self._flush_events()
                with self._lock:
                    self._guard(self._tick)
                    if not self._closing:  # at shutdown: one sweep once every worker is gone
                        self._guard(self._sweep)
                self._flush_events()
                self._note_stall(self._clock() - awake, "busy")
        finally:
            self._cleanup_thread()

    def _note_stall(self, late: float, how: str) -> None:
        """The loop itself stalled: do not blame the workers for the heartbeats it missed."""
        if late <= LOOP_STALL_SLACK:
            return
        self._resumed_at = self._clock()
        self.loop_stalls += 1
        log.warning("supervisor loop was %s for %.1f s: worker heartbeat ages count from now", how, late)

    def _hb_since(self, proc: _Proc) -> float | None:
        """Where the worker's heartbeat age counts from (None: no heartbeat yet)."""
        if proc.last_hb_mono is None:
            return None
        return max(proc.last_hb_mono, self._resumed_at)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one unit of loop work; a bug in it is logged, never kills the thread."""
        try:
            fn(*args)
        except Exception:
            log.exception("supervisor: unexpected error in %s", getattr(fn, "__name__", fn))

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        kind, slot, proc = key.data
        if kind == "wake":
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
        elif kind == "exit":
            self._on_exit(slot, proc)
        elif kind == "out":
            self._read_pipe(slot, proc, stdout=True)
        elif kind == "err":
            self._read_pipe(slot, proc, stdout=False)

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, args, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

    def _live_procs(self) -> list[_Proc]:
        return [s.proc for s in self._slots.values() if s.proc is not None and not s.proc.exited]

    def _next_timeout(self) -> float:
        now = self._clock()
        deadlines = [self._next_stats]
        pol = self.policy
        with self._lock:
            for slot in self._slots.values():
                if slot.next_start is not None:
                    deadlines.append(slot.next_start)
                proc = slot.proc
                if proc is None:
                    continue
                if proc.pidfd is None:
                    deadlines.append(now + POLL_INTERVAL)
                if proc.stop_deadline is not None and not proc.killed:
                    deadlines.append(proc.stop_deadline)
                if proc.stop_reason is None:
                    since = self._hb_since(proc)
                    if since is None:
                        deadlines.append(max(proc.spawn_mono, self._resumed_at) + pol.start_timeout)
                    else:
                        deadlines.append(since + pol.heartbeat_timeout)
                    if not proc.stable:
                        deadlines.append(proc.spawn_mono + pol.stable_after)
                if slot.log.suppressed:
                    deadlines.append(slot.last_summary + 1.0)
        return min(max(0.0, min(deadlines) - now), 1.0)

    def _tick(self) -> None:
        now = self._clock()
        pol = self.policy
        for slot in list(self._slots.values()):
            proc = slot.proc
            if proc is not None and not proc.exited:
                if proc.pidfd is None and proc.popen.poll() is not None:
                    self._on_exit(slot, proc)
                    continue
                if proc.stop_deadline is not None and not proc.killed and now >= proc.stop_deadline:
                    if _has_exited(proc.pid):  # it has exited; its pidfd is not read yet
                        self._on_exit(slot, proc)
                        continue
                    self._slog(slot, "WARNING", f"worker pid {proc.pid} did not stop within the timeout: killing it")
                    self._kill_tree(proc)
                if proc.stop_reason is None and self._heartbeat_overdue(proc, now):
                    # Before judging: read what already waits in its pipe.
                    self._read_pipe(slot, proc, stdout=True, drain=True)
                    if slot.proc is not proc or proc.exited or proc.stop_reason is not None:
                        continue
                    since = self._hb_since(proc)
                    start_from = max(proc.spawn_mono, self._resumed_at)
                    if since is None and now - start_from >= pol.start_timeout:
                        self._restart_for(slot, proc, "hung",
                                          f"hung: no heartbeat within {pol.start_timeout:g} s of start")
                    elif since is not None and now - since >= pol.heartbeat_timeout:
                        self._restart_for(slot, proc, "hung",
                                          f"hung: no heartbeat for {now - since:.1f} s")
                if (not proc.stable and proc.stop_reason is None and proc.last_hb_mono is not None
                        and now - proc.spawn_mono >= pol.stable_after):
                    proc.stable = True
                    slot.fail_streak = 0
                    if slot.probing:
                        slot.probing = False
                        slot.limiter.reset()
                        self._slog(slot, "INFO", "worker recovered: running stably again")
            if slot.next_start is not None and now >= slot.next_start and slot.proc is None:
                slot.next_start = None
                if slot.state == WorkerState.FAILED:
                    slot.probing = True
                    self._slog(slot, "INFO", "retrying the failed worker (slow probe)")
                self._try_start(slot)
            if slot.log.suppressed and now - slot.last_summary >= 1.0:
                slot.last_summary = now
                line = slot.log.flush_summary()
                if line is not None:
                    self._emit_log(slot, line)
        if now >= self._next_stats:
            self._next_stats = now + STATS_INTERVAL
            self._sample_stats()

    def _heartbeat_overdue(self, proc: _Proc, now: float) -> bool:
        pol = self.policy
        since = self._hb_since(proc)
        if since is None:
            return now - max(proc.spawn_mono, self._resumed_at) >= pol.start_timeout
        return now - since >= pol.heartbeat_timeout

    def _cleanup_thread(self) -> None:
        with self._lock:
            for slot in self._slots.values():
                proc = slot.proc
                if proc is not None and not proc.exited:  # only on an internal error
                    self._kill_tree(proc)
                    with contextlib.suppress(Exception):
                        proc.popen.wait(2.0)
                    self._on_exit(slot, proc)
                for fut in slot.stop_waiters + slot.restart_waiters:
                    if not fut.done():
                        fut.set_result(self._snapshot(slot, self._clock()))
                slot.stop_waiters.clear()
                slot.restart_waiters.clear()
            self._sweep()
            for slot in self._slots.values():
                slot.log.close()
        if self._fd_reserve is not None:
            self._fd_reserve.close()
        self._flush_events()
        while True:
            try:
                _fn, _args, fut = self._commands.get_nowait()
            except queue.Empty:
                break
            if not fut.done():
                fut.set_exception(SupervisorError("supervisor has shut down"))
        if self._selector is not None:
            self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self.preview_dir.rmdir()  # only if empty
        self._release_run_dir()
        self._closed = True

    # ------------------------------------------------------------------ commands

    def _slot_for(self, spec: WorkerSpec) -> _Slot:
        slot = self._slots.get(spec.camera_id)
        if slot is None:
            sink = LogSink(
                self.log_path(spec.camera_id),
                ring_size=self._log_ring_size,
                max_bytes=self._log_max_bytes,
                backups=self._log_backups,
                rate=self._log_rate,
                burst=self._log_burst,
            )
            pol = self.policy
            slot = _Slot(spec=spec, log=sink,
                         limiter=StartRateLimiter(pol.rate_limit_starts, pol.rate_limit_window))
            self._slots[spec.camera_id] = slot
        return slot

    def _cmd_start(self, spec: WorkerSpec) -> WorkerStatus:
        if self._closing:
            raise SupervisorError("supervisor is shutting down")
        slot = self._slot_for(spec)
        if slot.state not in (WorkerState.STOPPED, WorkerState.FAILED):
            raise AlreadyRunning(
                f"camera {spec.camera_id}: worker is already {slot.state.value}"
                + (f" (pid {slot.proc.pid})" if slot.proc else "")
            )
        slot.spec = spec
        slot.restarts = 0
        slot.fail_streak = 0
        slot.probing = False
        slot.next_start = None
        slot.error = None
        slot.limiter.reset()
        self._slog(slot, "INFO", f"start requested ({spec.name}: {spec.source})")
        self._spawn_or_fail(slot, automatic=False)
        return self._snapshot(slot, self._clock())

    def _cmd_start_many(self, specs: list[WorkerSpec]) -> dict[int, WorkerStatus | SupervisorError]:
        out: dict[int, WorkerStatus | SupervisorError] = {}
        for spec in specs:
            try:
                out[spec.camera_id] = self._cmd_start(spec)
            except SupervisorError as exc:
                out[spec.camera_id] = exc
        return out

    def _cmd_stop(self, camera_id: int, timeout: float) -> Future[WorkerStatus]:
        slot = self._slots.get(camera_id)
        done: Future[WorkerStatus] = Future()
        if slot is None or slot.state == WorkerState.STOPPED:
            raise NotRunning(f"camera {camera_id}: worker is not running")
        slot.pending_spec = None
        waiters, slot.restart_waiters = slot.restart_waiters, []
        for w in waiters:  # a stop overrides a restart still under way
            w.set_exception(SupervisorError(f"camera {camera_id}: restart cancelled by a stop"))
        if slot.proc is None:  # BACKOFF or FAILED: cancel the pending retry
            slot.next_start = None
            slot.probing = False
            self._slog(slot, "INFO", f"stop requested while {slot.state.value}: retry cancelled")
            self._set_state(slot, WorkerState.STOPPED, "stopped by request")
            done.set_result(self._snapshot(slot, self._clock()))
            return done
        slot.stop_waiters.append(done)
        proc = slot.proc
        if proc.stop_reason in ("stop", "shutdown"):
            return done  # a stop is already under way; wait for the same exit
        self._slog(slot, "INFO", f"stop requested (pid {proc.pid}, timeout {timeout:g} s)")
        self._set_state(slot, WorkerState.STOPPING, "stop requested")
        self._begin_stop(proc, "stop", timeout, graceful=True)
        return done

    def _cmd_restart(self, spec: WorkerSpec) -> Future[WorkerStatus]:
        if self._closing:
            raise SupervisorError("supervisor is shutting down")
        slot = self._slot_for(spec)
        done: Future[WorkerStatus] = Future()
        self._slog(slot, "INFO", "restart requested")
        if slot.proc is None:
            slot.next_start = None
            slot.probing = False
            slot.spec = spec
            slot.error = None
            slot.fail_streak = 0
            slot.limiter.reset()
            try:
                self._spawn_or_fail(slot, automatic=False)
            except SupervisorError as exc:
                done.set_exception(exc)
                return done
            done.set_result(self._snapshot(slot, self._clock()))
            return done
        slot.pending_spec = spec
        slot.restart_waiters.append(done)
        proc = slot.proc
        if proc.stop_reason in ("stop", "shutdown", None):
            proc.stop_reason = None  # turn a running stop into a restart
            self._set_state(slot, WorkerState.STOPPING, "restart requested")
            self._begin_stop(proc, "restart", self.policy.stop_timeout, graceful=True)
        else:  # already being killed for hung/stalled: start the new spec after the exit
            proc.stop_reason = "restart"
        return done

    def _cmd_shutdown(self, timeout: float) -> None:
        self._closing = True
        pmap = ppid_map()
        now = self._clock()
        for slot in self._slots.values():
            slot.next_start = None
            slot.pending_spec = None
            proc = slot.proc
            if proc is None:
                if slot.state != WorkerState.STOPPED:
                    self._set_state(slot, WorkerState.STOPPED, "station shutting down")
                continue
            if proc.exited:
                continue
            if proc.stop_reason is None or proc.stop_reason in ("restart", "stalled"):
                self._set_state(slot, WorkerState.STOPPING, "station shutting down")
                self._begin_stop(proc, "shutdown", timeout, graceful=True, pmap=pmap)
            else:
                proc.stop_reason = "shutdown" if proc.stop_reason == "stop" else proc.stop_reason
                if proc.stop_deadline is not None:
                    proc.stop_deadline = min(proc.stop_deadline, now + timeout)

    # ------------------------------------------------------------------ spawning

    def _spawn_or_fail(self, slot: _Slot, automatic: bool) -> None:
        """Spawn now; a spawn error makes the slot FAILED (and is raised for operator starts)."""
        try:
            self._spawn(slot)
        except SpawnError as exc:
            if exc.transient and not self._closing:
                # Out of descriptors, memory or processes for a moment: back off and
                # retry (the rate limit still applies), not a 300 s FAILED.
                slot.last_exit = ExitInfo(None, None, str(exc), time.time())
                slot.error = str(exc)
                slot.fail_streak += 1
                delay = backoff_delay(self.policy, slot.fail_streak)
                slot.next_start = self._clock() + delay
                self._slog(slot, "WARNING", f"{exc}: retrying in {delay:.2f} s")
                self._set_state(slot, WorkerState.BACKOFF, f"restart in {delay:.2f} s", delay=delay)
                return
            slot.last_exit = ExitInfo(None, None, str(exc), time.time())
            self._enter_failed(slot, str(exc), retry=automatic)
            if not automatic:
                raise
            return
        slot.limiter.record(self._clock())
        if automatic:
            slot.restarts += 1

    def _try_start(self, slot: _Slot) -> None:
        """An automatic (re)start, subject to the start-rate limit."""
        now = self._clock()
        if not slot.probing and not slot.limiter.allowed(now):
            pol = self.policy
            self._enter_failed(
                slot,
                f"start rate limit reached: {slot.limiter.count(now)} starts within "
                f"{pol.rate_limit_window:g} s (limit {pol.rate_limit_starts}); "
                f"retrying every {pol.failed_retry_interval:g} s",
                retry=True,
            )
            return
        self._spawn_or_fail(slot, automatic=True)

    def _worker_argv(self, spec: WorkerSpec, preview: Path | None) -> list[str]:
        cmd = list(spec.command) if spec.command else default_worker_command()
        # The source (it may hold a camera password) goes to the worker on its stdin,
        # never on the command line that every local user can read.
        argv = [*cmd, "run", "--camera-id", str(spec.camera_id), "--source", "-"]
        if spec.loop:
            argv.append("--loop")
        if spec.max_fps is not None:
            argv += ["--max-fps", f"{spec.max_fps:g}"]
        if preview is not None:
            argv += ["--preview", str(preview)]
        argv += [
            "--motion-threshold", f"{spec.motion_threshold:g}",
            "--stall-timeout", f"{spec.stall_timeout:g}",
            "--heartbeat-interval", f"{self.policy.heartbeat_interval:g}",
        ]
        argv += self._evidence_args(spec.camera_id)
        argv += list(spec.extra_args)
        return argv

    def _evidence_args(self, camera_id: int) -> list[str]:
        directory = evidence_dir(self.run_dir, camera_id)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for stale in (*directory.glob("*.taken"), *directory.glob("*.part")):  # a killed worker's leftovers
                stale.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("camera %s: no evidence directory %s: %s", camera_id, directory, exc)
            return []
        return ["--evidence-dir", str(directory), "--preroll", f"{self.preroll_seconds:g}"]

    def request_evidence(self, camera_id: int, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Ask the camera's running worker for a snapshot or a clip (see app.supervisor.evidence)."""
        self._refuse_on_own_thread(f"request_evidence({camera_id})")
        return request_evidence(self, camera_id, request, timeout)

    def take_snapshot(self, camera_id: int, fmt: str = "png", timeout: float = 5.0) -> tuple[dict[str, Any], bytes]:
        """The worker's latest frame at the source's resolution, as PNG or JPEG: (answer, bytes)."""
        self._refuse_on_own_thread(f"take_snapshot({camera_id})")
        return take_snapshot(self, camera_id, fmt, timeout)

    def _preview_file(self, camera_id: int) -> Path:
        return self.preview_dir / f"cam-{camera_id}.preview"

    def _spawn(self, slot: _Slot) -> None:
        assert self._selector is not None
        initiated_at = time.time()
        spec = slot.spec
        preview = self._preview_file(spec.camera_id)
        with contextlib.suppress(FileNotFoundError):
            preview.unlink()
        argv = self._worker_argv(spec, preview)
        instance = secrets.token_hex(8)
        env = dict(os.environ)
        env.update({
            MARKER_ENV: "1",
            OWNER_ENV: self.owner,
            INSTANCE_ENV: instance,
            CAMERA_ENV: str(spec.camera_id),
            PARENT_ENV: str(os.getpid()),
        })
        source = spec.source.encode("utf-8")
        if len(source) >= MAX_SOURCE_BYTES or b"\n" in source:
            raise SpawnError(f"camera {spec.camera_id}: the source must be one line under "
                             f"{MAX_SOURCE_BYTES} bytes")
        reserve = self._fd_reserve or FdReserve(0)
        with reserve.opened():  # a full descriptor table still has room for this spawn
            try:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    env=env,
                    close_fds=True,
                )
            except OSError as exc:
                raise SpawnError(f"camera {spec.camera_id}: cannot start worker {argv[0]!r}: {exc}",
                                 transient=is_transient_spawn_error(exc)) from exc
            pid = popen.pid
            pidfd: int | None = None
            if HAS_PIDFD:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = None  # exits are then polled
        assert popen.stdin is not None
        try:  # a line far below the pipe's buffer: never blocks
            popen.stdin.write(source + b"\n")
            popen.stdin.close()
        except OSError:  # it died at once; its exit is reported as usual
            with contextlib.suppress(OSError):
                popen.stdin.close()
        try:
            ps = psutil.Process(pid)
            ref = ProcRef(pid, ps.create_time())
        except psutil.Error:
            ps = None
            ref = ProcRef(pid, time.time())
        proc = _Proc(popen=popen, ref=ref, instance=instance, spawn_mono=self._clock(),
                     started_at=time.time(), preview=preview, pidfd=pidfd)
        if ps is not None:
            proc.sampler.prime(ps)
        proc.stats = ProcessStats(pid=pid, cpu_percent=0.0, rss_bytes=0, threads=0, children=0,
                                  at=time.time())
        assert popen.stdout is not None and popen.stderr is not None
        proc.out_fd = popen.stdout.fileno()
        proc.err_fd = popen.stderr.fileno()
        for fd, kind in ((proc.out_fd, "out"), (proc.err_fd, "err")):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, (kind, slot, proc))
        if pidfd is not None:
            self._selector.register(pidfd, selectors.EVENT_READ, ("exit", slot, proc))
        slot.proc = proc
        slot.next_start = None
        try:
            write_pidfile(self.run_dir, PidRecord(
                camera_id=spec.camera_id, pid=pid, create_time=ref.create_time, instance=instance,
                owner=self.owner, started_at=proc.started_at, preview=str(preview),
            ))
        except OSError as exc:  # a safety net for crashes; the worker itself is fine
            self._slog(slot, "WARNING", f"cannot write the pid file in {self.run_dir}: {exc}")
        self._slog(slot, "INFO", f"worker started: pid {pid}")
        self._set_state(slot, WorkerState.STARTING, f"spawned pid {pid}", pid=pid,
                        initiated_at=initiated_at, spawn_ms=round((time.time() - initiated_at) * 1000, 3))

    # ------------------------------------------------------------------ stopping / killing

    def _refresh_descendants(self, proc: _Proc, pmap: dict[int, list[int]] | None = None) -> None:
        pmap = ppid_map() if pmap is None else pmap
        for pid in descendants(proc.pid, pmap):
            try:
                ref = ref_of(psutil.Process(pid))
            except psutil.Error:
                continue
            if ref is not None:
                proc.descendants.add(ref)

    def _begin_stop(self, proc: _Proc, reason: str, timeout: float, graceful: bool,
                    pmap: dict[int, list[int]] | None = None) -> None:
        proc.stop_reason = reason
        self._refresh_descendants(proc, pmap)
        if not graceful:
            self._kill_tree(proc)
            return
        outside = [r for r in proc.descendants if not _in_group(r.pid, proc.pid)]
        signal_group(proc.pid, signal.SIGTERM)
        signal_refs(outside, signal.SIGTERM)
        # A SIGSTOPped worker only acts on TERM once continued.
        signal_group(proc.pid, signal.SIGCONT)
        signal_refs(outside, signal.SIGCONT)
        proc.stop_deadline = self._clock() + timeout

    def _kill_tree(self, proc: _Proc) -> None:
        """SIGKILL the group (its leader is not reaped yet, so the pgid is ours) + descendants."""
        proc.killed = True
        if not proc.exited:
            signal_group(proc.pid, signal.SIGKILL)
        signal_refs(proc.descendants, signal.SIGKILL)

    def _restart_for(self, slot: _Slot, proc: _Proc, reason: str, note: str) -> None:
        """Hung (no heartbeat) or stalled (old last frame): kill it; the exit path restarts it."""
        proc.stop_note = note
        slot.error = note
        self._slog(slot, "WARNING", f"{note}: restarting the worker (pid {proc.pid})")
        self._set_state(slot, WorkerState.STALLED, note)
        if reason == "hung":  # it does not answer: TERM would be wasted time
            self._begin_stop(proc, "hung", 0.0, graceful=False)
        else:
            self._begin_stop(proc, reason, self.policy.stop_timeout, graceful=True)

    # ------------------------------------------------------------------ exits

    def _on_exit(self, slot: _Slot, proc: _Proc) -> None:
        if proc.exited:
            return
        # The leader is a zombie until we reap it, so its pgid cannot have been reused:
        # clear what is left of the group first.
        signal_group(proc.pid, signal.SIGKILL)
        try:
            rc = proc.popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pidfd said it exited; should not happen
            log.error("camera %s: pid %s signalled exit but could not be reaped", slot.camera_id, proc.pid)
            self._kill_tree(proc)
            rc = proc.popen.wait()
        proc.exited = True
        now_mono = self._clock()
        uptime = now_mono - proc.spawn_mono
        # Last words: drain what the worker wrote before it died, then drop the pipes
        # (a runaway grandchild may still hold them open).
        self._read_pipe(slot, proc, stdout=True, drain=True)
        self._read_pipe(slot, proc, stdout=False, drain=True)
        self._close_proc_fds(proc)
        # Descendants that outlived it: the tracked ones now; anything else carrying its
        # spawn token in a sweep right after this wake-up (a /proc scan of a few ms that
        # need not delay the restart).
        proc.strays_killed = signal_refs(proc.descendants, signal.SIGKILL)
        self._sweeps.append((slot, proc))
        with contextlib.suppress(OSError):
            remove_pidfile(self.run_dir, slot.camera_id)
        if proc.preview is not None:
            with contextlib.suppress(OSError):
                proc.preview.unlink()
        slot.proc = None

        code = rc if rc >= 0 else None
        sig = -rc if rc < 0 else None
        how = f"exit code {code}" if code is not None else f"killed by {signal_name(sig or 0)}"
        reason = self._exit_reason(proc, code, how)
        info = ExitInfo(code=code, signal=sig, reason=reason, at=time.time())
        slot.last_exit = info
        self._slog(slot, "INFO" if proc.stop_reason in ("stop", "shutdown", "restart") or code == 0 else "WARNING",
                   f"worker pid {proc.pid} ended after {uptime:.1f} s: {reason}")
        self._emit(slot, "exit", {"pid": proc.pid, "code": code, "signal": sig, "reason": reason,
                                  "uptime": uptime})
        self._decide_after_exit(slot, proc, info, uptime)

    def _sweep(self) -> None:
        """Kill what ended workers left behind that the periodic tracking had not seen."""
        sweeps, self._sweeps = self._sweeps, []
        if not sweeps:
            return
        # One pass for every worker that ended since the last sweep (a shutdown of 16
        # workers is one scan, not 16), over this user's processes started since.
        by_instance = find_by_env_values(INSTANCE_ENV, [p.instance for _s, p in sweeps],
                                         min(p.ref.create_time for _s, p in sweeps))
        for slot, proc in sweeps:
            found = {ref for p in by_instance.get(proc.instance, ())
                     if (ref := ref_of(p)) is not None}
            n = proc.strays_killed + signal_refs(found - proc.descendants, signal.SIGKILL)
            if n:
                self._slog(slot, "WARNING", f"killed {n} leftover descendant process(es) of pid {proc.pid}")

    def _exit_reason(self, proc: _Proc, code: int | None, how: str) -> str:
        r = proc.stop_reason
        if r in ("stop", "shutdown", "restart"):
            verb = {"stop": "stopped", "shutdown": "stopped (station shutdown)", "restart": "stopped for restart"}[r]
            return f"{verb}{' (killed after the stop timeout)' if proc.killed else ''} ({how})"
        if r in ("hung", "stalled"):
            return f"{proc.stop_note} ({how})"
        if code == 0:
            return "exited cleanly (exit code 0)"
        if code == CONFIG_ERROR_EXIT:
            detail = f": {proc.last_err_line}" if proc.last_err_line else ""
            return f"configuration error (exit code {CONFIG_ERROR_EXIT}){detail}"
        if code is not None:
            return f"crashed ({how})"
        return how

    def _decide_after_exit(self, slot: _Slot, proc: _Proc, info: ExitInfo, uptime: float) -> None:
        r = proc.stop_reason
        if r == "restart" and slot.pending_spec is not None:
            slot.spec = slot.pending_spec
            slot.pending_spec = None
            slot.error = None
            waiters, slot.restart_waiters = slot.restart_waiters, []
            if self._closing:
                self._set_state(slot, WorkerState.STOPPED, "station shutting down")
            else:
                try:
                    self._spawn_or_fail(slot, automatic=False)
                except SupervisorError as exc:
                    for w in waiters:
                        w.set_exception(exc)
                    waiters = []
            snap = self._snapshot(slot, self._clock())
            for w in waiters:
                w.set_result(snap)
            self._resolve_stop_waiters(slot)
            return
        if r in ("stop", "shutdown") or self._closing:
            slot.error = None
            self._set_state(slot, WorkerState.STOPPED, info.reason)
            self._resolve_stop_waiters(slot)
            return
        if info.code == 0 and r is None:
            self._set_state(slot, WorkerState.STOPPED, info.reason)
            return
        if info.code == CONFIG_ERROR_EXIT and r is None:
            self._enter_failed(slot, info.reason, retry=False)
            return
        self._after_failure(slot, info, uptime, stable=proc.stable)

    def _resolve_stop_waiters(self, slot: _Slot) -> None:
        snap = self._snapshot(slot, self._clock())
        waiters, slot.stop_waiters = slot.stop_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(snap)

    def _after_failure(self, slot: _Slot, info: ExitInfo, uptime: float, stable: bool) -> None:
        pol = self.policy
        stable = stable or uptime >= pol.stable_after
        if slot.probing and not stable:
            self._enter_failed(slot, f"retry failed: {info.reason}", retry=True)
            return
        if stable:
            slot.fail_streak = 0
        if stable and pol.crash_restart_immediately_if_stable:
            self._slog(slot, "INFO", "worker had been running stably: restarting at once")
            self._try_start(slot)
            return
        slot.fail_streak += 1
        delay = backoff_delay(pol, slot.fail_streak)
        slot.next_start = self._clock() + delay
        self._slog(slot, "INFO", f"restarting in {delay:.2f} s (failure {slot.fail_streak} in a row)")
        self._set_state(slot, WorkerState.BACKOFF, f"restart in {delay:.2f} s", delay=delay)

    def _enter_failed(self, slot: _Slot, reason: str, retry: bool) -> None:
        pol = self.policy
        slot.error = reason
        slot.next_start = self._clock() + pol.failed_retry_interval if retry else None
        self._slog(slot, "ERROR", f"worker failed: {reason}" + ("" if retry else " (not retried)"))
        self._set_state(slot, WorkerState.FAILED, reason)
        self._emit(slot, "failed", {"reason": reason, "retry": retry,
                                    "next_retry_in": pol.failed_retry_interval if retry else None})

    def _close_proc_fds(self, proc: _Proc) -> None:
        assert self._selector is not None
        for attr in ("out_fd", "err_fd", "pidfd"):
            fd = getattr(proc, attr)
            if fd is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
            setattr(proc, attr, None)
            if attr == "pidfd":
                with contextlib.suppress(OSError):
                    os.close(fd)
        for stream in (proc.popen.stdout, proc.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    # ------------------------------------------------------------------ pipes

    def _read_pipe(self, slot: _Slot, proc: _Proc, stdout: bool, drain: bool = False) -> None:
        fd = proc.out_fd if stdout else proc.err_fd
        if fd is None:
            return
        buf = proc.out_buf if stdout else proc.err_buf
        for _ in range(64 if drain else 1):  # one chunk per wake-up keeps the loop fair
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # EOF
                assert self._selector is not None
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
                if buf:
                    self._handle_line(slot, proc, bytes(buf), stdout)
                    buf.clear()
                if stdout:
                    proc.out_fd = None
                else:
                    proc.err_fd = None
                return
            if not stdout and not buf and slot.log.flood_limited() and b"\n" in chunk:
                # Flood fast path: count the whole lines without decoding them.
                head, _, tail = chunk.rpartition(b"\n")
                slot.log.count_dropped(head.count(b"\n") + 1)
                buf += tail
            else:
                buf += chunk
                start = 0
                while True:
                    nl = buf.find(b"\n", start)
                    if nl < 0:
                        break
                    self._handle_line(slot, proc, bytes(buf[start:nl]), stdout)
                    start = nl + 1
                del buf[:start]
            if len(buf) > MAX_PENDING_LINE:
                self._handle_line(slot, proc, bytes(buf[:MAX_PENDING_LINE]), stdout)
                buf.clear()

    def _handle_line(self, slot: _Slot, proc: _Proc, raw: bytes, stdout: bool) -> None:
        try:
            self._handle_line_unguarded(slot, proc, raw, stdout)
        except Exception:  # one odd line must not cost the worker its output
            log.exception("camera %s: cannot handle worker output line %r", slot.camera_id, raw[:200])

    def _handle_line_unguarded(self, slot: _Slot, proc: _Proc, raw: bytes, stdout: bool) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            return
        if stdout:
            if text.startswith("{"):
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and obj.get("type") == "heartbeat":
                    self._on_heartbeat(slot, proc, obj)
                    return
                if isinstance(obj, dict) and obj.get("type") == "evidence":
                    self._emit(slot, "evidence", obj)  # a snapshot/clip answer (app.supervisor.evidence)
                    return
            line = slot.log.add("worker", "INFO", f"[stdout] {text}", limited=True)
        else:
            level, msg = parse_worker_line(text)
            if level in ("ERROR", "CRITICAL") or not proc.last_err_line:
                proc.last_err_line = printable(mask_urls(msg[:500]))  # it ends up in exit reasons
            line = slot.log.add("worker", level, msg, limited=True)
        if line is not None:
            self._emit_log(slot, line)

    def _on_heartbeat(self, slot: _Slot, proc: _Proc, hb: dict[str, Any]) -> None:
        if slot.proc is not proc or proc.exited:
            return  # last words of a process that has already ended
        prev_source = proc.hb.get("source")
        hb = _clean_heartbeat(hb, prev_source)
        proc.hb = hb
        proc.last_hb_mono = self._clock()
        if proc.stop_reason is None and slot.state == WorkerState.STARTING:
            self._set_state(slot, WorkerState.RUNNING, "first heartbeat")
        source = hb.get("source")
        if source != prev_source:
            self._emit(slot, "source", {"from": prev_source, "to": source, "error": hb.get("error")})
            if source == "down":
                self._slog(slot, "WARNING", f"source down: {hb.get('error') or 'no detail'}")
            elif source == "up" and prev_source == "down":
                self._slog(slot, "INFO", "source back up")
        if slot.state == WorkerState.RUNNING and proc.stop_reason is None:
            err = hb.get("error")
            slot.error = str(err) if source != "up" and err is not None else None
        self._emit(slot, "heartbeat", hb)
        age = hb.get("last_frame_age")
        stall = slot.spec.stall_timeout
        if (proc.stop_reason is None and source == "up" and isinstance(age, int | float)
                and age > stall):
            self._restart_for(slot, proc, "stalled",
                              f"stalled: source up but last frame {age:.1f} s old (stall timeout {stall:g} s)")

    # ------------------------------------------------------------------ stats

    def _sample_stats(self) -> None:
        procs = self._live_procs()
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

    # ------------------------------------------------------------------ status & events

    def _snapshot(self, slot: _Slot, now: float) -> WorkerStatus:
        proc = slot.proc
        hb = proc.hb if proc is not None else {}
        hb_age = now - proc.last_hb_mono if proc is not None and proc.last_hb_mono is not None else None
        frame_age = hb.get("last_frame_age")
        if isinstance(frame_age, int | float) and hb_age is not None:
            frame_age = float(frame_age) + hb_age  # aged to "now"
        else:
            frame_age = None

        def num(key: str) -> float | None:
            v = hb.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        def integer(key: str) -> int | None:
            v = hb.get(key)
            return int(v) if isinstance(v, int) and not isinstance(v, bool) else None

        source = hb.get("source")
        return WorkerStatus(
            camera_id=slot.camera_id,
            state=slot.state,
            pid=proc.pid if proc is not None else None,
            started_at=proc.started_at if proc is not None else None,
            uptime=now - proc.spawn_mono if proc is not None else None,
            restarts=slot.restarts,
            last_exit=slot.last_exit,
            source=source if source in ("up", "down", "opening") else None,
            fps=num("fps"),
            decoded=integer("decoded") or 0,
            dropped=integer("dropped") or 0,
            motion=num("motion"),
            motion_active=bool(hb.get("motion_active", False)),
            last_frame_age=frame_age,
            width=integer("width"),
            height=integer("height"),
            codec=hb.get("codec") if isinstance(hb.get("codec"), str) else None,
            last_heartbeat_age=hb_age,
            preview_path=str(proc.preview) if proc is not None and proc.preview else None,
            next_retry_in=max(0.0, slot.next_start - now) if slot.next_start is not None else None,
            error=slot.error,
        )

    def _set_state(self, slot: _Slot, new: WorkerState, reason: str, **extra: Any) -> None:
        old = slot.state
        slot.state = new
        if old != new:
            self._emit(slot, "state", {"from": old.value, "to": new.value, "reason": reason, **extra})

    def _slog(self, slot: _Slot, level: str, text: str) -> None:
        line = slot.log.add("supervisor", level, text)
        if line is not None:
            self._emit_log(slot, line)

    def _emit_log(self, slot: _Slot, line: LogLine) -> None:
        self._emit(slot, "log", {"source": line.source, "level": line.level, "text": line.text})

    def _emit(self, slot: _Slot, kind: str, detail: dict[str, Any]) -> None:
        self._pending_events.append(
            SupervisorEvent(kind=kind, camera_id=slot.camera_id, state=slot.state,
                            detail=detail, ts=time.time())
        )

    def _flush_events(self) -> None:
        """Deliver queued events outside the lock (callbacks may read status)."""
        with self._lock:
            events, self._pending_events = self._pending_events, []
            subscribers = self._subscribers
        for ev in events:
            for cb in subscribers:
                try:
                    cb(ev)
                except Exception:
                    log.exception("supervisor subscriber %r failed on a %s event", cb, ev.kind)
