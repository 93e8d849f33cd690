"""Repository of evidence files (rows stay here; callers get :class:`Evidence`)."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from app.domain.evidence import Evidence, EvidenceUsage
from app.store.errors import flush, write
from app.store.models import EvidenceRow
from app.store.scope import sees, station_of, visible

__all__ = ["EvidenceRepository"]


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _from_row(row: EvidenceRow) -> Evidence:
    return Evidence(
        id=row.id, event_id=row.event_id, camera_id=row.camera_id, camera_name=row.camera_name,
        kind=row.kind, moment=row.moment, path=row.path, bytes=row.bytes,
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        width=row.width, height=row.height, duration=row.duration, preroll=row.preroll,
        codec=row.codec, reencoded=row.reencoded, note=row.note,
    )


class EvidenceRepository:
    """The evidence of the session's station (and that of no station yet): ``app/store/scope.py``.
    Its files are in that station's data dir."""

    def __init__(self, session: Session):
        self.s = session
        self._station = station_of(session)

    def _scope(self) -> ColumnElement[bool]:
        return visible(EvidenceRow.station_id, self._station)

    def add(self, ev: Evidence) -> Evidence:
        row = EvidenceRow(
            event_id=ev.event_id, camera_id=ev.camera_id, camera_name=ev.camera_name[:64], kind=ev.kind,
            moment=ev.moment, path=ev.path, bytes=ev.bytes, created_at=ev.created_at, width=ev.width,
            height=ev.height, duration=ev.duration, preroll=ev.preroll, codec=ev.codec[:20],
            reencoded=ev.reencoded, note=ev.note, station_id=self._station,
        )
        self.s.add(row)
        flush(self.s)
        return _from_row(row)

    def get(self, evidence_id: int) -> Evidence | None:
        row = self.s.get(EvidenceRow, evidence_id)
        return _from_row(row) if row is not None and sees(row.station_id, self._station) else None

    def for_event(self, event_id: int) -> list[Evidence]:
        rows = self.s.scalars(select(EvidenceRow).where(EvidenceRow.event_id == event_id, self._scope()).order_by(EvidenceRow.id))
        return [_from_row(r) for r in rows]

    def for_events(self, event_ids: list[int]) -> dict[int, list[Evidence]]:
        out: dict[int, list[Evidence]] = {}
        if not event_ids:
            return out
        rows = self.s.scalars(select(EvidenceRow).where(EvidenceRow.event_id.in_(event_ids), self._scope()).order_by(EvidenceRow.id))
        for r in rows:
            out.setdefault(r.event_id, []).append(_from_row(r))  # type: ignore[arg-type]
        return out

    def list(self, camera_id: int | None = None, limit: int = 1000) -> list[Evidence]:
        q = (select(EvidenceRow).where(self._scope())
             .order_by(EvidenceRow.created_at.desc(), EvidenceRow.id.desc()).limit(limit))
        if camera_id is not None:
            q = q.where(EvidenceRow.camera_id == camera_id)
        return [_from_row(r) for r in self.s.scalars(q)]

    def oldest_first(self) -> builtins.list[Evidence]:
        rows = self.s.scalars(select(EvidenceRow).where(self._scope())
                              .order_by(EvidenceRow.created_at, EvidenceRow.id))
        return [_from_row(r) for r in rows]

    def older_than(self, cutoff: datetime) -> builtins.list[Evidence]:
        rows = self.s.scalars(select(EvidenceRow).where(EvidenceRow.created_at < cutoff, self._scope())
                              .order_by(EvidenceRow.created_at, EvidenceRow.id))
        return [_from_row(r) for r in rows]

    def total_bytes(self) -> int:
        return int(self.s.scalar(select(func.coalesce(func.sum(EvidenceRow.bytes), 0)).where(self._scope())) or 0)

    def usage(self) -> builtins.list[EvidenceUsage]:
        q = select(
            EvidenceRow.camera_id, func.max(EvidenceRow.camera_name), EvidenceRow.kind, func.count(),
            func.sum(EvidenceRow.bytes), func.min(EvidenceRow.created_at), func.max(EvidenceRow.created_at),
        ).where(self._scope()).group_by(EvidenceRow.camera_id, EvidenceRow.kind)
        acc: dict[int | None, dict[str, Any]] = {}
        for cid, name, kind, count, size, oldest, newest in self.s.execute(q):
            a = acc.setdefault(cid, {"name": name or "", "snapshot": 0, "clip": 0, "bytes": 0,
                                     "oldest": None, "newest": None})
            a[kind] = a.get(kind, 0) + int(count)
            a["bytes"] += int(size or 0)
            first, last = _aware(oldest), _aware(newest)
            a["oldest"] = first if a["oldest"] is None or (first and first < a["oldest"]) else a["oldest"]
            a["newest"] = last if a["newest"] is None or (last and last > a["newest"]) else a["newest"]
        return [EvidenceUsage(cid, a["name"], a["snapshot"], a["clip"], a["bytes"], a["oldest"], a["newest"])
                for cid, a in sorted(acc.items(), key=lambda kv: (kv[1]["name"].lower(), kv[0] or 0))]

    def delete(self, evidence_id: int) -> None:
        write(self.s, delete(EvidenceRow).where(EvidenceRow.id == evidence_id, self._scope()))

    def paths(self) -> set[str]:
        return set(self.s.scalars(select(EvidenceRow.path).where(self._scope())))
