"""The per-camera table the supervisor thread works on: spawning, exits, heartbeats, events.

Every method runs on the supervisor thread (with ``lock`` held), except the reads
(``snapshot`` under the lock, ``flush_events`` outside it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.domain.emitter import Emitter
from app.supervisor.launcher import ForkedWorker, LauncherClient
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
    ExitInfo,
    RestartPolicy,
    SpawnError,
    SupervisorError,
    SupervisorEvent,
    WorkerSpec,
    WorkerStatus,
)
from app.supervisor.pidfiles import PidRecord, remove_pidfile, write_pidfile
from app.supervisor.pipes import PipeReader
from app.supervisor.process import Slot, WorkerProcess
from app.supervisor.proctree import (
    INSTANCE_ENV,
    MARKER_ENV,
    OWNER_ENV,
    PARENT_ENV,
    find_by_env_values,
    ref_of,
    signal_group,
    signal_name,
    signal_refs,
)
from app.supervisor.spawner import HAS_PIDFD, Spawner, begin_stop, kill_tree
from app.supervisor.status import exit_reason
from app.supervisor.status import snapshot as status_snapshot
from app.workerlink.protocol import clean_heartbeat

__all__ = ["Workers"]

log = logging.getLogger("app.supervisor.core")


class Workers:
    """Slots by camera id, and what happens to them."""

    def __init__(self, run_dir: Path, log_dir: Path, policy: RestartPolicy, owner: str, preview_dir: Path,
                 clock: Callable[[], float], log_options: dict[str, Any], launcher: bool = True) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.policy = policy
        self.owner = owner
        self.clock = clock
        self._log_options = log_options
        self.lock = threading.RLock()
        self.slots: dict[int, Slot] = {}
        self.events: Emitter[SupervisorEvent] = Emitter("supervisor")
        self._pending: list[SupervisorEvent] = []
        self.changes = 0  # moves with every event queued (under the lock): the status memo's key
        self.selector: selectors.BaseSelector | None = None
        self.spawner = Spawner(run_dir, preview_dir, owner, policy.heartbeat_interval, clock,
                               lambda text: log.warning("%s", text))
        self.pipes = PipeReader(lambda: self.selector, self.on_heartbeat, self.on_evidence)
        self.launcher: LauncherClient | None = None
        if launcher and HAS_PIDFD:
            self.launcher = LauncherClient(run_dir, log_dir / "worker-launcher.log", self._launcher_env, clock,
                                           self._launcher_started, self._launcher_lost)
            self.spawner.launcher = self.launcher
        self.closing = False
        self.sweeps: list[tuple[Slot, WorkerProcess]] = []
        self.pmap: dict[int, list[int]] | None = None  # one process-table scan for a shutdown of many
        # Monotonic time the loop last resumed from a stall of its own.
        self.resumed_at = float("-inf")

    # ------------------------------------------------------------------ the worker launcher

    def _launcher_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({MARKER_ENV: "1", OWNER_ENV: self.owner, INSTANCE_ENV: secrets.token_hex(8),
                    PARENT_ENV: str(os.getpid())})
        return env

    def _launcher_started(self, sock: socket.socket) -> None:
        assert self.selector is not None
        self.selector.register(sock, selectors.EVENT_READ, ("launcher", None, None))

    def on_launcher_readable(self) -> None:
        if self.launcher is not None:
            self.launcher.drain()  # exit reports; end of file calls _launcher_lost

    def _launcher_lost(self, sock: socket.socket, pid: int | None, why: str | None) -> None:
        """The launcher is going: unwatch its socket; if it failed, its workers go with it
        (their parent-death signal) and every camera they ran is started again at once."""
        if self.selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        if why is None:
            return
        for slot in self.slots.values():
            proc = slot.proc
            if proc is None or proc.exited or not proc.forked:
                continue
            run = slot.lc.run
            if run is not None and run.stop_reason in (None, "hung", "stalled") and not self.closing:
                run.stop_reason = "restart"
                slot.pending_spec = slot.spec
                proc.stop_note = f"ended with its worker launcher (pid {pid}), started again at once"
            self.slog(slot, "WARNING", f"{why}: worker pid {proc.pid} ends with it")
            kill_tree(proc)

    def warm_up_launcher(self) -> None:
        if self.launcher is not None and not self.closing:
            self.launcher.begin()

    def launcher_pid(self) -> int | None:
        return self.launcher.pid if self.launcher is not None else None

    def close_launcher(self) -> None:
        if self.launcher is not None:
            self.launcher.close()

    def log_path(self, camera_id: int) -> Path:
        return self.log_dir / f"camera-{camera_id}.log"

    def live_procs(self) -> list[WorkerProcess]:
        return [s.proc for s in self.slots.values() if s.proc is not None and not s.proc.exited]

    def apply(self, slot: Slot, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SetState):
                self._state_event(slot, action)
            elif isinstance(action, Log):
                self.slog(slot, action.level, action.text)
            elif isinstance(action, Failed):
                self.emit(slot, "failed", {"reason": action.reason, "retry": action.retry,
                                            "next_retry_in": action.next_retry_in})
            elif isinstance(action, Spawn):
                self.spawn_or_fail(slot, automatic=action.automatic)
            elif isinstance(action, Terminate):
                assert slot.proc is not None
                begin_stop(slot.proc, self.clock() + action.timeout, self.pmap)
            elif isinstance(action, Kill):
                assert slot.proc is not None
                slot.proc.stop_note = action.note
                if action.reason == "hung":  # it does not answer: TERM would be wasted time
                    begin_stop(slot.proc, None)
                else:
                    begin_stop(slot.proc, self.clock() + self.policy.stop_timeout)

    def slot_for(self, spec: WorkerSpec) -> Slot:
        slot = self.slots.get(spec.camera_id)
        if slot is None:
            sink = LogSink(self.log_path(spec.camera_id), **self._log_options)
            slot = Slot(spec=spec, log=sink, lc=Lifecycle(self.policy))
            slot.lc.resumed_at = self.resumed_at
            self.slots[spec.camera_id] = slot
        return slot

    def spawn_or_fail(self, slot: Slot, automatic: bool) -> None:
        """Spawn now; a spawn error backs off (transient) or makes the slot FAILED (and is
        raised for operator starts)."""
        try:
            self._spawn(slot, automatic)
        except SpawnError as exc:
            slot.last_exit = ExitInfo(None, None, str(exc), time.time())
            self.apply(slot, slot.lc.spawn_failed(self.clock(), str(exc), exc.transient, automatic,
                                                   closing=self.closing))
            if not automatic and not (exc.transient and not self.closing):
                raise

    def _spawn(self, slot: Slot, automatic: bool) -> None:
        assert self.selector is not None
        initiated_at = time.time()
        spec = slot.spec
        proc = self.spawner.spawn(spec)
        for fd, kind in ((proc.out_fd, "out"), (proc.err_fd, "err")):
            assert fd is not None
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, (kind, slot, proc))
        if proc.pidfd is not None:
            self.selector.register(proc.pidfd, selectors.EVENT_READ, ("exit", slot, proc))
        slot.proc = proc
        try:
            write_pidfile(self.run_dir, PidRecord(
                camera_id=spec.camera_id, pid=proc.pid, create_time=proc.ref.create_time,
                instance=proc.instance, owner=self.owner, started_at=proc.started_at, preview=str(proc.preview),
            ))
        except OSError as exc:  # a safety net for crashes; the worker itself is fine
            self.slog(slot, "WARNING", f"cannot write the pid file in {self.run_dir}: {exc}")
        self.slog(slot, "INFO", f"worker started: pid {proc.pid}")
        self.apply(slot, slot.lc.spawned(proc.spawn_mono, proc.pid, automatic, initiated_at=initiated_at,
                                          spawn_ms=round((time.time() - initiated_at) * 1000, 3)))

    def on_exit(self, slot: Slot, proc: WorkerProcess) -> None:
        if proc.exited:
            return
        # The leader is a zombie until we reap it (a forked one: until its launcher does, when
        # we release it), so its pgid cannot have been reused: clear what is left of the group first.
        forked = proc.popen if isinstance(proc.popen, ForkedWorker) else None
        if forked is None or forked.unreaped:
            signal_group(proc.pid, signal.SIGKILL)
        try:
            rc = proc.popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pidfd said it exited; should not happen
            log.error("camera %s: pid %s signalled exit but could not be reaped", slot.camera_id, proc.pid)
            kill_tree(proc)
            if forked is not None and self.launcher is not None:  # a hung launcher: its status never comes
                self.launcher.lost(f"the worker launcher did not report the exit of pid {proc.pid}")
            rc = proc.popen.wait()
        if forked is not None:
            forked.release()
        proc.exited = True
        now_mono = self.clock()
        uptime = now_mono - proc.spawn_mono
        # Last words: drain what the worker wrote before it died, then drop the pipes
        # (a runaway grandchild may still hold them open).
        self.pipes.read(slot, proc, stdout=True, drain=True)
        self.pipes.read(slot, proc, stdout=False, drain=True)
        self._close_proc_fds(proc)
        # Descendants that outlived it: the tracked ones now; anything else carrying its
        # spawn token in a sweep right after this wake-up (a /proc scan of a few ms that
        # need not delay the restart).
        proc.strays_killed = signal_refs(proc.descendants, signal.SIGKILL)
        self.sweeps.append((slot, proc))
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
        reason = exit_reason(proc, stop_reason, code, how)
        info = ExitInfo(code=code, signal=sig, reason=reason, at=time.time())
        slot.last_exit = info
        self.slog(slot, "INFO" if stop_reason in ("stop", "shutdown", "restart") or code == 0 else "WARNING",
                   f"worker pid {proc.pid} ended after {uptime:.1f} s: {reason}")
        self.emit(slot, "exit", {"pid": proc.pid, "code": code, "signal": sig, "reason": reason,
                                  "uptime": uptime})
        if run is None:
            return
        restart = stop_reason == "restart" and slot.pending_spec is not None
        _outcome, actions = slot.lc.exited(now_mono, code, reason, uptime, restart_pending=restart,
                                          closing=self.closing)
        if not restart:
            self.apply(slot, actions)
            if stop_reason in ("stop", "shutdown") or self.closing:
                self.resolve_stop_waiters(slot)
            return
        assert slot.pending_spec is not None
        slot.spec = slot.pending_spec
        slot.pending_spec = None
        waiters, slot.restart_waiters = slot.restart_waiters, []
        try:
            self.apply(slot, actions)
        except SupervisorError as exc:
            for w in waiters:
                w.set_exception(exc)
            waiters = []
        snap = self.snapshot(slot, self.clock())
        for w in waiters:
            w.set_result(snap)
        self.resolve_stop_waiters(slot)

    def sweep(self) -> None:
        """Kill what ended workers left behind that the periodic tracking had not seen."""
        sweeps, self.sweeps = self.sweeps, []
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
                self.slog(slot, "WARNING", f"killed {n} leftover descendant process(es) of pid {proc.pid}")

    def resolve_stop_waiters(self, slot: Slot) -> None:
        snap = self.snapshot(slot, self.clock())
        waiters, slot.stop_waiters = slot.stop_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(snap)

    def _close_proc_fds(self, proc: WorkerProcess) -> None:
        assert self.selector is not None
        for attr in ("out_fd", "err_fd", "pidfd"):
            fd = getattr(proc, attr)
            if fd is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
            setattr(proc, attr, None)
            if attr == "pidfd":
                with contextlib.suppress(OSError):
                    os.close(fd)
        for stream in (proc.popen.stdout, proc.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def on_heartbeat(self, slot: Slot, proc: WorkerProcess, raw: dict[str, Any]) -> None:
        if slot.proc is not proc or proc.exited:
            return  # last words of a process that has already ended
        prev_source = proc.hb.get("source")
        hb = clean_heartbeat(raw, prev_source)
        proc.hb = hb
        source = hb.get("source")
        self.apply(slot, slot.lc.heartbeat(self.clock(), source, hb.get("error")))
        if source != prev_source:
            self.emit(slot, "source", {"from": prev_source, "to": source, "error": hb.get("error")})
            if source == "down":
                self.slog(slot, "WARNING", f"source down: {hb.get('error') or 'no detail'}")
            elif source == "up" and prev_source == "down":
                self.slog(slot, "INFO", "source back up")
        self.emit(slot, "heartbeat", hb)
        age = hb.get("last_frame_age")
        if source == "up" and isinstance(age, int | float):
            self.apply(slot, slot.lc.stalled(float(age), slot.spec.stall_timeout))

    def on_evidence(self, slot: Slot, proc: WorkerProcess, answer: dict[str, Any]) -> None:
        self.emit(slot, "evidence", answer)

    def snapshot(self, slot: Slot, now: float) -> WorkerStatus:
        return status_snapshot(slot, now)

    def _state_event(self, slot: Slot, change: SetState) -> None:
        """The lifecycle entered ``change.state``: tell the subscribers (if it is a change)."""
        old = slot.announced
        slot.announced = change.state
        if old != change.state:
            self.emit(slot, "state", {"from": old.value, "to": change.state.value, "reason": change.reason,
                                       **change.extra})

    def slog(self, slot: Slot, level: str, text: str) -> None:
        slot.log.add("supervisor", level, text)

    def emit(self, slot: Slot, kind: str, detail: dict[str, Any]) -> None:
        self.changes += 1
        self._pending.append(
            SupervisorEvent(kind=kind, camera_id=slot.camera_id, state=slot.state,
                            detail=detail, ts=time.time())
        )

    def flush_events(self) -> None:
        """Deliver queued events outside the lock (callbacks may read status)."""
        with self.lock:
            events, self._pending = self._pending, []
        for ev in events:
            self.events.emit(ev)
