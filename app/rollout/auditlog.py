"""Audit writer: write operations and settings changes synchronously, reads buffered.

A read-only call must not cost a database round trip, so its entry goes into an
in-memory buffer that a background thread writes in one transaction every
``flush_interval`` seconds (and :meth:`AuditLog.close` writes the rest). A write
operation is recorded at once, in its own transaction, right after it returns.

One entry that cannot be written (text that is not valid UTF-8, a detail that
does not serialize) must not block the rest: when a batch fails, its entries are
written one by one; an entry that fails on its own for a reason other than the
database being unavailable is set aside (kept in :attr:`AuditLog.set_aside`, said
once in the station log with its content escaped) and the others are written.
When the database itself is unavailable (locked, disk full) the entries stay
buffered for the next flush.

Retention: the flusher also prunes the log every ``prune_interval`` seconds, by age
(setting ``audit.retention_days``, default 30) and by size (``audit.max_rows``,
default 100,000 rows, the newest kept), as the metric rollups are pruned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from app.domain.audit import AuditEntry

if TYPE_CHECKING:
    from app.store.uow import Store

log = logging.getLogger(__name__)

SETTING_RETENTION_DAYS = "audit.retention_days"
SETTING_MAX_ROWS = "audit.max_rows"
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_ROWS = 100_000
PRUNE_INTERVAL = 600.0
UNAVAILABLE_REPORT_INTERVAL = 60.0


def _positive(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        n = float(value)
    except ValueError:
        return default
    return n if n > 0 and n == n and n != float("inf") else default


class AuditLog:
    def __init__(self, store: Store, *, flush_interval: float = 1.0, max_buffer: int = 100_000, background: bool = True,
                 prune_interval: float = PRUNE_INTERVAL):
        self._store = store
        self._prune_interval = prune_interval
        self._next_prune = 0.0  # the first pass soon after start
        self.pruned_total = 0
        self._last_unavailable = float("-inf")
        self._buf: deque[AuditEntry | Callable[[], AuditEntry]] = deque()
        self._max = max_buffer
        self.dropped = 0
        self.set_aside: deque[tuple[AuditEntry | None, str]] = deque(maxlen=1000)
        self.set_aside_total = 0
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
        """Write what is buffered; returns how many entries were written."""
        batch: list[AuditEntry] = []
        while self._buf:
            try:
                item = self._buf.popleft()
            except IndexError:
                break
            if isinstance(item, AuditEntry):
                batch.append(item)
                continue
            try:
                batch.append(item())
            except Exception as e:  # noqa: BLE001 - the maker's bug costs one entry, not the batch
                self._set_aside(None, f"making the entry failed: {type(e).__name__}: {e}")
        try:
            self.write(batch)
            return len(batch)
        except OperationalError as e:  # the database is unavailable: keep everything for later
            now = time.monotonic()
            if now - self._last_unavailable >= UNAVAILABLE_REPORT_INTERVAL:  # once a minute, not per flush
                self._last_unavailable = now
                log.warning("writing %d audit entries failed (%s); keeping them for the next flush",
                            len(batch), _one_line(e))
            self._buf.extendleft(reversed(batch))
            return 0
        except Exception:  # noqa: BLE001 - find the entry (or entries) that cannot be written
            pass
        written = 0
        keep: list[AuditEntry] = []
        for entry in batch:
            try:
                self.write([entry])
                written += 1
            except OperationalError:
                keep.append(entry)
            except Exception as e:  # noqa: BLE001
                self._set_aside(entry, f"{type(e).__name__}: {_one_line(e)}")
        if keep:
            self._buf.extendleft(reversed(keep))
        return written

    def _set_aside(self, entry: AuditEntry | None, why: str) -> None:
        self.set_aside.append((entry, why))
        self.set_aside_total += 1
        shown = ascii(entry)[:500] if entry is not None else "(no entry)"
        log.warning("an audit entry cannot be written and was set aside (%s): %s", why[:300], shown)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._buf:
                self.flush()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self._prune_interval
                try:
                    self.prune()
                except Exception as e:  # noqa: BLE001 - retried at the next interval
                    log.warning("pruning the audit log failed (%s); retrying in %g s", _one_line(e),
                                self._prune_interval)

    def retention(self) -> tuple[float, int]:
        """(days, rows) from the settings, defaults for missing or unusable values."""
        with self._store.uow() as uow:
            days = _positive(uow.settings.get(SETTING_RETENTION_DAYS), DEFAULT_RETENTION_DAYS)
            rows = int(_positive(uow.settings.get(SETTING_MAX_ROWS), DEFAULT_MAX_ROWS))
        return days, rows

    def prune(self, now: datetime | None = None) -> int:
        """Delete entries past the retention (age, then size); returns how many."""
        days, rows = self.retention()
        now = now or datetime.now(UTC)
        with self._write_lock, self._store.uow() as uow:
            n = uow.audit.prune(now - timedelta(days=days), rows)
            uow.commit()
        if n:
            self.pruned_total += n
            log.info("audit log: %d entries past the retention (%g days, %d rows) deleted", n, days, rows)
        return n

    @property
    def pending(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        """Stop the flusher and write what is left (a bad entry is set aside, not a reason to lose the rest)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


def _one_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e)
    return " ".join(text.split())[:300]
