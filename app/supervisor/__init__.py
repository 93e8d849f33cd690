"""Spawning and watching camera worker processes (Qt-free).

``Supervisor`` (``app.supervisor.core``) is the public face; see there for the threading
model. The restart state machine of one camera is ``app.supervisor.lifecycle`` (pure, no
processes); the worker protocol both sides import is ``app.workerlink.protocol``.
"""

from app.supervisor.core import Supervisor
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
from app.supervisor.policy import StartRateLimiter, backoff_delay

__all__ = [
    "AlreadyRunning",
    "ExitInfo",
    "LogLine",
    "NotRunning",
    "ProcessStats",
    "RestartPolicy",
    "SpawnError",
    "StartRateLimiter",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "WorkerSpec",
    "WorkerState",
    "WorkerStatus",
    "backoff_delay",
]
