"""Value types of the supervisor's public API (pure data, no behaviour).

Everything here is immutable and Qt-free; the service layer and the UI read these.
Times named ``*_at``/``ts`` are unix seconds (wall clock, for display); durations
(``uptime``, ``*_age``, ``next_retry_in``) are measured on the monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from app.workerlink.protocol import SourceState

__all__ = [
    "AlreadyRunning", "ExitInfo", "LogLine", "LogSource", "NotRunning", "ProcessStats", "RestartPolicy",
    "SourceState", "SpawnError", "SupervisorError", "SupervisorEvent", "WorkerSpec", "WorkerState",
    "WorkerStatus",
]

LogSource = Literal["worker", "supervisor"]


class SupervisorError(Exception):
    """Base class of every error the supervisor raises."""


class NotRunning(SupervisorError):
    """The operation needs a worker that is running (or waiting to run), and it is not."""


class AlreadyRunning(SupervisorError):
    """A worker for this camera is already running (or starting, or waiting to restart)."""


class SpawnError(SupervisorError):
    """The worker process could not be started at all (command missing, not executable...).

    ``transient`` marks resource exhaustion (too many open files, no memory, process
    limit): retried with the normal backoff instead of making the camera FAILED.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class WorkerSpec:
    """What to run for one camera."""

    camera_id: int
    name: str
    source: str
    loop: bool = False
    max_fps: float | None = None
    motion_threshold: float = 0.02
    stall_timeout: float = 10.0
    extra_args: tuple[str, ...] = ()
    # Override of the worker command (tests / fault injection). Default:
    # app.workerlink.launch.worker_command(). The "run ..." arguments are appended.
    command: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts, rate-limits and times out workers (seconds)."""

    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    backoff_factor: float = 2.0
    jitter: float = 0.1  # +/- fraction applied to each backoff delay
    stable_after: float = 60.0  # a run this long resets the backoff
    rate_limit_starts: int = 5  # at most this many starts ...
    rate_limit_window: float = 60.0  # ... within this window, else FAILED
    failed_retry_interval: float = 300.0  # slow probe while FAILED (rate limited)
    heartbeat_timeout: float = 5.0  # no heartbeat for this long while running -> hung
    stop_timeout: float = 5.0  # TERM -> this long -> KILL
    crash_restart_immediately_if_stable: bool = True
    # Extensions (not in the original API list; defaults keep it compatible):
    heartbeat_interval: float = 1.0  # passed to the worker (--heartbeat-interval)
    start_timeout: float = 15.0  # no first heartbeat within this long after spawn -> hung

    def __post_init__(self) -> None:
        problems = []
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            problems.append("need 0 <= backoff_initial <= backoff_max")
        if self.backoff_factor < 1:
            problems.append("backoff_factor must be >= 1")
        if not 0 <= self.jitter < 1:
            problems.append("jitter must be in [0, 1)")
        if self.rate_limit_starts < 1 or self.rate_limit_window <= 0:
            problems.append("rate limit needs >= 1 start in a positive window")
        for name in ("stable_after", "failed_retry_interval", "heartbeat_timeout",
                     "stop_timeout", "heartbeat_interval", "start_timeout"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        if problems:
            raise ValueError("invalid RestartPolicy: " + "; ".join(problems))


class WorkerState(StrEnum):
    """Supervisor-side state of one camera's worker ('inactive' is decided above)."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STALLED = "stalled"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    FAILED = "failed"


@dataclass(frozen=True)
class ExitInfo:
    """How a worker process ended."""

    code: int | None  # exit code, None when killed by a signal
    signal: int | None  # signal number when killed by a signal
    reason: str  # human readable: "crashed (exit code 1)", "killed by SIGKILL", ...
    at: float  # unix time


@dataclass(frozen=True)
class WorkerStatus:
    camera_id: int
    state: WorkerState
    pid: int | None = None
    started_at: float | None = None
    uptime: float | None = None
    restarts: int = 0
    last_exit: ExitInfo | None = None
    source: SourceState | None = None
    fps: float | None = None
    decoded: int = 0
    dropped: int = 0
    motion: float | None = None
    motion_active: bool = False
    last_frame_age: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    last_heartbeat_age: float | None = None
    preview_path: str | None = None
    next_retry_in: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ProcessStats:
    """Resource use of a worker, its process group and every tracked descendant."""

    pid: int
    cpu_percent: float  # percent of one core, summed over the tree
    rss_bytes: int
    threads: int
    children: int  # number of live descendants
    at: float  # unix time of the sample


@dataclass(frozen=True)
class LogLine:
    ts: float
    source: LogSource
    level: str
    text: str


@dataclass(frozen=True)
class SupervisorEvent:
    """Pushed to subscribers on the supervisor thread.

    kind: "state" (detail: from, to, reason), "heartbeat" (the heartbeat), "exit"
    (code, signal, reason, uptime), "failed" (reason, next_retry_in; alert-worthy),
    "source" (from, to, error), "evidence" (a worker's answer to an evidence request).
    """

    kind: str
    camera_id: int
    state: WorkerState
    detail: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0
