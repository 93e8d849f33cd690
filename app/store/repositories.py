"""Repositories: the only code that turns rows into domain objects and back."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.domain import (
    AlertRule,
    Camera,
    Comparator,
    MotionSettings,
    NoDataPolicy,
    Notify,
    Severity,
    TargetKind,
    name_key,
)
from app.domain.audit import AuditEntry, ProblemReport
from app.domain.errors import StaleWrite
from app.store.alert_events import AlertEventRepository
from app.store.errors import flush, write
from app.store.models import (
    AlertRuleRow,
    AuditRow,
    CameraRow,
    ProblemReportRow,
    SettingRow,
    StationSettingRow,
    utcnow,
)
from app.store.scope import is_fleet_key, sees, station_of, visible


def _camera_from_row(row: CameraRow) -> Camera:
    return Camera(
        id=row.id,
        name=row.name,
        source=row.source,
        active=row.active,
        max_fps=row.max_fps,
        loop=row.loop,
        motion=MotionSettings(row.motion_enabled, row.motion_threshold, row.motion_warmup),
        stall_timeout=row.stall_timeout,
        location=row.location,
        tags=tuple(row.tags or ()),
    )


def _camera_to_row(cam: Camera, row: CameraRow) -> CameraRow:
    row.name = cam.name
    row.source = cam.source
    row.active = cam.active
    row.max_fps = cam.max_fps
    row.loop = cam.loop
    row.motion_enabled = cam.motion.enabled
    row.motion_threshold = cam.motion.threshold
    row.motion_warmup = cam.motion.warmup_frames
    row.stall_timeout = cam.stall_timeout
    row.location = cam.location
    row.tags = list(cam.tags)
    return row


class CameraRepository:
    """The cameras of the session's station (and those of no station yet): ``app/store/scope.py``."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def _row(self, camera_id: int) -> CameraRow | None:
        row = self._s.get(CameraRow, camera_id)
        return row if row is not None and sees(row.station_id, self._station) else None

    def add(self, cam: Camera) -> Camera:
        row = _camera_to_row(cam, CameraRow())
        row.station_id = self._station
        self._s.add(row)
        flush(self._s)
        return _camera_from_row(row)

    def get(self, camera_id: int) -> Camera | None:
        row = self._row(camera_id)
        return _camera_from_row(row) if row else None

    def get_by_name(self, name: str) -> Camera | None:
        """The camera with this name, compared case-insensitively (see ``name_key``)."""
        cid = _id_by_name(self._s, CameraRow, name, self._station)
        row = self._s.get(CameraRow, cid) if cid is not None else None
        return _camera_from_row(row) if row else None

    def list(self) -> list[Camera]:
        q = select(CameraRow).where(visible(CameraRow.station_id, self._station)).order_by(CameraRow.id)
        return [_camera_from_row(r) for r in self._s.scalars(q)]

    def update(self, cam: Camera) -> Camera:
        assert cam.id is not None
        row = self._row(cam.id)
        if row is None:
            raise KeyError(cam.id)
        _camera_to_row(cam, row)
        flush(self._s)
        return _camera_from_row(row)

    def remove(self, camera_id: int) -> bool:
        """Delete a camera; its firing alerts resolve in the same transaction (no ghost events)."""
        if self._row(camera_id) is None:
            return False
        AlertEventRepository(self._s).resolve_for_camera(camera_id, datetime.now(UTC))
        return bool(write(self._s, delete(CameraRow).where(CameraRow.id == camera_id)))

    def count(self) -> int:
        q = select(func.count()).select_from(CameraRow).where(visible(CameraRow.station_id, self._station))
        return self._s.scalar(q) or 0


def _id_by_name(session: Session, row_cls: type[CameraRow] | type[AlertRuleRow], name: str,
                station_id: str | None) -> int | None:
    """Id of the row whose name is ``name`` case-insensitively, among the rows ``station_id`` sees.
    The database's ``lower()`` index narrows ASCII names; ``casefold`` decides (SQLite's ``lower``
    leaves non-ASCII letters alone)."""
    key = name_key(name)
    scope = visible(row_cls.station_id, station_id)
    exact = session.scalars(select(row_cls.id).where(func.lower(row_cls.name) == name.strip().lower(),
                                                     scope)).first()
    if exact is not None:
        return exact
    for rid, other in session.execute(select(row_cls.id, row_cls.name).where(scope)):
        if name_key(other) == key:
            return rid
    return None


def _rule_from_row(row: AlertRuleRow) -> AlertRule:
    n = row.notify or {}
    return AlertRule(
        id=row.id,
        name=row.name,
        target=TargetKind(row.target),
        camera_id=row.camera_id,
        metric=row.metric,
        comparator=Comparator(row.comparator),
        threshold=row.threshold,
        for_seconds=row.for_seconds,
        keep_firing_for=row.keep_firing_for,
        severity=Severity(row.severity),
        cooldown=row.cooldown,
        repeat_interval=row.repeat_interval,
        no_data=NoDataPolicy(row.no_data),
        schedule=row.schedule,
        enabled=row.enabled,
        notify=Notify(
            webhook_url=n.get("webhook_url"),
            command=tuple(n.get("command") or ()),
            desktop=bool(n.get("desktop", True)),
            sound=bool(n.get("sound", False)),
        ),
        description=row.description,
        template=row.template,
        version=row.version,
    )


