"""Read models of the cameras table: what the status reads need, without a query per call.

``list_status`` and ``camera_status`` are the station's hottest calls (the API, the window's
refresh, the canary) and all they need from the database is the cameras' names and ``active``
flags. A :class:`ReadModel` keeps that in memory and loads it again only after a commit that wrote
the cameras table:

* **this process's commits** are seen exactly: an engine listener marks a connection that ran an
  INSERT, UPDATE or DELETE on ``cameras`` (or SQL text it cannot read), and bumps the engine's
  :class:`CommitCounter` when that transaction commits and again when the connection is returned
  to the pool. The second bump matters: the first comes just before the database commits, so a
  read that raced it may have loaded the old rows under the new count; the second makes the next
  read load again. A read that follows a write in program order therefore always sees it.
* **other processes' commits** (a CLI import, another station on the same PostgreSQL) are seen
  when the station's change watch notices them and calls :meth:`CommitCounter.invalidate`
  (``app/station/watch.py``, once a second by default), as every other cache of the station.

Rolled-back transactions bump nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event

T = TypeVar("T")

WATCHED_TABLES = frozenset({"cameras"})
_DIRTY = "edge_station.cameras_written"
_COMMITTED = "edge_station.cameras_committed"
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "DROP", "ALTER", "CREATE")


def _writes_watched(statement: str, context: Any) -> bool:
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        if table is not None:
            return getattr(table, "name", None) in WATCHED_TABLES
    # SQL text (a migration, a hand-written statement): a write naming a watched table is a write to it
    head = statement.lstrip()[:8].upper()
    return head.startswith(_WRITE_WORDS) and any(t in statement.lower() for t in WATCHED_TABLES)


class CommitCounter:
    """How many times committed writes to the watched tables may have changed them (one per engine)."""

    def __init__(self, engine: Engine) -> None:
        self.value = 0
        self._lock = threading.Lock()
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committed)
        event.listen(engine, "rollback", self._rolled_back)
        event.listen(engine, "checkin", self._checked_in)

    def invalidate(self) -> None:
        """Something outside this process may have changed the tables: every snapshot loads again."""
        with self._lock:
            self.value += 1

    def _executed(self, conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
                  _many: bool) -> None:
        if _writes_watched(statement, context):
            conn.info[_DIRTY] = True

    def _committed(self, conn: Any) -> None:
        if conn.info.pop(_DIRTY, False):
            conn.info[_COMMITTED] = True
            self.invalidate()

    def _rolled_back(self, conn: Any) -> None:
        conn.info.pop(_DIRTY, None)

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        info = record.info
        info.pop(_DIRTY, None)  # returned without a commit: rolled back by the pool
        if info.pop(_COMMITTED, False):
            self.invalidate()


_counters: weakref.WeakKeyDictionary[Engine, CommitCounter] = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def commit_counter(engine: Engine) -> CommitCounter:
    """The engine's counter (made, and its listeners attached, on first use)."""
    with _counters_lock:
        counter = _counters.get(engine)
        if counter is None:
            counter = _counters[engine] = CommitCounter(engine)
        return counter


class ReadModel(Generic[T]):
    """``load()``'s value, loaded again only when the engine's :class:`CommitCounter` moved."""

    def __init__(self, engine: Engine, load: Callable[[], T]) -> None:
        self._counter = commit_counter(engine)
        self._load = load
        self._lock = threading.Lock()
        self._state: tuple[int, T] | None = None
        self.loads = 0  # how many times it read the database (for the tests and the benchmarks)

    def get(self) -> T:
        state = self._state
        seen = self._counter.value
        if state is not None and state[0] == seen:
            return state[1]
        with self._lock:
            seen = self._counter.value  # read before loading: a commit during the load moves it again
            state = self._state
            if state is not None and state[0] == seen:
                return state[1]
            value = self._load()
            self.loads += 1
            self._state = (seen, value)
            return value
