"""Spawning and watching camera worker processes (Qt-free).

See ``app.supervisor.core`` for the threading model and the state machine.
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
