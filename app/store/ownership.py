"""What belongs to which station: taking over rows of no station, and moving a camera (docs/fleet.md).

Each statement here runs in one transaction: a move or a take-over is whole or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, delete, func, insert, select, update

from app.domain import name_key
from app.domain.alerts import EventState
from app.store.scope import is_fleet_key
from app.store.tables import (
    alert_events,
    alert_rules,
    audit_log,
    cameras,
    evidence,
    metric_rollups,
    rollout_reports,
    settings,
    station_settings,
)

log = logging.getLogger("edge_station.fleet")

#: tables whose rows of no station the first station to open takes over (rules are not here: a rule
#: of no station is fleet-wide, except one on a camera, which goes with its camera)
_TAKEN_OVER = (("cameras", cameras), ("alert events", alert_events), ("audit entries", audit_log),
               ("problem reports", rollout_reports), ("evidence files", evidence), ("rollups", metric_rollups))


@dataclass(frozen=True)
class TakeOver:
    """What a station took over from no station (a database from before fleets)."""

    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        parts = [f"{n} {what}" for what, n in self.counts.items() if n]
        return ", ".join(parts) if parts else "nothing"


def take_over_unowned(engine: Engine, station_id: str) -> TakeOver:
    """Give ``station_id`` every row of no station (and the settings that are not the fleet's).

    A database from before fleets (and rows a tool wrote naming no station) belongs to the first
    station that opens it: on a SQLite file, its only station. Rules of no station stay fleet-wide,
    except those on a camera taken over, which go with it.
    """
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for what, table in _TAKEN_OVER:
            n = conn.execute(update(table).where(table.c.station_id.is_(None))
                             .values(station_id=station_id)).rowcount or 0
            counts[what] = int(n)
        mine = select(cameras.c.id).where(cameras.c.station_id == station_id)
        counts["camera rules"] = int(conn.execute(
            update(alert_rules).where(alert_rules.c.station_id.is_(None), alert_rules.c.camera_id.in_(mine))
            .values(station_id=station_id)).rowcount or 0)
        rows = conn.execute(select(settings.c.key, settings.c.value, settings.c.updated_at)).all()
        own = [r for r in rows if not is_fleet_key(r.key)]
        if own:
            have = set(conn.scalars(select(station_settings.c.key)
                                    .where(station_settings.c.station_id == station_id)))
            fresh = [r for r in own if r.key not in have]
            if fresh:
                conn.execute(insert(station_settings), [
                    {"station_id": station_id, "key": r.key, "value": r.value, "updated_at": r.updated_at}
                    for r in fresh])
            conn.execute(delete(settings).where(settings.c.key.in_([r.key for r in own])))
        counts["settings"] = len(own)
    result = TakeOver(counts)
    if result.total:
        log.info("station %s took over what had no station yet: %s", station_id, result.describe())
    return result


class MoveError(Exception):
    """A camera cannot be moved; the message says why and what to do."""


@dataclass(frozen=True)
class Moved:
    camera_id: int
    camera_name: str
    from_station: str | None
    to_station: str
    rules: int
    resolved_alerts: int


def find_camera(engine: Engine, ref: str) -> tuple[int, str, str | None]:
    """(id, name, station id) of the camera ``ref`` names: its id, or its name case-insensitively."""
    with engine.connect() as conn:
        rows = conn.execute(select(cameras.c.id, cameras.c.name, cameras.c.station_id)).all()
    if ref.strip().isdigit():
        hit = [r for r in rows if r.id == int(ref)]
    else:
        key = name_key(ref)
        hit = [r for r in rows if name_key(r.name) == key]
    if not hit:
        raise MoveError(f"no camera {ref!r} in this database ('edge-station cameras list' shows them)")
    return hit[0].id, hit[0].name, hit[0].station_id


def move_camera(engine: Engine, camera_id: int, *, expected_from: str | None, to_station: str,
                why: str, actor: str, detail: dict[str, str] | None = None, at: datetime | None = None) -> Moved:
    """Give camera ``camera_id`` to ``to_station``, in one transaction, losing nothing.

    The camera keeps its id and every setting; its camera rules go with it; its alert events and
    evidence stay with the station that recorded them (the files are on that station's disk), and
    the ones still firing resolve there ("moved to ..."). ``expected_from`` guards a race: the move
    is refused when the camera changed hands since it was looked up. The old station's change watch
    sees the camera gone and stops its worker; the new one's starts it.
    """
    at = at or datetime.now(UTC)
    with engine.begin() as conn:
        owner_now = conn.execute(select(cameras.c.station_id, cameras.c.name)
                                 .where(cameras.c.id == camera_id).with_for_update()).first()
        if owner_now is None:
            raise MoveError(f"camera {camera_id} was removed meanwhile")
        if owner_now.station_id != expected_from:
            raise MoveError(f"camera {owner_now.name!r} changed station meanwhile; look again and retry")
        if owner_now.station_id == to_station:
            raise MoveError(f"camera {owner_now.name!r} is already on that station")
        conn.execute(update(cameras).where(cameras.c.id == camera_id)
                     .values(station_id=to_station, updated_at=at))
        rules = conn.execute(update(alert_rules).where(alert_rules.c.camera_id == camera_id)
                             .values(station_id=to_station, updated_at=at)).rowcount or 0
        resolved = conn.execute(
            update(alert_events)
            .where(and_(alert_events.c.camera_id == camera_id, alert_events.c.state == str(EventState.FIRING)))
            .values(state=str(EventState.RESOLVED), resolved_at=at,
                    message=func.coalesce(alert_events.c.message, "") + f"; resolved: {why}")).rowcount or 0
        entry = {"at": at, "op": "camera.move", "key": owner_now.name, "path": "", "outcome": "ok",
                 "fallback": False, "actor": actor, "reason": why[:80],
                 "detail": {**(detail or {}), "camera_id": camera_id, "rules": int(rules),
                            "resolved_alerts": int(resolved)}}
        # in the audit of both stations: the one it left and the one it joined
        conn.execute(insert(audit_log), [{**entry, "station_id": sid}
                                         for sid in dict.fromkeys((owner_now.station_id, to_station))])
    return Moved(camera_id, owner_now.name, owner_now.station_id, to_station, int(rules), int(resolved))


__all__ = ["MoveError", "Moved", "TakeOver", "find_camera", "move_camera", "take_over_unowned"]
