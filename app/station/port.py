"""``StationPort``: everything the window, the kiosk, the local API and the CLI need from a station.

One typed facade, methods only: clients never reach into the station's parts (its router,
supervisor, store, alert engine or evidence store). There is one way to run an operation,
:meth:`StationPort.call` (or :meth:`StationPort.call_with_decision` to also learn how it was
routed), and it always names the actor the audit log records.

:class:`app.station.Station` implements it (checked by mypy at the bottom of ``app/station/facade.py``);
a test or a view can provide a smaller fake of the methods it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.station.events import ApiStatus, StationEvent

if TYPE_CHECKING:
    import numpy as np

    from app.domain import Camera
    from app.domain.alerts import AlertEvent, AlertStatus
    from app.domain.audit import AuditEntry
    from app.domain.evidence import Evidence, EvidenceSettings, EvidenceUsage
    from app.domain.operations import CameraStatus
    from app.domain.rules import AlertRule
    from app.fleet.view import FleetView
    from app.kiosk.instance import InstanceLock
    from app.platform.paths import StationPaths
    from app.rollout.decision import Decision
    from app.rollout.health import GateResult, HealthVerdict
    from app.rollout.metrics import WindowStats
    from app.rollout.rehearse import RehearsalResult
    from app.rollout.router import RolloutSnapshot
    from app.rollout.settings import RolloutSettings
    from app.rollout.verify import StepProgress, VerifyReport
    from app.store.yaml_io import ImportReport
    from app.supervisor.model import ProcessStats

__all__ = ["ApiHandle", "ApiStarter", "DatabaseCheck", "EvidenceDisk", "MetricsReader", "OperationCounts",
           "StationPort"]

#: a metric series: its name and its labels, sorted, as (key, value) pairs
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Labels = Mapping[str, object] | tuple[tuple[str, str], ...] | None


@dataclass(frozen=True)
class DatabaseCheck:
    """One look at the database: reachable, how fast, and the storage under it (SQLite)."""

    ok: bool
    dialect: str
    latency_ms: float | None = None
    error: str | None = None
    free_bytes: int | None = None
    #: "disk full ..." / "busy ..." when the storage needs attention
    problem: str | None = None


@dataclass(frozen=True)
class EvidenceDisk:
    """Where evidence is kept, the bytes it takes and the free space of its disk."""

    root: Path
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class OperationCounts:
    """Lifetime counts of one operation on one path (``legacy`` or ``domain``)."""

    calls: int
    errors: int
    fallbacks: int
    answers: int
    successes: int = 0  # end to end, after any fallback: a result or an operation-error answer


class MetricsReader(Protocol):
    """Read-only view of the station's live metric series (1-second ring buffers)."""

    def keys(self, name: str | None = None) -> list[SeriesKey]: ...

    def latest_sample(self, key: SeriesKey) -> tuple[float, float] | None: ...

    def latest(self, name: str, labels: Labels = None, *, max_age: float | None = None,
               now: float | None = None) -> float | None: ...

    def window(self, name: str, labels: Labels = None, seconds: float = 60.0,
               now: float | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def info(self, name: str) -> Any: ...


class ApiHandle(Protocol):
    """A running local API, as the station holds it (``app.api.ApiServer``)."""

    host: str

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    token_path: Path

    def stop(self) -> None: ...


class StationPort(Protocol):
    """The station as its clients see it. Blocking calls are the caller's to keep off a GUI thread."""

    # ------------------------------------------------------------ lifecycle

    @property
    def paths(self) -> StationPaths:
        """The data dir, database URL, run and log dirs."""

    @property
    def instance_lock(self) -> InstanceLock | None:
        """The lock that makes this the one station of its data dir (None before open / after close)."""

    @property
    def api_status(self) -> ApiStatus:
        """Whether the local API runs, and why not when it should."""

    def open(self) -> StationPort: ...

    def close(self) -> None: ...

    def restart_api(self) -> ApiStatus: ...

    def subscribe(self, callback: Callable[[StationEvent], None]) -> Callable[[], None]:
        """Be told of every :class:`StationEvent` (on a station thread); returns the unsubscribe."""

    # ------------------------------------------------------------ the thirteen operations

    def call(self, op: str, request: Any, *, actor: str, force: str | None = None) -> Any:
        """Run an operation by name through the rollout router, audited as ``actor``."""

    def call_with_decision(self, op: str, request: Any, *, actor: str,
                           force: str | None = None) -> tuple[Any, Decision]: ...

    def last_decision(self) -> Decision | None:
        """The routing decision of this thread's last call (also when it raised)."""

    def autostart(self, *, actor: str = "station") -> None:
        """Start every active camera that is not running."""

    def stop_all(self, *, actor: str = "station") -> None: ...

    # ------------------------------------------------------------ cameras

    def cameras(self) -> list[Camera]:
        """The cameras as last loaded (no database read)."""

    def camera(self, camera_id: int) -> Camera | None: ...

    def live_status(self) -> list[CameraStatus]: ...

    def preview_path(self, camera_id: int) -> Path | None: ...

    def worker_stats(self, camera_id: int) -> ProcessStats | None: ...

    def supervisor_running(self) -> bool: ...

    def worker_count(self) -> int: ...

    def list_cameras(self) -> list[Camera]:
        """The cameras as stored now (a database read)."""

    def get_camera(self, camera_id: int) -> Camera: ...

    def add_camera(self, camera: Camera) -> Camera: ...

    def update_camera(self, camera_id: int, changes: Mapping[str, Any]) -> Camera: ...

    def remove_camera(self, camera_id: int, *, delete_evidence: bool = False) -> tuple[int, int]: ...

    def reload_cameras(self) -> None: ...

    def import_file(self, path: Path | str, *, replace: bool = False) -> ImportReport: ...

    def import_text(self, text: str, *, replace: bool = False, filename: str = "<request>") -> ImportReport: ...

    def export_file(self, path: Path | str, *, include_secrets: bool = False) -> int: ...

    def export_text(self, *, include_secrets: bool = False) -> str: ...

    # ------------------------------------------------------------ alert rules and alerts

    def list_rules(self, *, via: str = "domain") -> list[AlertRule]:
        """Every alert rule, read by the ``domain`` or the ``legacy`` implementation."""

    def get_rule(self, rule_id: int) -> AlertRule: ...

    def set_rule_enabled(self, rule_id: int, enabled: bool) -> AlertRule: ...

    def delete_rule(self, rule_id: int) -> None: ...

    def reload_rules(self) -> None: ...

    def alerts_running(self) -> bool: ...

    def alert_statuses(self) -> list[AlertStatus]: ...

    def firing_alerts(self) -> list[AlertStatus]: ...

    def alert_history(self, limit: int = 200) -> list[AlertEvent]: ...

    def loaded_rules(self) -> list[AlertRule]:
        """The rules the alert engine evaluates now."""

    def alert_events(self, limit: int = 200, *, rule_id: int | None = None, camera_id: int | None = None,
                     unacknowledged: bool = False, active: bool | None = None) -> list[AlertEvent]: ...

    def alert_event(self, event_id: int) -> AlertEvent: ...

    def acknowledge_alert(self, event_id: int, by: str) -> AlertEvent: ...

    # ------------------------------------------------------------ settings and audit

    def get_settings(self) -> dict[str, Any]: ...

    def set_settings(self, values: dict[str, Any], *, actor: str) -> None: ...

    def audit_page(self, limit: int = 100, *, before: int | None = None,
                   op_prefix: str | None = None) -> list[AuditEntry]: ...

    def record_admin(self, op: str, *, key: str = "", outcome: str = "ok", actor: str,
                     detail: dict[str, Any] | None = None) -> None: ...

    # ------------------------------------------------------------ metrics and health

    def metrics_reader(self) -> MetricsReader | None: ...

    def metric_history(self, name: str, labels: Labels = None, since: float = 0.0,
                       until: float | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def metric_series(self, name: str) -> list[SeriesKey]: ...

    def operation_counts(self) -> dict[tuple[str, str], OperationCounts]: ...

    def operation_window(self) -> WindowStats: ...

    def observe_operations(self, observer: Callable[[str, str, float], None]) -> Callable[[], None]:
        """Be told (op, path, seconds) of every routed call; returns the unsubscribe."""

    def database_check(self) -> DatabaseCheck: ...

    # ------------------------------------------------------------ the fleet

    def fleet_view(self) -> FleetView | None:
        """The fleet this station is in, read while someone subscribes (None before open, or when
        the station is not in a fleet)."""

    # ------------------------------------------------------------ rollout

    def rollout_settings(self) -> RolloutSettings: ...

    def rollout_health(self) -> HealthVerdict: ...

    def rollout_snapshot(self) -> RolloutSnapshot: ...

    def rollout_set(self, *, track: str = "all", use_domain: object = None, percent: object = None,
                    reason: str = "set", override_reason: str | None = None, actor: str) -> RolloutSettings: ...

    def rollout_advance(self, *, track: str | None, override_reason: str | None = None,
                        actor: str) -> tuple[RolloutSettings, GateResult]: ...

    def rollout_rollback(self, *, track: str = "all", reason: str = "manual rollback",
                         actor: str) -> dict[str, Any]: ...

    def rollout_resume(self, *, track: str, reason: str, actor: str) -> RolloutSettings: ...

    def rollout_options(self, changes: dict[str, object], *, actor: str) -> RolloutSettings: ...

    def rollout_gate(self, track: str) -> GateResult: ...

    def rollout_reports(self, track: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]: ...

    def file_report(self, *, track: str, text: str, camera_id: int | None = None, rule_id: int | None = None,
                    operator: str) -> dict[str, Any]: ...

    def resolve_report(self, report_id: int, *, note: str, operator: str) -> dict[str, Any]: ...

    def rehearse_rollback(self, *, track: str = "cameras", actor: str,
                          progress: Callable[[str], None] | None = None) -> RehearsalResult: ...

    def verify(self, *, actor: str, progress: Callable[[str], None] | None = None,
               on_step: Callable[[StepProgress], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> VerifyReport:
        """Run the verification scenario on a scratch station and record the result for the gate."""

    # ------------------------------------------------------------ evidence

    def save_clip(self, camera_id: int, *, pre: float | None = None, post: float | None = None,
                  event_id: int | None = None) -> Evidence: ...

    def save_snapshot(self, camera_id: int, *, event_id: int | None = None) -> Evidence: ...

    def list_evidence(self, camera_id: int | None = None, limit: int = 1000) -> list[Evidence]: ...

    def evidence_usage(self) -> list[EvidenceUsage]: ...

    def evidence_disk(self) -> EvidenceDisk: ...

    def evidence_path(self, evidence: Evidence) -> Path: ...

    def delete_evidence(self, evidence_ids: list[int]) -> int: ...

    def delete_camera_evidence(self, camera_id: int) -> tuple[int, int]: ...

    def export_event(self, event_id: int, dest: Path | str) -> Path: ...

    def evidence_for_event(self, event_id: int) -> list[Evidence]: ...

    def evidence_for_events(self, event_ids: list[int]) -> dict[int, list[Evidence]]: ...

    def evidence_failures(self, event_id: int) -> list[str]: ...

    def evidence_blocked(self) -> str | None: ...

    def evidence_settings(self) -> EvidenceSettings: ...

    def event_snapshot_path(self, event_id: int, moment: str = "fired") -> Path | None: ...

    def event_snapshot(self, event_id: int, moment: str = "fired") -> tuple[bytes, str] | None: ...

    def event_clip_path(self, event_id: int) -> Path | None: ...


#: starts the local API for a station (``--api-port`` or None); None when it is off or cannot start.
#: The station is handed one (``StationOptions.api``) by whoever builds it, so it never imports the API.
ApiStarter = Callable[[StationPort, "int | None"], "ApiHandle | None"]
