"""One typed event emitter for the station, the supervisor, the alert engine and the router.

A part that tells others about changes owns an ``Emitter[EventType]``; a listener calls
``subscribe(callback)`` and keeps the returned function to unsubscribe. ``emit`` calls every
listener in the order they subscribed, outside any lock of the emitter, so a listener may
read the emitting part (or unsubscribe itself) without deadlock. A listener that raises is
logged and skipped: a broken view never breaks the station.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

EventT = TypeVar("EventT")

log = logging.getLogger(__name__)


class Emitter(Generic[EventT]):
    """Subscribe / unsubscribe / emit, thread-safe; ``name`` appears in the log of a failing listener."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._listeners: tuple[Callable[[EventT], None], ...] = ()

    def subscribe(self, callback: Callable[[EventT], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns the function that stops it."""
        with self._lock:
            self._listeners = (*self._listeners, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(cb for cb in self._listeners if cb is not callback)

        return unsubscribe

    def emit(self, event: EventT) -> None:
        for callback in self._listeners:  # a snapshot: the tuple is replaced, never changed
            try:
                callback(event)
            except Exception:
                log.exception("a %s listener (%r) failed on %r", self.name, callback, event)

    def __len__(self) -> int:
        return len(self._listeners)
