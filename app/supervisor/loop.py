"""The supervisor thread's loop: wait on pipes, pidfds and the wake-up pipe, then timers.

One ``selectors`` loop waits on: the wake pipe, every worker's pidfd (Linux; exits
are seen within a millisecond; elsewhere exits are polled), and every worker's
stdout/stderr pipe. Timers (restarts, stop deadlines, heartbeat timeouts) are
plain deadlines checked after each wake-up. Resource figures are sampled on a thread of
their own (``app.supervisor.stats``), so no pass here waits for a /proc scan.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
from collections.abc import Callable
from typing import Any

from app.supervisor.commands import CommandQueue
from app.supervisor.spawner import has_exited, kill_tree
from app.supervisor.workers import Workers

__all__ = ["LOOP_STALL_SLACK", "POLL_INTERVAL", "SupervisorLoop"]

log = logging.getLogger("app.supervisor.core")

POLL_INTERVAL = 0.1  # exit polling where there is no pidfd
# The loop wakes at least once a second; a wake-up this much later than planned (or a
# pass over the loop this long) means the station itself was stopped (SIGSTOP, a
# suspended machine, a long pause): heartbeat ages then count from the resume.
LOOP_STALL_SLACK = 1.0


class SupervisorLoop:
    """The body of the supervisor thread (``run``); ``finished`` is called as it ends."""

    def __init__(self, workers: Workers, commands: CommandQueue, finished: Callable[[], None]) -> None:
        self.workers = workers
        self.commands = commands
        self.finished = finished
        self.loop_stalls = 0
        #: passes of the loop so far (each wake-up: I/O, commands, timers)
        self.loop_passes = 0

    def run(self) -> None:
        assert self.workers.selector is not None
        try:
            while not (self.workers.closing and not self.workers.live_procs()):
                timeout = self._next_timeout()
                asleep = self.workers.clock()
                ready = self.workers.selector.select(timeout)
                awake = self.workers.clock()
                self._note_stall(awake - asleep - timeout, "paused")
                with self.workers.lock:
                    for key, _mask in ready:
                        self._guard(self._dispatch, key)
                    self._guard(self.commands.drain)
                self.workers.flush_events()
                with self.workers.lock:
                    self._guard(self._tick)
                    if not self.workers.closing:  # at shutdown: one sweep once every worker is gone
                        self._guard(self.workers.sweep)
                    self.loop_passes += 1
                self.workers.flush_events()
                self._note_stall(self.workers.clock() - awake, "busy")
        finally:
            self._cleanup()

    def _note_stall(self, late: float, how: str) -> None:
        """The loop itself stalled: do not blame the workers for the heartbeats it missed."""
        if late <= LOOP_STALL_SLACK:
            return
        self.workers.resumed_at = self.workers.clock()
        with self.workers.lock:
            for slot in self.workers.slots.values():
                slot.lc.resumed_at = self.workers.resumed_at
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
            self.commands.clear_wakeups()
        elif kind == "exit":
            self.workers.on_exit(slot, proc)
        elif kind == "out":
            self.workers.pipes.read(slot, proc, stdout=True)
        elif kind == "err":
            self.workers.pipes.read(slot, proc, stdout=False)
        elif kind == "launcher":
            self.workers.on_launcher_readable()

    def _next_timeout(self) -> float:
        now = self.workers.clock()
        deadlines = [now + 1.0]
        with self.workers.lock:
            for slot in self.workers.slots.values():
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
        now = self.workers.clock()
        for slot in list(self.workers.slots.values()):
            proc = slot.proc
            if proc is not None and not proc.exited:
                if proc.pidfd is None and proc.popen.poll() is not None:
                    self.workers.on_exit(slot, proc)
                    continue
                if proc.stop_deadline is not None and not proc.killed and now >= proc.stop_deadline:
                    gone = proc.popen.poll() is not None if proc.forked else has_exited(proc.pid)
                    if gone:  # it has exited; its pidfd is not read yet
                        self.workers.on_exit(slot, proc)
                        continue
                    self.workers.slog(slot, "WARNING",
                                      f"worker pid {proc.pid} did not stop within the timeout: killing it")
                    kill_tree(proc)
                if slot.lc.overdue(now) is not None:
                    # Before judging: read what already waits in its pipe.
                    self.workers.pipes.read(slot, proc, stdout=True, drain=True)
                    if slot.proc is not proc or proc.exited:
                        continue
                    note = slot.lc.overdue(now)
                    if note is not None:
                        self.workers.apply(slot, slot.lc.kill_for("hung", note))
            self.workers.apply(slot, slot.lc.tick(now))
            if slot.log.suppressed and now - slot.last_summary >= 1.0:
                slot.last_summary = now
                slot.log.flush_summary()

    def _cleanup(self) -> None:
        with self.workers.lock:
            for slot in self.workers.slots.values():
                proc = slot.proc
                if proc is not None and not proc.exited:  # only on an internal error
                    kill_tree(proc)
                    with contextlib.suppress(Exception):
                        proc.popen.wait(2.0)
                    self.workers.on_exit(slot, proc)
                for fut in slot.stop_waiters + slot.restart_waiters:
                    if not fut.done():
                        fut.set_result(self.workers.snapshot(slot, self.workers.clock()))
                slot.stop_waiters.clear()
                slot.restart_waiters.clear()
            self.workers.sweep()
            self._guard(self.workers.close_launcher)
            for slot in self.workers.slots.values():
                slot.log.close()
        if self.workers.spawner.fd_reserve is not None:
            self.workers.spawner.fd_reserve.close()
        self.workers.flush_events()
        self.commands.refuse_pending("supervisor has shut down")
        if self.workers.selector is not None:
            self.workers.selector.close()
        self.commands.close()
        self.finished()
