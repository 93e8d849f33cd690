"""Noticing commits made by other connections and processes (a CLI import, say).

The fingerprint is a query over the tables a station caches (cameras, rules, settings: their row
counts and newest ``updated_at``). On SQLite it runs only after a commit: every commit writes the
database file or its WAL, so the files' identity, size and modification time are a first check
that costs no query. Most commits touch none of those tables (the fleet heartbeat every 5 s, the
minute's metric rollups, the audit): they cost that one small query, not a reload of the
cameras, rules and settings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("edge_station.station")

Fingerprint = tuple[Hashable, ...]


class DbFingerprint:
    """What changes whenever anyone commits to the tables a station caches (:func:`query_fingerprint`),
    asked again on SQLite only after the database's files changed."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._file = (str(engine.url.database) if engine.dialect.name == "sqlite"
                      and engine.url.database not in (None, "", ":memory:") else None)
        self._seen: Fingerprint | None = None  # the files' fingerprint at the last query
        self._last: Fingerprint = ()
        #: how many fingerprint queries ran (tests read it)
        self.queries = 0

    def __call__(self) -> Fingerprint:
        if self._file is not None:
            files = file_fingerprint(self._file)
            if files == self._seen:
                return self._last
            # the files first: a commit landing during the query shows in the next look
            self._seen = files
        self.queries += 1
        self._last = query_fingerprint(self._engine)
        return self._last


def file_fingerprint(db_file: str) -> Fingerprint:
    out: list[tuple[int, int, int] | None] = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(db_file + suffix)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def query_fingerprint(engine: Engine) -> Fingerprint:
    from sqlalchemy import text

    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT (SELECT count(*) FROM cameras), (SELECT max(updated_at) FROM cameras), "
            "(SELECT count(*) FROM alert_rules), (SELECT max(updated_at) FROM alert_rules), "
            "(SELECT max(updated_at) FROM settings), (SELECT max(updated_at) FROM station_settings)"
        )).one())


class ChangeWatch:
    """Polls ``fingerprint`` every ``interval`` seconds on a thread of its own and calls
    ``on_change`` when it differs from the last one. The baseline is taken by the caller
    (:meth:`start`'s ``baseline``) *before* it first loads what it caches, so a change that
    lands between that load and the first poll is not missed."""

    def __init__(self, fingerprint: Callable[[], Fingerprint], on_change: Callable[[], None], interval: float):
        self._fingerprint = fingerprint
        self._on_change = on_change
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, baseline: Fingerprint) -> ChangeWatch:
        self._thread = threading.Thread(target=self._run, args=(baseline,), name="station-db-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, last: Fingerprint) -> None:
        while not self._stop.wait(self._interval):
            try:
                version = self._fingerprint()
            except Exception:
                log.debug("database change poll failed", exc_info=True)
                continue
            if version != last:
                try:
                    self._on_change()
                except Exception:
                    log.exception("applying a database change failed")
            last = version
