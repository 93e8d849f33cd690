"""Repository of per-minute metric rollups (rows stay here; callers get :class:`RollupPoint`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from app.domain.metrics import RollupPoint, labels_text, parse_labels_text
from app.store.errors import flush, write
from app.store.models import MetricRollupRow
from app.store.scope import station_of, visible


def _point_from_row(row: MetricRollupRow) -> RollupPoint:
    return RollupPoint(
        series=row.series,
        labels=parse_labels_text(row.labels),
        minute=row.minute,
        count=row.count,
        sum=row.sum,
        min=row.min,
        max=row.max,
        last=row.last,
    )


class RollupRepository:
    """The rollups of the session's station (and those of no station yet): ``app/store/scope.py``."""

    def __init__(self, session: Session):
        self._s = session
        self._station = station_of(session)

    def _scope(self) -> ColumnElement[bool]:
        return visible(MetricRollupRow.station_id, self._station)

    def put_many(self, points: Iterable[RollupPoint]) -> int:
        """Insert the points; a point for a (series, labels, minute) that is already stored replaces it."""
        pts = list(points)
        if not pts:
            return 0
        keys = {(p.series, labels_text(p.labels), p.minute) for p in pts}
        minutes = {p.minute for p in pts}
        # Replace instead of duplicate (a minute rolled twice, e.g. after a restart).
        existing = self._s.execute(
            select(MetricRollupRow.id, MetricRollupRow.series, MetricRollupRow.labels, MetricRollupRow.minute)
            .where(MetricRollupRow.minute.in_(minutes), MetricRollupRow.station_id == self._station
                   if self._station is not None else MetricRollupRow.station_id.is_(None))
        ).all()
        stale = [r.id for r in existing if (r.series, r.labels, r.minute) in keys]
        if stale:
            write(self._s, delete(MetricRollupRow).where(MetricRollupRow.id.in_(stale)))
        self._s.add_all(
            MetricRollupRow(
                series=p.series, labels=labels_text(p.labels), minute=p.minute,
                count=p.count, sum=p.sum, min=p.min, max=p.max, last=p.last, station_id=self._station,
            )
            for p in pts
        )
        flush(self._s)
        return len(pts)

    def history(
        self,
        series: str,
        labels: tuple[tuple[str, str], ...],
        since_minute: int,
        until_minute: int | None = None,
    ) -> list[RollupPoint]:
        """Points of one series from ``since_minute`` (inclusive) to ``until_minute`` (exclusive), oldest first."""
        q = (
            select(MetricRollupRow)
            .where(
                MetricRollupRow.series == series,
                MetricRollupRow.labels == labels_text(labels),
                MetricRollupRow.minute >= since_minute,
                self._scope(),
            )
            .order_by(MetricRollupRow.minute)
        )
        if until_minute is not None:
            q = q.where(MetricRollupRow.minute < until_minute)
        return [_point_from_row(r) for r in self._s.scalars(q)]

    def series_keys(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        rows = self._s.execute(select(MetricRollupRow.series, MetricRollupRow.labels).where(self._scope()).distinct()).all()
        return sorted((r.series, parse_labels_text(r.labels)) for r in rows)

    def prune(self, before_minute: int) -> int:
        """Delete every point older than ``before_minute``."""
        return write(self._s, delete(MetricRollupRow).where(MetricRollupRow.minute < before_minute, self._scope()))

    def count(self) -> int:
        return self._s.scalar(select(func.count()).select_from(MetricRollupRow).where(self._scope())) or 0

