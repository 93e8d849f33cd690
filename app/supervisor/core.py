"""The process supervisor: one long-lived thread that spawns and watches camera workers.

``Supervisor`` is the coordinator; its parts are the command queue
(``app.supervisor.commands``), spawning and ending processes (``app.supervisor.spawner``),
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

One ``selectors`` loop waits on: the wake pipe, every worker's pidfd (Linux; exits
are seen within a millisecond; elsewhere exits are polled), and every worker's
stdout/stderr pipe (non-blocking, bounded buffers). Timers (backoff, stop deadlines,
heartbeat timeouts, stats) are plain deadlines checked after each wake-up.

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
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: the run-dir lock is skipped
    fcntl = None  # type: ignore[assignment]

from app.domain.emitter import Emitter
from app.supervisor.commands import COMMAND_TIMEOUT, CommandQueue
from app.supervisor.evidence import request_evidence, take_snapshot
from app.supervisor.fdreserve import DEFAULT_RESERVE, FdReserve, raise_nofile_limit
from app.supervisor.lifecycle import (
    Action,
    Failed,
    Kill,
    Lifecycle,
    Log,
    SetState,
    Spawn,
    Terminate,
)
from app.supervisor.logbuf import LogSink
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
from app.supervisor.pipes import PipeReader
from app.supervisor.process import Slot, WorkerProcess
from app.supervisor.proctree import (
    INSTANCE_ENV,
    find_by_env_values,
    ppid_map,
    ref_of,
    signal_group,
    signal_name,
    signal_refs,
)
from app.supervisor.spawner import Spawner, begin_stop, has_exited, kill_tree
from app.supervisor.stats import STATS_INTERVAL, sample_stats
from app.workerlink.protocol import EXIT_CONFIG, SOURCE_STATES, clean_heartbeat

__all__ = ["CONFIG_ERROR_EXIT", "Supervisor"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CONFIG_ERROR_EXIT = EXIT_CONFIG
POLL_INTERVAL = 0.1  # exit polling where there is no pidfd
# The loop wakes at least once a second; a wake-up this much later than planned (or a
# pass over the loop this long) means the station itself was stopped (SIGSTOP, a
# suspended machine, a long pause): heartbeat ages then count from the resume.
LOOP_STALL_SLACK = 1.0


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
    ) -> None:
        self.run_dir = Path(run_dir)
        self.log_dir = Path(log_dir)
        self.policy = policy or RestartPolicy()
        digest = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        self.owner = owner or f"u{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}"
        self._log_options: dict[str, Any] = dict(ring_size=log_ring_size, max_bytes=log_max_bytes,
                                                 backups=log_backups, rate=log_rate, burst=log_burst)
        self._clock = clock
        if preview_root is None:
            shm = Path("/dev/shm")
            if shm.is_dir() and os.access(shm, os.W_OK):
                preview_root = shm / f"edge-station-{_sanitize(self.owner)}"
            else:
                preview_root = self.run_dir / "preview"
        self.preview_dir = preview_root

        self._lock = threading.RLock()
        self._slots: dict[int, Slot] = {}
        self._events: Emitter[SupervisorEvent] = Emitter("supervisor")
        self._pending_events: list[SupervisorEvent] = []
        self._commands = CommandQueue()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._spawner = Spawner(self.run_dir, self.preview_dir, self.owner, self.policy.heartbeat_interval,
                                clock, lambda text: log.warning("%s", text))
        self._pipes = PipeReader(lambda: self._selector, self._on_heartbeat, self._on_evidence)
        self._lock_fd: int | None = None
        self._closing = False
        self._closed = False
        self._next_stats = 0.0
        self._sweeps: list[tuple[Slot, WorkerProcess]] = []
        self._pmap: dict[int, list[int]] | None = None  # one process-table scan for a shutdown of many
        self.reap_report: ReapReport | None = None
        self._fd_reserve_size = fd_reserve
        self._raise_fd_limit = raise_fd_limit
        # Monotonic time the loop last resumed from a stall of its own (see LOOP_STALL_SLACK).
        self._resumed_at = float("-inf")
        self.loop_stalls = 0
        #: passes of the supervisor loop so far (each wake-up: I/O, commands, timers)
        self.loop_passes = 0

    @property
    def preroll_seconds(self) -> float:
        """Seconds of packets each worker keeps for clips (0: none); applies at the next start."""
        return self._spawner.preroll_seconds

    @preroll_seconds.setter
    def preroll_seconds(self, value: float) -> None:
        self._spawner.preroll_seconds = value

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
            self._commands.open()
            self._selector.register(self._commands.wake_r, selectors.EVENT_READ, ("wake", None, None))
            self._spawner.fd_reserve = FdReserve(self._fd_reserve_size)
        except BaseException:
            self._release_run_dir()
            raise
        self._thread = threading.Thread(target=self._run, name="edge-supervisor", daemon=True)
        self._commands.owner = self._thread
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
        return self._events.subscribe(callback)

    def preview_path(self, camera_id: int) -> Path | None:
        with self._lock:
            slot = self._slots.get(camera_id)
            if slot is None or slot.proc is None:
                return None
            return slot.proc.preview

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closing

    def request_evidence(self, camera_id: int, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Ask the camera's running worker for a snapshot or a clip (see app.supervisor.evidence)."""
        self._commands.refuse_on_owner(f"request_evidence({camera_id})")
        return request_evidence(self, camera_id, request, timeout)

    def take_snapshot(self, camera_id: int, fmt: str = "png", timeout: float = 5.0) -> tuple[dict[str, Any], bytes]:
        """The worker's latest frame at the source's resolution, as PNG or JPEG: (answer, bytes)."""
        self._commands.refuse_on_owner(f"take_snapshot({camera_id})")
        return take_snapshot(self, camera_id, fmt, timeout)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closing:
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
                    self._guard(self._commands.drain)
                self._flush_events()
                with self._lock:
                    self._guard(self._tick)
                    if not self._closing:  # at shutdown: one sweep once every worker is gone
                        self._guard(self._sweep)
                    self.loop_passes += 1
                self._flush_events()
                self._note_stall(self._clock() - awake, "busy")
        finally:
            self._cleanup_thread()

    def _note_stall(self, late: float, how: str) -> None:
        """The loop itself stalled: do not blame the workers for the heartbeats it missed."""
        if late <= LOOP_STALL_SLACK:
            return
        self._resumed_at = self._clock()
        with self._lock:
            for slot in self._slots.values():
                slot.lc.resumed_at = self._resumed_at
        self.loop_stalls += 1
        log.warning("supervisor loop was %s for %.1f s: worker heartbeat ages count from now", how, late)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one unit of loop work; a bug in it is logged, never kills the thread."""
        try:
            fn(*args)
        except Exception:
            log.exception("supervisor: unexpected error in %s", getattr(fn, "__name__", fn))

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        kind, slot, proc = key.data
        if kind == "wake":
            self._commands.clear_wakeups()
        elif kind == "exit":
            self._on_exit(slot, proc)
        elif kind == "out":
            self._pipes.read(slot, proc, stdout=True)
        elif kind == "err":
            self._pipes.read(slot, proc, stdout=False)

    def _live_procs(self) -> list[WorkerProcess]:
        return [s.proc for s in self._slots.values() if s.proc is not None and not s.proc.exited]

    def _next_timeout(self) -> float:
        now = self._clock()
        deadlines = [self._next_stats]
        with self._lock:
            for slot in self._slots.values():
                deadlines += slot.lc.deadlines()
                proc = slot.proc
                if proc is not None:
                    if proc.pidfd is None:
                        deadlines.append(now + POLL_INTERVAL)
                    if proc.stop_deadline is not None and not proc.killed:
                        deadlines.append(proc.stop_deadline)
                if slot.log.suppressed:
                    deadlines.append(slot.last_summary + 1.0)
        return min(max(0.0, min(deadlines) - now), 1.0)

    def _tick(self) -> None:
        now = self._clock()
        for slot in list(self._slots.values()):
            proc = slot.proc
            if proc is not None and not proc.exited:
                if proc.pidfd is None and proc.popen.poll() is not None:
                    self._on_exit(slot, proc)
                    continue
                if proc.stop_deadline is not None and not proc.killed and now >= proc.stop_deadline:
                    if has_exited(proc.pid):  # it has exited; its pidfd is not read yet
                        self._on_exit(slot, proc)
                        continue
                    self._slog(slot, "WARNING", f"worker pid {proc.pid} did not stop within the timeout: killing it")
                    kill_tree(proc)
                if slot.lc.overdue(now) is not None:
                    # Before judging: read what already waits in its pipe.
                    self._pipes.read(slot, proc, stdout=True, drain=True)
                    if slot.proc is not proc or proc.exited:
                        continue
                    note = slot.lc.overdue(now)
                    if note is not None:
                        self._apply(slot, slot.lc.kill_for("hung", note))
            self._apply(slot, slot.lc.tick(now))
            if slot.log.suppressed and now - slot.last_summary >= 1.0:
                slot.last_summary = now
                slot.log.flush_summary()
        if now >= self._next_stats:
            self._next_stats = now + STATS_INTERVAL
            sample_stats(self._live_procs())

    def _cleanup_thread(self) -> None:
        with self._lock:
            for slot in self._slots.values():
                proc = slot.proc
                if proc is not None and not proc.exited:  # only on an internal error
                    kill_tree(proc)
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
        if self._spawner.fd_reserve is not None:
            self._spawner.fd_reserve.close()
        self._flush_events()
        self._commands.refuse_pending("supervisor has shut down")
        if self._selector is not None:
            self._selector.close()
        self._commands.close()
        with contextlib.suppress(OSError):
            self.preview_dir.rmdir()  # only if empty
        self._release_run_dir()
        self._closed = True

    # ------------------------------------------------------------------ carrying out the lifecycle's actions

    def _apply(self, slot: Slot, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SetState):
                self._state_event(slot, action)
            elif isinstance(action, Log):
                self._slog(slot, action.level, action.text)
            elif isinstance(action, Failed):
                self._emit(slot, "failed", {"reason": action.reason, "retry": action.retry,
                                            "next_retry_in": action.next_retry_in})
            elif isinstance(action, Spawn):
                self._spawn_or_fail(slot, automatic=action.automatic)
            elif isinstance(action, Terminate):
                assert slot.proc is not None
                begin_stop(slot.proc, self._clock() + action.timeout, self._pmap)
            elif isinstance(action, Kill):
                assert slot.proc is not None
                slot.proc.stop_note = action.note
                if action.reason == "hung":  # it does not answer: TERM would be wasted time
                    begin_stop(slot.proc, None)
                else:
                    begin_stop(slot.proc, self._clock() + self.policy.stop_timeout)

    # ------------------------------------------------------------------ commands

    def _slot_for(self, spec: WorkerSpec) -> Slot:
        slot = self._slots.get(spec.camera_id)
        if slot is None:
            sink = LogSink(self.log_path(spec.camera_id), **self._log_options)
            slot = Slot(spec=spec, log=sink, lc=Lifecycle(self.policy))
            slot.lc.resumed_at = self._resumed_at
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
        actions = slot.lc.start_requested()
        self._slog(slot, "INFO", f"start requested ({spec.name}: {spec.source})")
        self._apply(slot, actions)
        return self._snapshot(slot, self._clock())

    def _cmd_stop(self, camera_id: int, timeout: float) -> Future[WorkerStatus]:
        slot = self._slots.get(camera_id)
        done: Future[WorkerStatus] = Future()
        if slot is None or slot.state == WorkerState.STOPPED:
            raise NotRunning(f"camera {camera_id}: worker is not running")
        slot.pending_spec = None
        waiters, slot.restart_waiters = slot.restart_waiters, []
        for w in waiters:  # a stop overrides a restart still under way
            w.set_exception(SupervisorError(f"camera {camera_id}: restart cancelled by a stop"))
        actions = slot.lc.stop_requested(timeout)
        if slot.proc is None:  # BACKOFF or FAILED: the pending retry is cancelled
            self._apply(slot, actions)
            done.set_result(self._snapshot(slot, self._clock()))
            return done
        slot.stop_waiters.append(done)
        self._apply(slot, actions)
        return done

    def _cmd_restart(self, spec: WorkerSpec) -> Future[WorkerStatus]:
        if self._closing:
            raise SupervisorError("supervisor is shutting down")
        slot = self._slot_for(spec)
        done: Future[WorkerStatus] = Future()
        self._slog(slot, "INFO", "restart requested")
        if slot.proc is None:
            slot.spec = spec
            try:
                self._apply(slot, slot.lc.restart_requested())
            except SupervisorError as exc:
                done.set_exception(exc)
                return done
            done.set_result(self._snapshot(slot, self._clock()))
            return done
        slot.pending_spec = spec
        slot.restart_waiters.append(done)
        self._apply(slot, slot.lc.restart_requested())
        return done

    def _cmd_shutdown(self, timeout: float) -> None:
        self._closing = True
        self._pmap = ppid_map()
        now = self._clock()
        try:
            for slot in self._slots.values():
                slot.pending_spec = None
                proc = slot.proc
                if proc is not None and proc.exited:
                    continue
                actions = slot.lc.shutdown_requested(timeout)
                self._apply(slot, actions)
                if proc is not None and not any(isinstance(a, Terminate) for a in actions) \
                        and proc.stop_deadline is not None:
                    proc.stop_deadline = min(proc.stop_deadline, now + timeout)
        finally:
            self._pmap = None

    # ------------------------------------------------------------------ spawning

    def _spawn_or_fail(self, slot: Slot, automatic: bool) -> None:
        """Spawn now; a spawn error backs off (transient) or makes the slot FAILED (and is
        raised for operator starts)."""
        try:
            self._spawn(slot, automatic)
        except SpawnError as exc:
            slot.last_exit = ExitInfo(None, None, str(exc), time.time())
            self._apply(slot, slot.lc.spawn_failed(self._clock(), str(exc), exc.transient, automatic,
                                                   closing=self._closing))
            if not automatic and not (exc.transient and not self._closing):
                raise

    def _spawn(self, slot: Slot, automatic: bool) -> None:
        assert self._selector is not None
        initiated_at = time.time()
        spec = slot.spec
        proc = self._spawner.spawn(spec)
        for fd, kind in ((proc.out_fd, "out"), (proc.err_fd, "err")):
            assert fd is not None
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, (kind, slot, proc))
        if proc.pidfd is not None:
            self._selector.register(proc.pidfd, selectors.EVENT_READ, ("exit", slot, proc))
        slot.proc = proc
        try:
            write_pidfile(self.run_dir, PidRecord(
                camera_id=spec.camera_id, pid=proc.pid, create_time=proc.ref.create_time,
                instance=proc.instance, owner=self.owner, started_at=proc.started_at, preview=str(proc.preview),
            ))
        except OSError as exc:  # a safety net for crashes; the worker itself is fine
            self._slog(slot, "WARNING", f"cannot write the pid file in {self.run_dir}: {exc}")
        self._slog(slot, "INFO", f"worker started: pid {proc.pid}")
        self._apply(slot, slot.lc.spawned(proc.spawn_mono, proc.pid, automatic, initiated_at=initiated_at,
                                          spawn_ms=round((time.time() - initiated_at) * 1000, 3)))

    # ------------------------------------------------------------------ exits

    def _on_exit(self, slot: Slot, proc: WorkerProcess) -> None:
        if proc.exited:
            return
        # The leader is a zombie until we reap it, so its pgid cannot have been reused:
        # clear what is left of the group first.
        signal_group(proc.pid, signal.SIGKILL)
        try:
            rc = proc.popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pidfd said it exited; should not happen
            log.error("camera %s: pid %s signalled exit but could not be reaped", slot.camera_id, proc.pid)
            kill_tree(proc)
            rc = proc.popen.wait()
        proc.exited = True
        now_mono = self._clock()
        uptime = now_mono - proc.spawn_mono
        # Last words: drain what the worker wrote before it died, then drop the pipes
        # (a runaway grandchild may still hold them open).
        self._pipes.read(slot, proc, stdout=True, drain=True)
        self._pipes.read(slot, proc, stdout=False, drain=True)
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
        run = slot.lc.run
        stop_reason = run.stop_reason if run is not None else None
        reason = self._exit_reason(proc, stop_reason, code, how)
        info = ExitInfo(code=code, signal=sig, reason=reason, at=time.time())
        slot.last_exit = info
        self._slog(slot, "INFO" if stop_reason in ("stop", "shutdown", "restart") or code == 0 else "WARNING",
                   f"worker pid {proc.pid} ended after {uptime:.1f} s: {reason}")
        self._emit(slot, "exit", {"pid": proc.pid, "code": code, "signal": sig, "reason": reason,
                                  "uptime": uptime})
        if run is None:
            return
        restart = stop_reason == "restart" and slot.pending_spec is not None
        _outcome, actions = slot.lc.exited(now_mono, code, reason, uptime, restart_pending=restart,
                                          closing=self._closing)
        if not restart:
            self._apply(slot, actions)
            if stop_reason in ("stop", "shutdown") or self._closing:
                self._resolve_stop_waiters(slot)
            return
        assert slot.pending_spec is not None
        slot.spec = slot.pending_spec
        slot.pending_spec = None
        waiters, slot.restart_waiters = slot.restart_waiters, []
        try:
            self._apply(slot, actions)
        except SupervisorError as exc:
            for w in waiters:
                w.set_exception(exc)
            waiters = []
        snap = self._snapshot(slot, self._clock())
        for w in waiters:
            w.set_result(snap)
        self._resolve_stop_waiters(slot)

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

    @staticmethod
    def _exit_reason(proc: WorkerProcess, stop_reason: str | None, code: int | None, how: str) -> str:
        r = stop_reason
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

    def _resolve_stop_waiters(self, slot: Slot) -> None:
        snap = self._snapshot(slot, self._clock())
        waiters, slot.stop_waiters = slot.stop_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(snap)

    def _close_proc_fds(self, proc: WorkerProcess) -> None:
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

    # ------------------------------------------------------------------ worker output

    def _on_heartbeat(self, slot: Slot, proc: WorkerProcess, raw: dict[str, Any]) -> None:
        if slot.proc is not proc or proc.exited:
            return  # last words of a process that has already ended
        prev_source = proc.hb.get("source")
        hb = clean_heartbeat(raw, prev_source)
        proc.hb = hb
        source = hb.get("source")
        self._apply(slot, slot.lc.heartbeat(self._clock(), source, hb.get("error")))
        if source != prev_source:
            self._emit(slot, "source", {"from": prev_source, "to": source, "error": hb.get("error")})
            if source == "down":
                self._slog(slot, "WARNING", f"source down: {hb.get('error') or 'no detail'}")
            elif source == "up" and prev_source == "down":
                self._slog(slot, "INFO", "source back up")
        self._emit(slot, "heartbeat", hb)
        age = hb.get("last_frame_age")
        if source == "up" and isinstance(age, int | float):
            self._apply(slot, slot.lc.stalled(float(age), slot.spec.stall_timeout))

    def _on_evidence(self, slot: Slot, proc: WorkerProcess, answer: dict[str, Any]) -> None:
        self._emit(slot, "evidence", answer)

    # ------------------------------------------------------------------ status & events

    def _snapshot(self, slot: Slot, now: float) -> WorkerStatus:
        proc = slot.proc
        lc = slot.lc
        hb = proc.hb if proc is not None else {}
        last_hb = lc.run.last_heartbeat if lc.run is not None else None
        hb_age = now - last_hb if proc is not None and last_hb is not None else None
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
        codec = hb.get("codec")
        return WorkerStatus(
            camera_id=slot.camera_id,
            state=slot.state,
            pid=proc.pid if proc is not None else None,
            started_at=proc.started_at if proc is not None else None,
            uptime=now - proc.spawn_mono if proc is not None else None,
            restarts=lc.restarts,
            last_exit=slot.last_exit,
            source=source if source in SOURCE_STATES else None,
            fps=num("fps"),
            decoded=integer("decoded") or 0,
            dropped=integer("dropped") or 0,
            motion=num("motion"),
            motion_active=bool(hb.get("motion_active", False)),
            last_frame_age=frame_age,
            width=integer("width"),
            height=integer("height"),
            codec=codec if isinstance(codec, str) else None,
            last_heartbeat_age=hb_age,
            preview_path=str(proc.preview) if proc is not None and proc.preview else None,
            next_retry_in=max(0.0, lc.next_start - now) if lc.next_start is not None else None,
            error=lc.error,
        )

    def _state_event(self, slot: Slot, change: SetState) -> None:
        """The lifecycle entered ``change.state``: tell the subscribers (if it is a change)."""
        old = slot.announced
        slot.announced = change.state
        if old != change.state:
            self._emit(slot, "state", {"from": old.value, "to": change.state.value, "reason": change.reason,
                                       **change.extra})

    def _slog(self, slot: Slot, level: str, text: str) -> None:
        slot.log.add("supervisor", level, text)

    def _emit(self, slot: Slot, kind: str, detail: dict[str, Any]) -> None:
        self._pending_events.append(
            SupervisorEvent(kind=kind, camera_id=slot.camera_id, state=slot.state,
                            detail=detail, ts=time.time())
        )

    def _flush_events(self) -> None:
        """Deliver queued events outside the lock (callbacks may read status)."""
        with self._lock:
            events, self._pending_events = self._pending_events, []
        for ev in events:
            self._events.emit(ev)