def _rule_to_row(rule: AlertRule, row: AlertRuleRow) -> AlertRuleRow:
    row.name = rule.name
    row.target = str(rule.target)
    row.camera_id = rule.camera_id
    row.metric = rule.metric
    row.comparator = str(rule.comparator)
    row.threshold = rule.threshold
    row.for_seconds = rule.for_seconds
    row.keep_firing_for = rule.keep_firing_for
    row.severity = str(rule.severity)
    row.cooldown = rule.cooldown
    row.repeat_interval = rule.repeat_interval
    row.no_data = str(rule.no_data)
    row.schedule = rule.schedule
    row.enabled = rule.enabled
    row.notify = {
        "webhook_url": rule.notify.webhook_url,
        "command": list(rule.notify.command),
        "desktop": rule.notify.desktop,
        "sound": rule.notify.sound,
    }
    row.description = rule.description
    row.template = rule.template
    row.version = rule.version
    return row


class RuleRepository:
    """The rules of the session's station and the fleet-wide ones (no station): ``app/store/scope.py``."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def add(self, rule: AlertRule, *, fleet_wide: bool = False) -> AlertRule:
        """Store a new rule: the station's own, or (``fleet_wide``, the default rules) every station's."""
        row = _rule_to_row(rule, AlertRuleRow())
        row.station_id = None if fleet_wide else self._station
        self._s.add(row)
        flush(self._s)
        return _rule_from_row(row)

    def _row(self, rule_id: int) -> AlertRuleRow | None:
        row = self._s.get(AlertRuleRow, rule_id)
        return row if row is not None and sees(row.station_id, self._station) else None

    def get(self, rule_id: int) -> AlertRule | None:
        row = self._row(rule_id)
        return _rule_from_row(row) if row else None

    def get_by_name(self, name: str) -> AlertRule | None:
        """The rule with this name, compared case-insensitively (see ``name_key``)."""
        rid = _id_by_name(self._s, AlertRuleRow, name, self._station)
        row = self._s.get(AlertRuleRow, rid) if rid is not None else None
        return _rule_from_row(row) if row else None

    def list(self) -> list[AlertRule]:
        q = select(AlertRuleRow).where(visible(AlertRuleRow.station_id, self._station)).order_by(AlertRuleRow.id)
        return [_rule_from_row(r) for r in self._s.scalars(q)]

    def ids(self) -> builtins.list[int]:
        """The ids of the rules :meth:`list` returns (the rollout's keys need no more)."""
        q = select(AlertRuleRow.id).where(visible(AlertRuleRow.station_id, self._station)).order_by(AlertRuleRow.id)
        return list(self._s.scalars(q))

    def update(self, rule: AlertRule, *, expected_version: int | None = None) -> AlertRule:
        """Write ``rule`` back. With ``expected_version``, refuse (:class:`StaleWrite`) when the stored
        rule is no longer at the version the caller read; the UPDATE itself also matches only
        the version loaded here, so a writer racing in between cannot be overwritten."""
        assert rule.id is not None
        row = self._row(rule.id)
        if row is None:
            raise KeyError(rule.id)
        if expected_version is not None and row.version != expected_version:
            raise StaleWrite(f"alert rule {rule.id} is at version {row.version}, not {expected_version}")
        _rule_to_row(rule, row)
        flush(self._s)
        return _rule_from_row(row)

    def remove(self, rule_id: int) -> bool:
        if self._row(rule_id) is None:
            return False
        return bool(write(self._s, delete(AlertRuleRow).where(AlertRuleRow.id == rule_id)))


class SettingsRepository:
    """The fleet's settings and the session's station's own (``app/store/scope.py`` says which key is which).

    A store opened for no station keeps every setting in the shared table, as before fleets;
    the first station to open takes the ones that are not the fleet's (``app/store/ownership.py``);
    until then a station reads them as its own.
    """

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def _row(self, key: str) -> SettingRow | StationSettingRow | None:
        if self._station is None or is_fleet_key(key):
            return self._s.get(SettingRow, key)
        return self._s.get(StationSettingRow, (self._station, key))

    def get(self, key: str, default: Any = None) -> Any:
        row = self._row(key)
        if row is None and self._station is not None:  # a setting of no station yet (before fleets)
            row = self._s.get(SettingRow, key)
        return row.value if row is not None else default

    def all(self, prefixes: tuple[str, ...] = ()) -> dict[str, object]:
        """Every setting (the station's own over the shared ones), or those whose key starts
        with one of ``prefixes``."""
        shared = select(SettingRow)
        own = select(StationSettingRow).where(StationSettingRow.station_id == self._station)
        if prefixes:
            shared = shared.where(or_(*(SettingRow.key.startswith(p) for p in prefixes)))
            own = own.where(or_(*(StationSettingRow.key.startswith(p) for p in prefixes)))
        values: dict[str, object] = {r.key: r.value for r in self._s.scalars(shared)}
        if self._station is not None:
            values.update((r.key, r.value) for r in self._s.scalars(own))
        return values

    def set(self, key: str, value: Any) -> None:
        row = self._row(key)
        if row is not None:
            row.value = value
        elif self._station is None or is_fleet_key(key):
            self._s.add(SettingRow(key=key, value=value))
        else:
            self._s.add(StationSettingRow(station_id=self._station, key=key, value=value))
        flush(self._s)

    def set_many(self, values: dict[str, object]) -> None:
        for k, v in values.items():
            self.set(k, v)


def _audit_from_row(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, at=row.at, op=row.op, key=row.key, path=row.path, outcome=row.outcome,
        latency_ms=row.latency_ms, fallback=row.fallback, actor=row.actor, reason=row.reason,
        detail=dict(row.detail or {}),
    )


class AuditRepository:
    """The audit of the session's station (entries of no station included): ``app/store/scope.py``."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def add(self, entry: AuditEntry) -> None:
        self._s.add(
            AuditRow(
                at=entry.at or utcnow(), op=entry.op, key=entry.key, path=entry.path,
                outcome=entry.outcome, latency_ms=entry.latency_ms, fallback=entry.fallback,
                actor=entry.actor, reason=entry.reason, detail=entry.detail, station_id=self._station,
            )
        )

    def add_many(self, entries: Iterable[AuditEntry]) -> None:
        for e in entries:
            self.add(e)

    def count(self) -> int:
        q = select(func.count()).select_from(AuditRow).where(visible(AuditRow.station_id, self._station))
        return int(self._s.scalar(q) or 0)

    def prune(self, before: datetime, keep_rows: int) -> int:
        """Delete entries older than ``before``, then the oldest beyond ``keep_rows``; returns how many."""
        scope = visible(AuditRow.station_id, self._station)
        n = write(self._s, delete(AuditRow).where(AuditRow.at < before, scope))
        if self.count() > keep_rows:
            cutoff = self._s.scalar(select(AuditRow.id).where(scope).order_by(AuditRow.id.desc())
                                    .offset(keep_rows).limit(1))
            if cutoff is not None:
                n += write(self._s, delete(AuditRow).where(AuditRow.id <= cutoff, scope))
        return n

    def recent(self, limit: int = 200, op_prefix: str | None = None, since: datetime | None = None,
               before: int | None = None) -> list[AuditEntry]:
        q = (select(AuditRow).where(visible(AuditRow.station_id, self._station))
             .order_by(AuditRow.id.desc()).limit(limit))
        if before is not None:  # paging: entries older than the id given
            q = q.where(AuditRow.id < before)
        if op_prefix:
            q = q.where(AuditRow.op.startswith(op_prefix))
        if since is not None:
            q = q.where(AuditRow.at >= since)
        return [_audit_from_row(r) for r in self._s.scalars(q)]


def _report_from_row(row: ProblemReportRow) -> ProblemReport:
    return ProblemReport(
        id=row.id, track=row.track, stage=row.stage, text=row.text, operator=row.operator,
        camera_id=row.camera_id, rule_id=row.rule_id, created_at=row.created_at,
        resolved_at=row.resolved_at, resolved_by=row.resolved_by, resolution=row.resolution,
    )


class ReportRepository:
    """Problem reports against rollout tracks (``app.domain.audit.ProblemReport``)."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def add(self, report: ProblemReport) -> ProblemReport:
        row = ProblemReportRow(
            track=report.track, stage=report.stage, text=report.text, operator=report.operator,
            camera_id=report.camera_id, rule_id=report.rule_id, created_at=report.created_at or utcnow(),
            station_id=self._station,
        )
        self._s.add(row)
        flush(self._s)
        return _report_from_row(row)

    def _row(self, report_id: int) -> ProblemReportRow | None:
        row = self._s.get(ProblemReportRow, report_id)
        return row if row is not None and sees(row.station_id, self._station) else None

    def get(self, report_id: int) -> ProblemReport | None:
        row = self._row(report_id)
        return _report_from_row(row) if row is not None else None

    def list(self, track: str | None = None, *, open_only: bool = False) -> list[ProblemReport]:
        q = (select(ProblemReportRow).where(visible(ProblemReportRow.station_id, self._station))
             .order_by(ProblemReportRow.id))
        if track is not None:
            q = q.where(ProblemReportRow.track == track)
        if open_only:
            q = q.where(ProblemReportRow.resolved_at.is_(None))
        return [_report_from_row(r) for r in self._s.scalars(q)]

    def resolve(self, report_id: int, *, by: str, resolution: str) -> ProblemReport | None:
        row = self._row(report_id)
        if row is None:
            return None
        row.resolved_at = utcnow()
        row.resolved_by = by
        row.resolution = resolution
        flush(self._s)
        return _report_from_row(row)
