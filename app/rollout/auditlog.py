"""Audit writer: write operations and settings changes synchronously, reads aggregated.

A read-only call must not cost a database round trip, nor a row of its own: the router hands
it to :meth:`AuditLog.read` (one tuple appended to a buffer), and a background thread writes,
every ``flush_interval`` seconds, one **aggregate** entry per operation, path, outcome, actor,
reason and interval of ``aggregate_s`` seconds (and :meth:`AuditLog.close` writes the rest).
An aggregate is an ordinary entry of the operation whose ``detail`` holds ``calls`` (how many
calls it stands for, :attr:`~app.domain.audit.AuditEntry.calls`), ``first_at`` (its first
call; ``at`` is its last), ``keys`` (up to :data:`AGGREGATE_KEYS` of the keys asked, sorted)
and ``distinct_keys``, and ``latency_bins``: the calls' latencies as the bins of a DDSketch
mapping (relative accuracy 1 %, as the station's own sketches), so that the stage gate and the
CLI rebuild the same percentiles from it (:func:`app.rollout.metrics.latency_samples`); ``latency_ms`` is the mean.
:meth:`AuditLog.cut` ends every open aggregate (the router calls it when its settings change,
so no aggregate spans a stage change or a rollback). Failed and fallen-back reads keep one
entry each, with their exception.

A write operation is recorded at once, in its own transaction, right after it returns.

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
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from app.domain.audit import AuditEntry
from app.rollout.metrics import LATENCY_MAPPING as _MAPPING

if TYPE_CHECKING:
    from app.store.uow import Store

log = logging.getLogger(__name__)

SETTING_RETENTION_DAYS = "audit.retention_days"
SETTING_MAX_ROWS = "audit.max_rows"
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_ROWS = 100_000
PRUNE_INTERVAL = 600.0
UNAVAILABLE_REPORT_INTERVAL = 60.0
AGGREGATE_S = 1.0  # the interval of one aggregate of read-only calls
AGGREGATE_KEYS = 20  # keys named in an aggregate's detail (all are counted in distinct_keys)

#: one read-only call: (op, path, outcome, actor, reason, key, latency_ms, unix time)
Read = tuple[str, str, str, str, str, str, float, float]
_CUT = None  # in the reads buffer: the aggregates open before it are closed


class _Aggregate:
    __slots__ = ("bins", "calls", "first", "keys", "last", "total_ms")

    def __init__(self, at: float) -> None:
        self.calls = 0
        self.first = self.last = at
        self.total_ms = 0.0
        self.bins: dict[int, int] = {}
        self.keys: set[str] = set()

    def add(self, key: str, latency_ms: float, at: float) -> None:
        self.calls += 1
        self.first = min(self.first, at)
        self.last = max(self.last, at)
        self.total_ms += latency_ms
        k = _MAPPING.key(max(latency_ms, 1e-6))
        self.bins[k] = self.bins.get(k, 0) + 1
        self.keys.add(key)

    def entry(self, op: str, path: str, outcome: str, actor: str, reason: str) -> AuditEntry:
        keys = sorted(self.keys)
        return AuditEntry(
            op=op, outcome=outcome, key=keys[0] if len(keys) == 1 else "*", path=path,
            latency_ms=self.total_ms / self.calls, actor=actor, reason=reason,
            at=datetime.fromtimestamp(self.last, UTC),
            detail={"calls": self.calls, "first_at": datetime.fromtimestamp(self.first, UTC).isoformat(),
                    "keys": keys[:AGGREGATE_KEYS], "distinct_keys": len(keys),
                    "latency_bins": {str(k): n for k, n in sorted(self.bins.items())}})


def aggregate(reads: Iterable[Read | None], interval_s: float = AGGREGATE_S) -> list[AuditEntry]:
    """The aggregate entries of buffered reads (a ``None`` in them closes every open aggregate)."""
    out: list[AuditEntry] = []
    open_: dict[tuple[Any, ...], _Aggregate] = {}

    def close() -> None:
        for (op, path, outcome, actor, reason, _), agg in open_.items():
            out.append(agg.entry(op, path, outcome, actor, reason))
        open_.clear()

    for r in reads:
        if r is None:
            close()
            continue
        op, path, outcome, actor, reason, key, latency_ms, at = r
        group = (op, path, outcome, actor, reason, int(at // interval_s))
        agg = open_.get(group)
        if agg is None:
            agg = open_[group] = _Aggregate(at)
        agg.add(key, latency_ms, at)
    close()
    out.sort(key=lambda e: e.at or datetime.min.replace(tzinfo=UTC))
    return out


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
        self._reads: deque[Read | None] = deque()
        self.aggregated = 0  # read-only calls written as part of an aggregate (lifetime)
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

    def read(self, op: str, path: str, outcome: str, actor: str, reason: str, key: str,
             latency_ms: float, at: float) -> None:
        """Count one read-only call into the aggregates (see the module docstring)."""
        if len(self._reads) >= self._max:
            self._reads.popleft()
            self.dropped += 1
        self._reads.append((op, path, outcome, actor, reason, key, latency_ms, at))

    def cut(self) -> None:
        """Close the open aggregates: calls from now on are counted in new ones."""
        if self._reads and self._reads[-1] is not _CUT:
            self._reads.append(_CUT)

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
        reads: list[Read | None] = []
        while self._reads:
            try:
                reads.append(self._reads.popleft())
            except IndexError:
                break
        if reads:
            made = aggregate(reads)
            self.aggregated += sum(e.calls for e in made)
            batch.extend(made)
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
            if self._buf or self._reads:
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
        """Entries and read-only calls not written yet."""
        return len(self._buf) + sum(r is not None for r in self._reads)

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
