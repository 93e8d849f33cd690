"""The API's own answer documents (dataclasses): how a call was routed, and the health document.

The endpoints themselves are in app/api/app.py, their request models in app/api/models.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RouteInfo:
    """How the call was routed: the path chosen, why, and which path served it (legacy after a fallback)."""

    operation: str
    path: str
    reason: str
    served_by: str
    forced: bool
    fallback: bool = False
    fallback_cause: str = ""
    key: str = ""
    percent: int = 0


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    dialect: str
    latency_ms: float | None = None
    error: str | None = None
    #: the storage under the database (SQLite): free bytes, and "disk full" / "busy" when so
    free_bytes: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class SupervisorHealth:
    ok: bool
    workers: int
    error: str | None = None


@dataclass(frozen=True)
class CameraHealth:
    camera_id: int
    name: str
    active: bool
    state: str
    ok: bool
    source: str | None = None
    fps: float | None = None
    last_frame_age: float | None = None
    restarts: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class RolloutHealth:
    verdict: str  # ok | alert | inconclusive | unknown
    use_domain: bool
    percent: int
    latched: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthDocument:
    """``ok``: everything fine; ``degraded``: the station runs but a camera, the rollout or the
    database's storage (busy) needs attention; ``down``: the database or the supervisor does not
    work, or the database's disk is full (HTTP 503)."""

    status: str
    checked_at: float
    database: DatabaseHealth
    supervisor: SupervisorHealth
    cameras: tuple[CameraHealth, ...]
    rollout: RolloutHealth
