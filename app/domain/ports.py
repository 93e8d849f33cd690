"""What the station's operations need from the outside world, as Protocols.

Both implementations of :class:`~app.domain.operations.StationOperations`
(``app.services`` and ``app.legacy``) and the station's wiring program against
these; the outside provides them:

* :class:`UnitOfWorkFactory` / :class:`UnitOfWork` and the repositories: the
  store (``app.store.Store``), or the in-memory store of the unit tests;
* :class:`SupervisorPort`: the supervisor (``app.supervisor.Supervisor``);
* :class:`ProbePort`: the probe runner (``app.services.ports.ProbeRunner``);
* :class:`HistoryPort`: the heartbeat history (``app.services.ports.HeartbeatHistory``).

The store raises the domain's persistence errors
(:class:`~app.domain.errors.ConstraintViolation`, :class:`~app.domain.errors.StaleWrite`),
never its database library's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from app.domain.camera import Camera
from app.domain.rules import AlertRule
from app.domain.worker import LogLine, ProcessStats, SupervisorEvent, WorkerSpec, WorkerStatus

# ---------------------------------------------------------------- persistence


class CameraRepository(Protocol):
    """The stored cameras, inside one unit of work."""

    def add(self, cam: Camera) -> Camera:
        """Store a new camera; returns it with its id."""
        ...

    def get(self, camera_id: int) -> Camera | None: ...

    def get_by_name(self, name: str) -> Camera | None:
        """The camera with this name, compared case-insensitively (``name_key``)."""
        ...

    def update(self, cam: Camera) -> Camera:
        """Write a stored camera back (``KeyError`` when it is gone)."""
        ...

    def remove(self, camera_id: int) -> bool:
        """Delete a camera (its firing alerts resolve in the same unit of work); whether it existed."""
        ...

    def count(self) -> int: ...

    def list(self) -> list[Camera]:
        """Every camera, by id."""
        ...


class RuleRepository(Protocol):
    """The stored alert rules, inside one unit of work."""

    def add(self, rule: AlertRule) -> AlertRule:
        """Store a new rule; returns it with its id."""
        ...

    def get(self, rule_id: int) -> AlertRule | None: ...

    def get_by_name(self, name: str) -> AlertRule | None:
        """The rule with this name, compared case-insensitively (``name_key``)."""
        ...

    def update(self, rule: AlertRule, *, expected_version: int | None = None) -> AlertRule:
        """Write a stored rule back (``KeyError`` when it is gone). With ``expected_version``,
        raise :class:`~app.domain.errors.StaleWrite` unless the stored rule is at that version."""
        ...

    def remove(self, rule_id: int) -> bool:
        """Delete a rule; whether it existed."""
        ...

    def list(self) -> list[AlertRule]:
        """Every rule, by id."""
        ...


class UnitOfWork(Protocol):
    """One transaction: ``with uow: ...; uow.commit()``; leaving the block without ``commit`` rolls back.

    A write that breaks a rule of the store raises
    :class:`~app.domain.errors.ConstraintViolation` (from the repository call or from
    ``commit``); a write that lost a race raises :class:`~app.domain.errors.StaleWrite`.
    """

    @property
    def cameras(self) -> CameraRepository: ...

    @property
    def rules(self) -> RuleRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Hands out units of work (the store; the tests' in-memory store)."""

    def uow(self) -> UnitOfWork: ...

    def camera_snapshot(self) -> Sequence[Camera]:
        """Every committed camera, ordered by id, without opening a unit of work: the status reads'
        read model (the SQL store keeps it in memory until a commit writes the cameras)."""
        ...


# ---------------------------------------------------------------- the supervisor


@runtime_checkable
class SupervisorPort(Protocol):
    """The part of the supervisor the operations program against.

    ``start_worker`` raises :class:`~app.domain.worker.AlreadyRunning`, ``stop_worker``
    :class:`~app.domain.worker.NotRunning`; any :class:`~app.domain.worker.SupervisorError`
    is a refusal the operations turn into a typed answer.
    """

    def start_worker(self, spec: WorkerSpec) -> WorkerStatus: ...
    def stop_worker(self, camera_id: int, timeout: float | None = None) -> WorkerStatus: ...
    def restart_worker(self, spec: WorkerSpec) -> WorkerStatus: ...
    def status(self, camera_id: int) -> WorkerStatus: ...
    def statuses(self) -> Mapping[int, WorkerStatus]:
        """Every supervised camera's status at one moment (a camera absent from it is stopped)."""
        ...
    def logs(self, camera_id: int, limit: int) -> Sequence[LogLine]: ...
    def stats(self, camera_id: int) -> ProcessStats | None: ...
    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]: ...
    def preview_path(self, camera_id: int) -> Path | None: ...
    def take_snapshot(self, camera_id: int, fmt: str = "png",
                      timeout: float = 5.0) -> tuple[dict[str, Any], bytes]: ...


# ---------------------------------------------------------------- probe and heartbeat history


class ProbePort(Protocol):
    """Opens a source once, with a hard timeout.

    Returns the probe's answer (``{"ok": True, "codec": ..., "width": ..., ...}`` or
    ``{"ok": False, "error": ...}``); a probe that had to be killed raises
    :class:`~app.domain.errors.Unavailable`.
    """

    def probe(self, source: str, timeout: float) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HeartbeatSummary:
    """A camera's heartbeats over a window: how many, and their frame rate and motion."""

    samples: int
    fps_avg: float | None
    fps_min: float | None
    motion_avg: float | None


class HistoryPort(Protocol):
    """The recent heartbeats per camera (``camera_stats`` reads a window of them)."""

    def summary(self, camera_id: int, window_s: float) -> HeartbeatSummary: ...
