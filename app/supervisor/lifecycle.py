"""The restart state machine of one camera's worker, as a pure object.

No threads, no processes, no sleeping: a :class:`Lifecycle` is told what happened
(a spawn, a spawn failure, a heartbeat, an exit, a stop, the time now) and answers
with the actions the supervisor must carry out, in order:

- :class:`SetState` -- enter a state (the supervisor emits the ``state`` event),
- :class:`Log` -- a supervisor line in the camera's log,
- :class:`Failed` -- the alert-worthy ``failed`` event,
- :class:`Spawn` -- start a worker process now (then report :meth:`Lifecycle.spawned`
  or :meth:`Lifecycle.spawn_failed`),
- :class:`Terminate` -- end the process gracefully (TERM, KILL at the deadline),
- :class:`Kill` -- the worker is hung or stalled: end it (the exit restarts it).

Every time is a value on the caller's monotonic clock; the jitter of the backoff
comes from an injectable ``random.Random``. The transitions::

    STOPPED --start--> STARTING --first heartbeat--> RUNNING
    RUNNING --no heartbeat / stalled source--> STALLED --(killed)--> restart
    RUNNING|STARTING --exit 0--> STOPPED          (clean exit: not restarted)
    RUNNING|STARTING --exit 78--> FAILED          (configuration error: never retried)
    RUNNING|STARTING --crash--> STARTING          (ran >= stable_after: at once)
                            --> BACKOFF --delay--> STARTING   (fast failure)
    a transient spawn error (EMFILE, EAGAIN, ENOMEM...) --> BACKOFF
    any start over the rate limit --> FAILED (+ "failed" event, slow retry probe)
    FAILED --retry interval--> STARTING (probe; a fast failure returns to FAILED)
    * --stop--> STOPPING --exit--> STOPPED
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.supervisor.model import RestartPolicy, WorkerState
from app.supervisor.policy import StartRateLimiter, backoff_delay
from app.workerlink.protocol import EXIT_CONFIG

__all__ = [
    "Action",
    "ExitOutcome",
    "Failed",
    "Kill",
    "Lifecycle",
    "Log",
    "Run",
    "SetState",
    "Spawn",
    "StopReason",
    "Terminate",
]

#: Why the supervisor is ending the current run (None: it is not).
StopReason = Literal["stop", "shutdown", "restart", "hung", "stalled"]
#: What an exit led to: the supervisor settles its waiters by it.
ExitOutcome = Literal["respawn", "stopped", "failed", "restarting", "backoff"]

_OPERATOR_STOPS: tuple[StopReason, ...] = ("stop", "shutdown")


@dataclass(frozen=True)
class SetState:
    state: WorkerState
    reason: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    level: str
    text: str


@dataclass(frozen=True)
class Failed:
    reason: str
    retry: bool
    next_retry_in: float | None


@dataclass(frozen=True)
class Spawn:
    automatic: bool  # a restart by the supervisor (counted), not an operator's start


@dataclass(frozen=True)
class Terminate:
    timeout: float  # TERM now, KILL after this many seconds


@dataclass(frozen=True)
class Kill:
    reason: Literal["hung", "stalled"]
    note: str


Action = SetState | Log | Failed | Spawn | Terminate | Kill


@dataclass
class Run:
    """The timing of the current worker process (a new one for every spawn)."""

    pid: int
    spawned_at: float
    last_heartbeat: float | None = None
    stable: bool = False
    stop_reason: StopReason | None = None


class Lifecycle:
    """State, restart counters and timers of one camera's worker."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng
        self.state = WorkerState.STOPPED
        self.limiter = StartRateLimiter(policy.rate_limit_starts, policy.rate_limit_window)
        self.restarts = 0
        self.fail_streak = 0
        self.next_start: float | None = None  # when the next automatic start is due
        self.probing = False  # the current run is a FAILED-state retry probe
        self.error: str | None = None
        self.run: Run | None = None
        # Where heartbeat ages count from after the supervisor itself stalled.
        self.resumed_at = float("-inf")

    # ------------------------------------------------------------ reading

    def heartbeat_since(self) -> float | None:
        """Where the heartbeat age counts from (None: no heartbeat yet)."""
        run = self.run
        if run is None or run.last_heartbeat is None:
            return None
        return max(run.last_heartbeat, self.resumed_at)

    def deadlines(self) -> list[float]:
        """The times at which :meth:`tick` may have something to do."""
        out = [] if self.next_start is None else [self.next_start]
        run = self.run
        if run is not None and run.stop_reason is None:
            since = self.heartbeat_since()
            if since is None:
                out.append(max(run.spawned_at, self.resumed_at) + self.policy.start_timeout)
            else:
                out.append(since + self.policy.heartbeat_timeout)
            if not run.stable:
                out.append(run.spawned_at + self.policy.stable_after)
        return out

    def overdue(self, now: float) -> str | None:
        """Why the running worker counts as hung at ``now`` (None: it does not)."""
        run = self.run
        if run is None or run.stop_reason is not None:
            return None
        pol = self.policy
        since = self.heartbeat_since()
        if since is None:
            if now - max(run.spawned_at, self.resumed_at) >= pol.start_timeout:
                return f"hung: no heartbeat within {pol.start_timeout:g} s of start"
            return None
        if now - since >= pol.heartbeat_timeout:
            return f"hung: no heartbeat for {now - since:.1f} s"
        return None

    # ------------------------------------------------------------ operator commands

    def start_requested(self) -> list[Action]:
        """An operator's start from STOPPED or FAILED: counters reset, spawn now."""
        self.restarts = 0
        self._reset_retry()
        return [Spawn(automatic=False)]

    def restart_requested(self) -> list[Action]:
        """An operator's restart. Without a process: spawn now. With one: end it; the exit
        (outcome ``respawn``) starts the new run."""
        run = self.run
        if run is None:
            self._reset_retry()
            return [Spawn(automatic=False)]
        if run.stop_reason in ("stop", "shutdown", None):  # turn a running stop into a restart
            run.stop_reason = "restart"
            return [self._to(WorkerState.STOPPING, "restart requested"), Terminate(self.policy.stop_timeout)]
        run.stop_reason = "restart"  # already being killed for hung/stalled: respawn after the exit
        return []

    def stop_requested(self, timeout: float) -> list[Action]:
        """An operator's stop. Without a process (BACKOFF, FAILED) the retry is cancelled."""
        run = self.run
        if run is None:
            prior = self.state
            self.next_start = None
            self.probing = False
            return [Log("INFO", f"stop requested while {prior.value}: retry cancelled"),
                    self._to(WorkerState.STOPPED, "stopped by request")]
        if run.stop_reason in _OPERATOR_STOPS:
            return []  # a stop is already under way; the same exit ends it
        run.stop_reason = "stop"
        return [Log("INFO", f"stop requested (pid {run.pid}, timeout {timeout:g} s)"),
                self._to(WorkerState.STOPPING, "stop requested"), Terminate(timeout)]

    def shutdown_requested(self, timeout: float) -> list[Action]:
        """The station is closing: no more starts; a run not being stopped yet is ended."""
        self.next_start = None
        run = self.run
        if run is None:
            if self.state != WorkerState.STOPPED:
                return [self._to(WorkerState.STOPPED, "station shutting down")]
            return []
        if run.stop_reason is None or run.stop_reason in ("restart", "stalled"):
            run.stop_reason = "shutdown"
            return [self._to(WorkerState.STOPPING, "station shutting down"), Terminate(timeout)]
        if run.stop_reason == "stop":
            run.stop_reason = "shutdown"
        return []

    # ------------------------------------------------------------ what the process did

    def spawned(self, now: float, pid: int, automatic: bool, **extra: Any) -> list[Action]:
        """The process ``pid`` runs: STARTING (``extra`` goes into the state event)."""
        self.run = Run(pid=pid, spawned_at=now)
        self.next_start = None
        actions: list[Action] = [self._to(WorkerState.STARTING, f"spawned pid {pid}", pid=pid, **extra)]
        self.limiter.record(now)
        if automatic:
            self.restarts += 1
        return actions

    def spawn_failed(self, now: float, message: str, transient: bool, automatic: bool,
                     closing: bool = False) -> list[Action]:
        """The process could not be started. Resource exhaustion (``transient``: too many
        open files, no memory, process limit) backs off and retries (the rate limit still
        applies); anything else is FAILED (retried slowly only for automatic starts)."""
        if transient and not closing:
            self.error = message
            self.fail_streak += 1
            delay = backoff_delay(self.policy, self.fail_streak, self.rng)
            self.next_start = now + delay
            return [Log("WARNING", f"{message}: retrying in {delay:.2f} s"),
                    self._to(WorkerState.BACKOFF, f"restart in {delay:.2f} s", delay=delay)]
        return self._fail(now, message, retry=automatic)

    def heartbeat(self, now: float, source: object = None, error: object = None) -> list[Action]:
        """A heartbeat of the current run (``source``/``error``: its source state and error)."""
        run = self.run
        if run is None:
            return []
        run.last_heartbeat = now
        out: list[Action] = []
        if run.stop_reason is None and self.state == WorkerState.STARTING:
            out.append(self._to(WorkerState.RUNNING, "first heartbeat"))
        if self.state == WorkerState.RUNNING and run.stop_reason is None:
            self.error = str(error) if source != "up" and error is not None else None
        return out

    def stalled(self, frame_age: float, stall_timeout: float) -> list[Action]:
        """A heartbeat said the source is up and its last frame is ``frame_age`` s old."""
        if self.run is None or self.run.stop_reason is not None or frame_age <= stall_timeout:
            return []
        return self.kill_for("stalled", f"stalled: source up but last frame {frame_age:.1f} s old "
                                        f"(stall timeout {stall_timeout:g} s)")

    def kill_for(self, reason: Literal["hung", "stalled"], note: str) -> list[Action]:
        """Hung (no heartbeat) or stalled (old last frame): end the run; its exit restarts it."""
        run = self.run
        if run is None or run.stop_reason is not None:
            return []
        run.stop_reason = reason
        self.error = note
        return [Log("WARNING", f"{note}: restarting the worker (pid {run.pid})"),
                self._to(WorkerState.STALLED, note), Kill(reason, note)]

    def tick(self, now: float) -> list[Action]:
        """Time has passed: a run that became stable, or a due (re)start."""
        out: list[Action] = []
        run = self.run
        if (run is not None and not run.stable and run.stop_reason is None
                and run.last_heartbeat is not None and now - run.spawned_at >= self.policy.stable_after):
            run.stable = True
            self.fail_streak = 0
            if self.probing:
                self.probing = False
                self.limiter.reset()
                out.append(Log("INFO", "worker recovered: running stably again"))
        if self.next_start is not None and now >= self.next_start and run is None:
            self.next_start = None
            if self.state == WorkerState.FAILED:
                self.probing = True
                out.append(Log("INFO", "retrying the failed worker (slow probe)"))
            out += self._automatic_start(now)
        return out

    def exited(self, now: float, code: int | None, reason: str, uptime: float, *,
               restart_pending: bool, closing: bool) -> tuple[ExitOutcome, list[Action]]:
        """The run ended (``code`` None: killed by a signal; ``reason``: the exit's text)."""
        run = self.run
        if run is None:
            raise RuntimeError("exited() without a run")
        self.run = None
        r = run.stop_reason
        if r == "restart" and restart_pending:
            self.error = None
            if closing:
                return "stopped", [self._to(WorkerState.STOPPED, "station shutting down")]
            return "respawn", [Spawn(automatic=False)]
        if r in _OPERATOR_STOPS or closing:
            self.error = None
            return "stopped", [self._to(WorkerState.STOPPED, reason)]
        if code == 0 and r is None:
            return "stopped", [self._to(WorkerState.STOPPED, reason)]
        if code == EXIT_CONFIG and r is None:
            return "failed", self._fail(now, reason, retry=False)
        pol = self.policy
        stable = run.stable or uptime >= pol.stable_after
        if self.probing and not stable:
            return "failed", self._fail(now, f"retry failed: {reason}", retry=True)
        if stable:
            self.fail_streak = 0
        if stable and pol.crash_restart_immediately_if_stable:
            return "restarting", [Log("INFO", "worker had been running stably: restarting at once"),
                                  *self._automatic_start(now)]
        self.fail_streak += 1
        delay = backoff_delay(pol, self.fail_streak, self.rng)
        self.next_start = now + delay
        return "backoff", [Log("INFO", f"restarting in {delay:.2f} s (failure {self.fail_streak} in a row)"),
                           self._to(WorkerState.BACKOFF, f"restart in {delay:.2f} s", delay=delay)]

    # ------------------------------------------------------------ helpers

    def _to(self, state: WorkerState, reason: str, **extra: Any) -> SetState:
        self.state = state
        return SetState(state, reason, extra)

    def _reset_retry(self) -> None:
        self.fail_streak = 0
        self.probing = False
        self.next_start = None
        self.error = None
        self.limiter.reset()

    def _automatic_start(self, now: float) -> list[Action]:
        if not self.probing and not self.limiter.allowed(now):
            pol = self.policy
            return self._fail(
                now,
                f"start rate limit reached: {self.limiter.count(now)} starts within "
                f"{pol.rate_limit_window:g} s (limit {pol.rate_limit_starts}); "
                f"retrying every {pol.failed_retry_interval:g} s",
                retry=True,
            )
        return [Spawn(automatic=True)]

    def _fail(self, now: float, reason: str, retry: bool) -> list[Action]:
        pol = self.policy
        self.error = reason
        self.next_start = now + pol.failed_retry_interval if retry else None
        return [Log("ERROR", f"worker failed: {reason}" + ("" if retry else " (not retried)")),
                self._to(WorkerState.FAILED, reason),
                Failed(reason, retry, pol.failed_retry_interval if retry else None)]
