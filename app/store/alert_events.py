"""Repository of alert events (rows stay here; callers get :class:`AlertEvent`)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from app.domain.alerts import AlertEvent, EventState
from app.domain.rules import Severity
from app.store.errors import flush, write
from app.store.models import AlertEventRow, AlertRuleRow, CameraRow
from app.store.scope import sees, station_of, visible


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _event_from_row(row: AlertEventRow) -> AlertEvent:
    return AlertEvent(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=row.rule_name,
        camera_id=row.camera_id,
        subject=row.subject,
        severity=Severity(row.severity),
        state=EventState(row.state),
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        started_at=_aware(row.started_at),  # type: ignore[arg-type]
        fired_at=_aware(row.fired_at),
        resolved_at=_aware(row.resolved_at),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=_aware(row.acknowledged_at),
    )


def _event_to_row(ev: AlertEvent, row: AlertEventRow) -> AlertEventRow:
    row.rule_id = ev.rule_id
    row.rule_name = ev.rule_name
    row.camera_id = ev.camera_id
    row.subject = ev.subject[:120]
    row.severity = str(ev.severity)
    row.state = str(ev.state)
    row.value = ev.value
    row.threshold = ev.threshold
    row.message = ev.message
    row.started_at = ev.started_at
    row.fired_at = ev.fired_at
    row.resolved_at = ev.resolved_at
    if ev.acknowledged_by is not None or row.acknowledged_by is None:
        # An acknowledgement is only ever added (an update from a stale copy keeps it).
        row.acknowledged_by = ev.acknowledged_by
        row.acknowledged_at = ev.acknowledged_at
    return row


class AlertEventRepository:
    """The alert events of the session's station (and those of no station yet): ``app/store/scope.py``."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def _row(self, event_id: int) -> AlertEventRow | None:
        row = self._s.get(AlertEventRow, event_id)
        return row if row is not None and sees(row.station_id, self._station) else None

    def _scope(self) -> ColumnElement[bool]:
        return visible(AlertEventRow.station_id, self._station)

    def add(self, ev: AlertEvent) -> AlertEvent:
        row = _event_to_row(ev, AlertEventRow())
        row.station_id = self._station
        self._s.add(row)
        flush(self._s)
        return _event_from_row(row)

    def update(self, ev: AlertEvent) -> AlertEvent:
        """Store a change to an event. An event resolved once stays resolved as it was (a late
        copy from the engine, after the camera's removal resolved it, only adds an acknowledgement)."""
        if ev.id is None:
            raise KeyError("alert event without an id")
        row = self._row(ev.id)
        if row is None:
            raise KeyError(ev.id)
        if row.state == str(EventState.RESOLVED):
            if row.acknowledged_by is None and ev.acknowledged_by is not None:
                row.acknowledged_by, row.acknowledged_at = ev.acknowledged_by, ev.acknowledged_at
                flush(self._s)
            return _event_from_row(row)
        _event_to_row(ev, row)
        flush(self._s)
        return _event_from_row(row)

    def get(self, event_id: int) -> AlertEvent | None:
        row = self._row(event_id)
        return _event_from_row(row) if row else None

    def without_gone_references(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """``events`` with ``camera_id``/``rule_id`` set to ``None`` where that camera or rule was
        removed meanwhile (the database did the same to stored rows: ``ON DELETE SET NULL``)."""
        cams = {e.camera_id for e in events if e.camera_id is not None}
        rules = {e.rule_id for e in events if e.rule_id is not None}
        have_cams = set(self._s.scalars(select(CameraRow.id).where(CameraRow.id.in_(cams)))) if cams else set()
        have_rules = set(self._s.scalars(select(AlertRuleRow.id).where(AlertRuleRow.id.in_(rules)))) if rules else set()
        out = []
        for e in events:
            changes: dict[str, int | None] = {}
            if e.camera_id is not None and e.camera_id not in have_cams:
                changes["camera_id"] = None
            if e.rule_id is not None and e.rule_id not in have_rules:
                changes["rule_id"] = None
            out.append(e.with_changes(**changes) if changes else e)
        return out

    def resolve_for_camera(self, camera_id: int, at: datetime, why: str = "camera removed") -> int:
        """Resolve every firing event of one camera (in the caller's transaction); how many."""
        return write(
            self._s,
            update(AlertEventRow)
            .where(AlertEventRow.camera_id == camera_id, AlertEventRow.state == str(EventState.FIRING),
                   self._scope())
            .values(state=str(EventState.RESOLVED), resolved_at=at,
                    message=AlertEventRow.message + f"; resolved: {why}")
            .execution_options(synchronize_session=False),
        )

    def firing(self) -> list[AlertEvent]:
        """Events still open (the problem has not resolved), oldest first."""
        q = (select(AlertEventRow).where(AlertEventRow.state == str(EventState.FIRING), self._scope())
             .order_by(AlertEventRow.id))
        return [_event_from_row(r) for r in self._s.scalars(q)]

    def recent(
        self,
        limit: int = 200,
        *,
        since: datetime | None = None,
        rule_id: int | None = None,
        camera_id: int | None = None,
        unacknowledged: bool = False,
    ) -> list[AlertEvent]:
        """Newest first."""
        q = select(AlertEventRow).where(self._scope()).order_by(AlertEventRow.id.desc()).limit(limit)
        if since is not None:
            q = q.where(AlertEventRow.started_at >= since)
        if rule_id is not None:
            q = q.where(AlertEventRow.rule_id == rule_id)
        if camera_id is not None:
            q = q.where(AlertEventRow.camera_id == camera_id)
        if unacknowledged:
            q = q.where(AlertEventRow.acknowledged_by.is_(None))
        return [_event_from_row(r) for r in self._s.scalars(q)]

    def acknowledge(self, event_id: int, by: str, at: datetime) -> AlertEvent | None:
        """Record who acknowledged the event and when; ``None`` if there is no such event.

        An event acknowledged before keeps its first acknowledgement.
        """
        row = self._row(event_id)
        if row is None:
            return None
        if row.acknowledged_by is None:
            row.acknowledged_by = by
            row.acknowledged_at = at
            flush(self._s)
        return _event_from_row(row)

    def prune(self, before: datetime) -> int:
        """Delete resolved events that ended before ``before``."""
        return write(
            self._s,
            delete(AlertEventRow).where(
                AlertEventRow.state == str(EventState.RESOLVED), AlertEventRow.resolved_at < before, self._scope()
            ),
        )
