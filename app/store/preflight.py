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

It never changes the database and never raises.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


def preflight(url: str, keys: Iterable[str] = (), *, station_id: str | None = None) -> Preflight:
    """Whether ``url``'s schema is already at this app's head, and the settings ``keys`` if so:
    those of ``station_id`` (``app/store/scope.py``) over those of the fleet and of no station yet."""
    path = sqlite_file(url)
    if path is None:
        return Preflight(False, "not a plain SQLite file")
    if not path.is_file():
        return Preflight(False, f"{path} does not exist yet")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as e:
        return Preflight(False, f"cannot open {path}: {e}")
    try:
        try:
            versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
        except sqlite3.Error as e:
            return Preflight(False, f"no schema version in {path}: {e}")
        if versions != [SCHEMA_HEAD]:
            return Preflight(False, f"schema {versions or 'none'} is not {SCHEMA_HEAD}")
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
                return Preflight(False, f"cannot read settings in {path}: {e}")
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
