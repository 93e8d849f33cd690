"""The fleet registry: the ``stations`` table (who shares this database, and are they alive).

Every time written or compared here is the database server's clock (PostgreSQL's
``clock_timestamp()``, SQLite's ``'now'``), never the station's, so a station with a skewed
clock neither looks alive nor dead because of it; its own clock is stored beside the
heartbeat only so that the skew can be reported. A SQLite database is a fleet of one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from app.domain.fleet import (
    DEFAULT_GONE_AFTER,
    DEFAULT_HEARTBEAT_INTERVAL,
    StationInfo,
    StationNameTaken,
    StationReport,
    StationState,
    liveness,
    may_take_over,
    station_key,
)
from app.store.models import SettingRow, StationRow
from app.store.uow import Store

log = logging.getLogger("edge_station.fleet")

stations: Table = StationRow.__table__  # type: ignore[assignment]
_settings: Table = SettingRow.__table__  # type: ignore[assignment]

#: the fleet-wide settings (one database, one threshold for every reader)
SETTING_GONE_AFTER = "fleet.gone_after"
SETTING_HEARTBEAT_INTERVAL = "fleet.heartbeat_interval"

_CLAIM_ATTEMPTS = 3  # two stations claiming one name at one instant: the loser retries and is refused


def aware(dt: datetime | str | None) -> datetime | None:
    """A UTC-aware datetime (SQLite hands back naive ones, or text for an expression's result)."""
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def server_now_expr(conn: Connection) -> ColumnElement[Any]:
    """The database server's current time as an SQL expression (not the transaction's start)."""
    if conn.dialect.name == "postgresql":
        return func.clock_timestamp()
    return func.strftime("%Y-%m-%d %H:%M:%f", "now")


def server_now(conn: Connection) -> datetime:
    value = aware(conn.execute(select(server_now_expr(conn))).scalar_one())
    assert value is not None
    return value


def _info(row: Any) -> StationInfo:
    m = row._mapping
    return StationInfo(
        id=m["id"], name=m["name"], host=m["host"], pid=m["pid"], version=m["version"],
        state=StationState(m["state"]), started_at=aware(m["started_at"]),  # type: ignore[arg-type]
        heartbeat_at=aware(m["heartbeat_at"]),  # type: ignore[arg-type]
        station_clock_at=aware(m["station_clock_at"]), stopped_at=aware(m["stopped_at"]),
        cameras_up=int(m["cameras_up"]), cameras_total=int(m["cameras_total"]), stages=dict(m["stages"] or {}),
        health=m["health"], problems=tuple(m["problems"] or ()), replaced_by=m["replaced_by"],
        api=m["api_address"] or "",
    )


@dataclass(frozen=True)
class Claim:
    """The outcome of registering at start: this station's row, and the station whose name it took over."""

    station: StationInfo
    took_over: StationInfo | None = None
    renamed_from: str | None = None  # this station's previous name (a rename keeps the id)

    @property
    def message(self) -> str | None:
        """What the station says about its registration beyond "registered", or None."""
        notes = []
        if self.renamed_from is not None:
            notes.append(f"station {self.station.id} renamed from {self.renamed_from!r} to {self.station.name!r}")
        o = self.took_over
        if o is not None:
            why = "it stopped" if o.state is StationState.STOPPED else "its heartbeat stopped"
            notes.append(f"took over the name {self.station.name!r} from station {o.id} (last heartbeat "
                         f"{o.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC on host {o.host or '?'}; {why}); that station "
                         f"is listed as {o.name}~{o.id[:8]} now")
        return "; ".join(notes) or None


@dataclass(frozen=True)
class Beat:
    """The outcome of one heartbeat: ``ok``, or why this station's row is not its own any more."""

    ok: bool
    problem: str | None = None


class StationRegistry:
    """Register, heartbeat, stop and list stations on one store.

    ``clock`` is the station's own wall clock (stored beside each heartbeat to report skew;
    tests skew it); ``now`` replaces the database server's clock in the gone decision (tests).
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] | None = None,
                 now: Callable[[], datetime] | None = None):
        import time

        self._store = store
        self._clock = clock or time.time
        self._now = now

    @property
    def engine(self) -> Any:
        return self._store.engine

    @property
    def store(self) -> Store:
        return self._store

    def _station_clock(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def now(self) -> datetime:
        """The time the gone decision is made at: the server's clock (or the injected one)."""
        if self._now is not None:
            return self._now()
        with self.engine.connect() as conn:
            return server_now(conn)

    # ------------------------------------------------------------ settings

    def timing(self) -> tuple[float, float]:
        """``(heartbeat_interval, gone_after)`` from the fleet settings (defaults 5 s and 20 s); a value
        that is not a number of seconds above 0 is logged and its default used."""
        import math

        with self.engine.connect() as conn:
            rows = dict(conn.execute(select(_settings.c.key, _settings.c.value).where(
                _settings.c.key.in_([SETTING_HEARTBEAT_INTERVAL, SETTING_GONE_AFTER]))).all())
        out = []
        for key, default in ((SETTING_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL),
                             (SETTING_GONE_AFTER, DEFAULT_GONE_AFTER)):
            v = rows.get(key)
            if v is None:
                out.append(default)
            elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
                out.append(float(v))
            else:
                log.warning("fleet setting %s=%r is not a number of seconds above 0: using %g s", key, v, default)
                out.append(default)
        return out[0], out[1]

    # ------------------------------------------------------------ a station's own row

    def claim(self, station_id: str, name: str, *, version: str, host: str, pid: int | None,
              gone_after: float, report: StationReport | None = None) -> Claim:
        """Register this station as running under ``name`` (its id is kept; a new name renames it).

        Another station holding the name (case-insensitively) refuses this one with
        :class:`StationNameTaken`, unless it stopped cleanly or its heartbeat is older than
        ``gone_after`` seconds (server time): then this station takes the name over, and the other
        is kept, renamed ``NAME~<its id>`` and marked replaced (nothing is deleted).
        """
        for attempt in range(_CLAIM_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return self._claim(conn, station_id, name, version=version, host=host, pid=pid,
                                       gone_after=gone_after, report=report or StationReport())
            except IntegrityError:
                if attempt == _CLAIM_ATTEMPTS - 1:
                    raise
                log.info("station name %r was claimed at the same moment by another station; looking again", name)
        raise AssertionError("unreachable")  # pragma: no cover

    def _claim(self, conn: Connection, station_id: str, name: str, *, version: str, host: str, pid: int | None,
               gone_after: float, report: StationReport) -> Claim:
        key = station_key(name)
        now = self._now() if self._now is not None else server_now(conn)
        mine_row = conn.execute(select(stations).where(stations.c.id == station_id)).first()
        other_row = conn.execute(select(stations).where(stations.c.name_key == key,
                                                        stations.c.id != station_id)).first()
        took_over = None
        if other_row is not None:
            other = _info(other_row)
            if not may_take_over(other, now, gone_after):
                age = other.age(now)
                raise StationNameTaken(
                    f"station name {name!r} is in use by station {other.id} on host {other.host or '?'} "
                    f"(last heartbeat {other.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, {age:.0f} s ago by the "
                    f"database's clock): give this station another name (--station NAME or $EDGE_STATION_NAME), "
                    f"or stop that one; a station whose heartbeat is older than {gone_after:g} s is taken over",
                    other)
            new_other = f"{other.name}~{other.id[:8]}"
            conn.execute(update(stations).where(stations.c.id == other.id).values(
                name=new_other, name_key=station_key(new_other), state=StationState.REPLACED.value,
                replaced_by=station_id))
            took_over = other
            log.info("station name %r: taking it over from station %s (state %s, last heartbeat %s UTC, %s); "
                        "it is listed as %r now", name, other.id, other.state.value,
                        f"{other.heartbeat_at:%Y-%m-%d %H:%M:%S}", liveness(other, now, gone_after).value, new_other)
        values = dict(
            name=name, name_key=key, host=host, pid=pid, version=version, state=StationState.RUNNING.value,
            started_at=server_now_expr(conn), heartbeat_at=server_now_expr(conn),
            station_clock_at=self._station_clock(), stopped_at=None, replaced_by=None,
            **_report_values(report),
        )
        renamed_from = None
        if mine_row is None:
            conn.execute(insert(stations).values(id=station_id, **values))
        else:
            old_name = mine_row._mapping["name"]
            if old_name != name:
                renamed_from = old_name
            conn.execute(update(stations).where(stations.c.id == station_id).values(**values))
        row = conn.execute(select(stations).where(stations.c.id == station_id)).one()
        return Claim(_info(row), took_over, renamed_from)

    def heartbeat(self, station_id: str, report: StationReport) -> Beat:
        """Write this station's status with the server's time; says so when its row is not its own."""
        with self.engine.begin() as conn:
            values = dict(heartbeat_at=server_now_expr(conn), station_clock_at=self._station_clock(),
                          **_report_values(report))
            n = conn.execute(update(stations).where(stations.c.id == station_id,
                                                    stations.c.state == StationState.RUNNING.value)
                             .values(**values)).rowcount
            if n == 1:
                return Beat(True)
            row = conn.execute(select(stations).where(stations.c.id == station_id)).first()
            if row is None:
                return Beat(False, f"station {station_id} is not registered any more (its row was removed)")
            info = _info(row)
            # Still heartbeat, so that the fleet sees this station is alive, under the name it has now.
            conn.execute(update(stations).where(stations.c.id == station_id).values(**values))
            if info.state is StationState.REPLACED:
                return Beat(False, f"this station's name was taken over by station {info.replaced_by} while its "
                                   f"heartbeat was late; it is listed as {info.name!r} now (restart it with "
                                   "another --station NAME)")
            return Beat(False, f"this station is marked {info.state.value} in the fleet registry")

    def mark_stopped(self, station_id: str) -> None:
        """A clean exit: the fleet shows this station as stopped, not gone."""
        with self.engine.begin() as conn:
            now = server_now_expr(conn)
            conn.execute(update(stations).where(stations.c.id == station_id,
                                                stations.c.state == StationState.RUNNING.value)
                         .values(state=StationState.STOPPED.value, stopped_at=now, heartbeat_at=now,
                                 station_clock_at=self._station_clock()))

    # ------------------------------------------------------------ the fleet

    def all(self) -> tuple[datetime, list[StationInfo]]:
        """``(now, stations)``: every station ordered by name, and the server time to judge them at."""
        with self.engine.connect() as conn:
            now = self._now() if self._now is not None else server_now(conn)
            rows = conn.execute(select(stations).order_by(stations.c.name_key)).all()
        return now, [_info(r) for r in rows]

    def population_ids(self) -> list[str]:
        """The ids a fleet rollout's share is taken over: every registered station but the replaced
        ones (app.domain.fleet_rollout)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(stations.c.id).where(
                stations.c.state != StationState.REPLACED.value)).scalars())

    def fleet_settings(self, prefix: str) -> dict[str, Any]:
        """The fleet-wide settings whose keys start with ``prefix`` (``fleet.rollout.``), one read."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(_settings.c.key, _settings.c.value).where(
                _settings.c.key.startswith(prefix, autoescape=True))).all())

    def get(self, station_id: str) -> StationInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(stations).where(stations.c.id == station_id)).first()
        return _info(row) if row is not None else None

    def by_name(self, name: str) -> StationInfo | None:
        """The station registered under ``name`` (compared as names are: case-insensitively)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(stations).where(stations.c.name_key == station_key(name))).first()
        return _info(row) if row is not None else None


def _report_values(report: StationReport) -> dict[str, Any]:
    return dict(cameras_up=int(report.cameras_up), cameras_total=int(report.cameras_total),
                stages=dict(report.stages), health=str(report.health)[:20],
                problems=[str(p)[:300] for p in report.problems[:10]], api_address=str(report.api)[:255])


__all__ = ["SETTING_GONE_AFTER", "SETTING_HEARTBEAT_INTERVAL", "Beat", "Claim", "StationRegistry", "server_now"]
