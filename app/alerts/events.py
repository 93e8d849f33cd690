"""Where the engine keeps alert events: the database, or memory (tests, benchmarks, no store)."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from app.domain.alerts import AlertEvent, EventState
from app.store.alert_events import AlertEventRepository

if TYPE_CHECKING:
    from app.store.uow import Store


class EventSink(Protocol):
    def save(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """Insert (``id is None``) or update each event in one transaction; return them with ids."""
        ...

    def acknowledge(self, event_id: int, by: str, at: datetime) -> AlertEvent | None: ...

    def firing(self) -> list[AlertEvent]: ...

    def recent(self, limit: int = 200) -> list[AlertEvent]: ...

    def get(self, event_id: int) -> AlertEvent | None: ...


class StoreEventSink:
    """Alert events in the station's database (``alert_events``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def save(self, events: list[AlertEvent]) -> list[AlertEvent]:
        with self._store.uow() as uow:
            repo = AlertEventRepository(uow.session)
            # A camera or rule removed since the engine evaluated: not a foreign key failure.
            events = repo.without_gone_references(events)
            out = [repo.add(e) if e.id is None else repo.update(e) for e in events]
            uow.commit()
        return out

    def acknowledge(self, event_id: int, by: str, at: datetime) -> AlertEvent | None:
        with self._store.uow() as uow:
            ev = AlertEventRepository(uow.session).acknowledge(event_id, by, at)
            uow.commit()
        return ev

    def firing(self) -> list[AlertEvent]:
        with self._store.uow() as uow:
            return AlertEventRepository(uow.session).firing()

    def recent(self, limit: int = 200) -> list[AlertEvent]:
        with self._store.uow() as uow:
            return AlertEventRepository(uow.session).recent(limit)

    def get(self, event_id: int) -> AlertEvent | None:
        with self._store.uow() as uow:
            return AlertEventRepository(uow.session).get(event_id)


class MemoryEventSink:
    """Alert events in memory (bounded to the newest ``keep``)."""

    def __init__(self, keep: int = 10_000):
        self._keep = keep
        self._ids = itertools.count(1)
        self._events: dict[int, AlertEvent] = {}
        self._lock = threading.Lock()

    def save(self, events: list[AlertEvent]) -> list[AlertEvent]:
        out = []
        with self._lock:
            for e in events:
                if e.id is None:
                    e = e.with_changes(id=next(self._ids))
                self._events[e.id] = e  # type: ignore[index]
                out.append(e)
            while len(self._events) > self._keep:
                del self._events[next(iter(self._events))]
        return out

    def acknowledge(self, event_id: int, by: str, at: datetime) -> AlertEvent | None:
        with self._lock:
            e = self._events.get(event_id)
            if e is None:
                return None
            if e.acknowledged_by is None:
                e = self._events[event_id] = e.with_changes(acknowledged_by=by, acknowledged_at=at)
            return e

    def firing(self) -> list[AlertEvent]:
        with self._lock:
            return [e for e in self._events.values() if e.state is EventState.FIRING]

    def recent(self, limit: int = 200) -> list[AlertEvent]:
        with self._lock:
            return sorted(self._events.values(), key=lambda e: e.id or 0, reverse=True)[:limit]

    def get(self, event_id: int) -> AlertEvent | None:
        return self._events.get(event_id)
