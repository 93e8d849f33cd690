"""Is the database ready for the window? Answered with the standard library alone.

The migrations run before any window shows. Learning that nothing
needs doing through Alembic means importing SQLAlchemy and Alembic first
(about 0.3 s, most of the window's start-up). For a SQLite file this module
reads ``alembic_version`` and a few settings with :mod:`sqlite3`, read-only:

- the schema is this app's head: the window may show at once; the station
  opens (and checks again through Alembic) on a background thread;
- anything else (another database, no file yet, an older or newer schema, a
  locked or damaged file, a URL it does not parse): "not known to be ready",
  and the caller runs the real migration, which migrates or refuses with its
  own clear message, before the window shows.

:func:`read_cameras` reads the cameras of such a file the same way, so that the station
can show them (and its supervisor's states of them) while SQLAlchemy still loads: the
store's own read follows and is the one the station keeps.

It never changes the database and never raises.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from app.domain.camera import Camera

#: The newest revision in ``app/store/migrations/versions``.
#: ``tests/unit/test_preflight.py`` fails when a migration is added and this is not moved with it.
SCHEMA_HEAD = "0011_station_ownership"

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


@dataclass(frozen=True)
class Preflight:
    ready: bool  # the schema is known to be at SCHEMA_HEAD
    reason: str  # why not (empty when ready)
    settings: dict[str, Any] = field(default_factory=dict)  # the asked-for keys that are set


def sqlite_file(url: str) -> Path | None:
    """The file behind a plain SQLite URL; None for memory, other databases and URLs with options."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if not rest or rest == ":memory:" or any(c in rest for c in "?%#"):
                return None
            return Path(rest)
    return None


def _open_at_head(url: str) -> tuple[sqlite3.Connection | None, str]:
    """A read-only connection to ``url``'s SQLite file when its schema is SCHEMA_HEAD, else why not."""
    path = sqlite_file(url)
    if path is None:
        return None, "not a plain SQLite file"
    if not path.is_file():
        return None, f"{path} does not exist yet"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as e:
        return None, f"cannot open {path}: {e}"
    try:
        versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.Error as e:
        conn.close()
        return None, f"no schema version in {path}: {e}"
    if versions != [SCHEMA_HEAD]:
        conn.close()
        return None, f"schema {versions or 'none'} is not {SCHEMA_HEAD}"
    return conn, ""


def preflight(url: str, keys: Iterable[str] = (), *, station_id: str | None = None) -> Preflight:
    """Whether ``url``'s schema is already at this app's head, and the settings ``keys`` if so:
    those of ``station_id`` (``app/store/scope.py``) over those of the fleet and of no station yet."""
    conn, reason = _open_at_head(url)
    if conn is None:
        return Preflight(False, reason)
    try:
        wanted = list(keys)
        settings: dict[str, Any] = {}
        if wanted:
            marks = ",".join("?" * len(wanted))
            try:
                rows = conn.execute(f"SELECT key, value FROM settings WHERE key IN ({marks})", wanted).fetchall()
                if station_id is not None:
                    rows += conn.execute(f"SELECT key, value FROM station_settings WHERE station_id = ? "
                                         f"AND key IN ({marks})", [station_id, *wanted]).fetchall()
            except sqlite3.Error as e:
                return Preflight(False, f"cannot read settings in {sqlite_file(url)}: {e}")
            for key, raw in rows:
                try:
                    value = json.loads(raw) if isinstance(raw, str) else raw
                except ValueError:
                    continue  # unreadable value: as if unset (the station reports it when it opens)
                if value is not None:
                    settings[key] = value
        return Preflight(True, "", settings)
    finally:
        conn.close()


_CAMERA_COLUMNS = ("id, name, source, active, max_fps, loop, motion_enabled, motion_threshold, motion_warmup, "
                   "stall_timeout, location, tags")


def read_cameras(url: str, station_id: str | None = None) -> list[Camera] | None:
    """The cameras of ``url``'s SQLite file at this app's schema, in id order, as the store's
    repository reads them for ``station_id`` (its own and those of no station yet; every camera
    with None: ``app/store/scope.py``; a test holds the two reads equal); None when the file is
    not known to be at the head or a row cannot be read."""
    conn, _reason = _open_at_head(url)
    if conn is None:
        return None
    from app.domain.camera import Camera, MotionSettings

    try:
        if station_id is None:
            rows = conn.execute(f"SELECT {_CAMERA_COLUMNS} FROM cameras ORDER BY id").fetchall()
        else:
            rows = conn.execute(f"SELECT {_CAMERA_COLUMNS} FROM cameras WHERE station_id = ? OR station_id IS NULL "
                                "ORDER BY id", [station_id]).fetchall()
        out = []
        for (cid, name, source, active, max_fps, loop, m_enabled, m_threshold, m_warmup, stall, location,
             tags) in rows:
            tag_list = json.loads(tags) if isinstance(tags, str) else tags
            out.append(Camera(
                id=cid, name=name, source=source, active=bool(active),
                max_fps=None if max_fps is None else float(max_fps), loop=bool(loop),
                motion=MotionSettings(bool(m_enabled), float(m_threshold), int(m_warmup)),
                stall_timeout=float(stall), location=location, tags=tuple(tag_list or ()),
            ))
        return out
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        conn.close()
