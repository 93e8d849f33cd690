"""The alert engine's writer: stores what a tick found, then announces it.

One tick hands the writer a :class:`WriteJob`: the events to store (one transaction, retried
three times) and the changes to announce once they are stored. Announcing is handing the
change to the dispatcher (webhook, command) when the rule notifies, then to the engine's
listeners (:class:`~app.domain.emitter.Emitter`). With ``async_writes`` the jobs run on a
thread of their own ("alert-events"), so a slow database delays announcements, never an
evaluation; without it they run on the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

from app.alerts.events import EventSink
from app.alerts.notify import Dispatcher
from app.domain.alerts import AlertChange, AlertEvent, EventState
from app.domain.emitter import Emitter
from app.domain.rules import Notify

log = logging.getLogger("app.alerts.engine")


class HeldEvent(Protocol):
    """The part of a rule instance the writer updates: its current event gets its database id."""

    event: AlertEvent | None
    event_key: int


@dataclass
class WriteJob:
    """What one tick hands the writer: events to store (with their instance and key), then
    changes to announce (with the key of their event, and the rule's notify when it notifies)."""

    saves: list[tuple[HeldEvent | None, int, AlertEvent]]
    changes: list[tuple[AlertChange, int | None, Notify | None]]


class EventWriter:
    """Stores the events of each job, then announces its changes (see the module)."""

    def __init__(self, events: EventSink, changes: Emitter[AlertChange], *, dispatcher: Dispatcher | None,
                 state_lock: threading.RLock, async_writes: bool = True) -> None:
        self._events = events
        self._changes = changes
        self._dispatcher = dispatcher
        self._state_lock = state_lock  # the engine's: instances get their events' ids under it
        self._async = async_writes
        self._db_ids: dict[int, int] = {}  # event key -> database id, while firing
        self._jobs: queue.SimpleQueue[WriteJob | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._writer_idle = threading.Condition(self._writer_lock)
        self._pending_jobs = 0

    def submit(self, job: WriteJob) -> None:
        if not self._async:
            self._write(job)
            return
        with self._writer_lock:
            self._pending_jobs += 1
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="alert-events", daemon=True)
                self._writer.start()
        self._jobs.put(job)
        backlog = self._jobs.qsize()
        if backlog and backlog % 1000 == 0:
            log.warning("alerts: %d batches of alert events waiting for the database", backlog)

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._write(job)
            except Exception:
                log.exception("alerts: writing/delivering alert events failed")
            finally:
                with self._writer_lock:
                    self._pending_jobs -= 1
                    self._writer_idle.notify_all()

    def _write(self, job: WriteJob) -> None:
        """Store the batch (one transaction), then announce its changes with the stored events."""
        saved_by_key: dict[int, AlertEvent] = {}
        if job.saves:
            events = []
            for _, key, ev in job.saves:
                if ev.id is None and key in self._db_ids:
                    ev = ev.with_changes(id=self._db_ids[key])  # resolve of an event stored meanwhile
                events.append(ev)
            saved = None
            for attempt in range(3):
                try:
                    saved = self._events.save(events)
                    break
                except Exception:
                    log.exception("alerts: cannot store %d alert event(s) (attempt %d)", len(events), attempt + 1)
                    if self._async:  # only the writer thread may wait for the database
                        time.sleep(0.2 * (attempt + 1))
            if saved is not None:
                with self._state_lock:
                    for (inst, key, _), ev in zip(job.saves, saved, strict=True):
                        saved_by_key[key] = ev
                        if ev.state is EventState.RESOLVED:
                            self._db_ids.pop(key, None)
                        else:
                            self._db_ids[key] = ev.id  # type: ignore[assignment]
                        if inst is not None and inst.event is not None and inst.event_key == key \
                                and inst.event.id is None:
                            inst.event = inst.event.with_changes(id=ev.id)
        for change, change_key, notify in job.changes:
            if change_key is not None:
                announced = saved_by_key.get(change_key) or change.event
                if announced is not None and announced.id is None and change_key in self._db_ids:
                    announced = announced.with_changes(id=self._db_ids[change_key])
                change = replace(change, event=announced)
            if notify is not None and self._dispatcher is not None and (notify.webhook_url or notify.command):
                self._dispatcher.submit(change, notify)
            self._changes.emit(change)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted job is stored and announced."""
        deadline = time.monotonic() + timeout
        with self._writer_lock:
            while self._pending_jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._writer_idle.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """End the writer thread (after the jobs already queued)."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._jobs.put(None)
            writer.join(timeout)
