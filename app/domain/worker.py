"""The worker as the station's operations see it: pure data, no behaviour.

What to run for a camera (:class:`WorkerSpec`), the state and status of its
worker, its logs, its resource use, the events the supervisor pushes, and the
supervisor's refusals. The supervisor (``app.supervisor``) produces these; the
operations read them through :class:`app.domain.ports.SupervisorPort`.

Everything here is immutable and Qt-free. Times named ``*_at``/``ts`` are unix
seconds (wall clock, for display); durations (``uptime``, ``*_age``,
``next_retry_in``) are measured on the monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

SourceState = Literal["up", "down", "opening"]
LogSource = Literal["worker", "supervisor"]


class SupervisorError(Exception):
    """Base class of every error the supervisor raises."""


class NotRunning(SupervisorError):
    """The operation needs a worker that is running (or waiting to run), and it is not."""


class AlreadyRunning(SupervisorError):
    """A worker for this camera is already running (or starting, or waiting to restart)."""


class EvidenceRequestError(SupervisorError):
    """The worker could not be asked for evidence (a snapshot, a clip), did not answer in time,
    or answered with an error.

    ``reason`` is ``not_running``, ``timeout``, ``exited`` or ``refused`` (the worker's
    own error text is the message)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


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
