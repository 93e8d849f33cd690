"""Value types of the supervisor's public API (pure data, no behaviour).

The worker's vocabulary (spec, state, status, logs, stats, events, refusals) is
the domain's (:mod:`app.domain.worker`), so that the supervisor port can live in
the domain; it is re-exported here. The restart policy is the supervisor's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.worker import (
    AlreadyRunning,
    ExitInfo,
    LogLine,
    LogSource,
    NotRunning,
    ProcessStats,
    SourceState,
    SpawnError,
    SupervisorError,
    SupervisorEvent,
    WorkerSpec,
    WorkerState,
    WorkerStatus,
)

__all__ = [
    "AlreadyRunning",
    "ExitInfo",
    "LogLine",
    "LogSource",
    "NotRunning",
    "ProcessStats",
    "RestartPolicy",
    "SourceState",
    "SpawnError",
    "SupervisorError",
    "SupervisorEvent",
    "WorkerSpec",
    "WorkerState",
    "WorkerStatus",
]


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
