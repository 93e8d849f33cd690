"""Audit writer: write operations and settings changes synchronously, reads buffered.

A read-only call must not cost a database round trip, so its entry goes into an
in-memory buffer that a background thread writes in one transaction every
``flush_interval`` seconds (and :meth:`AuditLog.close` writes the rest). A write
operation is recorded at once, in its own transaction, right after it returns.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from app.domain.audit import AuditEntry

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, store, *, flush_interval: float = 1.0, max_buffer: int = 100_000, background: bool = True):
        self._store = store
        self._buf: deque[AuditEntry | Callable[[], AuditEntry]] = deque()
        self._max = max_buffer
        self.dropped = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = flush_interval
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="rollout-audit", daemon=True)
            self._thread.start()

    def record(self, entry: AuditEntry | Callable[[], AuditEntry]) -> None:
        """Buffer one entry, or a function that makes it (made by the flusher, off the call path)."""
        if len(self._buf) >= self._max:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(entry)

    def write(self, entries: Iterable[AuditEntry]) -> None:
        """Write entries now, in one transaction."""
        entries = list(entries)
        if not entries:
            return
        with self._write_lock, self._store.uow() as uow:
            uow.audit.add_many(entries)
            uow.commit()

    def flush(self) -> int:
        batch: list[AuditEntry] = []
        while self._buf:
            try:
                item = self._buf.popleft()
            except IndexError:
                break
            batch.append(item if isinstance(item, AuditEntry) else item())
        try:
            self.write(batch)
        except Exception:
            log.exception("writing %d audit entries failed; keeping them for the next flush", len(batch))
            self._buf.extendleft(reversed(batch))
            return 0
        return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._buf:
                self.flush()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
