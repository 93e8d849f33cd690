"""Which station's rows a store reads and writes (docs/fleet.md, "What belongs to a station").

A :class:`~app.store.uow.Store` opened for a station (``open_store(url, station_id=...)``) puts
the station's id in every session's ``info``; the repositories read it from there and

* stamp it on every row they add (cameras, rules, alert events, audit, reports, evidence, rollups);
* read only the station's own rows, plus the rows that have no station yet (a database from
  before fleets, or written by a tool that named no station: the next station to open takes
  those over, ``app/store/ownership.py``);
* read the fleet-wide rules too (no station: the default rules), which every station
  evaluates on its own cameras.

A store opened without a station (migrations, ``edge-station fleet``) sees every row.

Settings are split by key: a key under ``fleet.`` (and the markers of the fleet-wide default
rules) is the fleet's, in ``settings``; every other key is the station's, in ``station_settings``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.orm import Session

SESSION_KEY = "edge_station.station_id"

FLEET_PREFIX = "fleet."
#: settings of the fleet that are not under ``fleet.``: which fleet-wide default rules were seeded
FLEET_KEYS = frozenset({"alerts.default_rules_seeded", "alerts.camera_offline_seeded", "evidence.rule_seeded"})


def is_fleet_key(key: str) -> bool:
    """Whether a setting is the fleet's (shared by every station on the database)."""
    return key.startswith(FLEET_PREFIX) or key in FLEET_KEYS


def station_of(session: Session) -> str | None:
    """The station a session reads and writes for (None: every station's rows)."""
    sid = session.info.get(SESSION_KEY)
    return sid if isinstance(sid, str) else None


def visible(column: Any, station_id: str | None) -> ColumnElement[bool]:
    """Rows of ``station_id`` and rows of no station yet (everything when ``station_id`` is None)."""
    if station_id is None:
        return true()
    return or_(column == station_id, column.is_(None))


def sees(row_station: str | None, station_id: str | None) -> bool:
    """:func:`visible` for a row already loaded."""
    return station_id is None or row_station is None or row_station == station_id


__all__ = ["FLEET_KEYS", "FLEET_PREFIX", "SESSION_KEY", "is_fleet_key", "sees", "station_of", "visible"]
