"""Per operation and path measurement over sliding windows (DDSketch for latency).

A call is counted under the path its decision chose (``legacy`` or ``domain``):

* ``calls``      calls routed to that path
* ``errors``     unexpected failures of that path itself (for the domain path: before
                 the fallback, or after a side effect)
* ``fallbacks``  domain calls that were served by legacy after a domain failure
* ``successes``  end-to-end successes after fallback: a result, or an
                 ``OperationError`` answer (a business answer is a success of the path)
* ``answers``    how many of the successes were ``OperationError`` answers
* latency        end-to-end milliseconds, in a DDSketch (1 % relative accuracy)

The window is a ring of ``bucket_s`` buckets; a summary merges the buckets that
overlap the last ``window_s`` seconds. Lifetime totals are kept too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from app.domain.audit import AuditEntry
from app.domain.operations import OPERATIONS

LEGACY = "legacy"
DOMAIN = "domain"
PATHS = (LEGACY, DOMAIN)


#: the mapping of DDSketch's default (relative accuracy 1 %): the audit's aggregates of read-only
#: calls store their latencies as its bins (app/rollout/auditlog.py)
LATENCY_MAPPING = LogarithmicMapping(relative_accuracy=0.01)


def latency_samples(entry: AuditEntry) -> Iterator[tuple[float, int]]:
    """(latency in ms, how many calls) of an audit entry: its own latency, or an aggregate's bins."""
    bins = entry.detail.get("latency_bins") if entry.detail else None
    if isinstance(bins, dict):
        for k, n in bins.items():
            try:
                yield LATENCY_MAPPING.value(int(k)), int(n)
            except (TypeError, ValueError):
                continue
    elif entry.latency_ms is not None:
        yield max(entry.latency_ms, 0.0), 1


_PENDING_MAX = 512  # latencies a cell holds before it adds them to its sketch


class _Cell:
    """Counters and a latency sketch. A routed call appends its latency to a list (a fraction of a
    DDSketch ``add``); the sketch takes them in when it is read, or every ``_PENDING_MAX`` calls.
    Both sides run under the metrics' lock (or on one thread, for the audit's figures)."""

    __slots__ = ("_pending", "_sketch", "answers", "calls", "errors", "fallbacks", "successes")

    def __init__(self, with_sketch: bool = True):
        self.calls = 0
        self.errors = 0
        self.fallbacks = 0
        self.successes = 0
        self.answers = 0
        self._sketch: DDSketch | None = DDSketch() if with_sketch else None
        self._pending: list[float] = []

    def add_latency(self, ms: float) -> None:
        pending = self._pending
        pending.append(ms)
        if len(pending) >= _PENDING_MAX:
            self._take_pending()

    def _take_pending(self) -> None:
        sk = self._sketch
        assert sk is not None, "a cell without a sketch records no latency"
        pending, self._pending = self._pending, []
        for ms in pending:
            sk.add(ms)

    @property
    def sketch(self) -> DDSketch | None:
        if self._pending:
            self._take_pending()
        return self._sketch

    @sketch.setter
    def sketch(self, value: DDSketch | None) -> None:
        if self._pending:
            self._take_pending()
        self._sketch = value


@dataclass(frozen=True)
class PathStats:
    calls: int = 0
    errors: int = 0
    fallbacks: int = 0
    successes: int = 0
    answers: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.calls if self.calls else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "errors": self.errors, "fallbacks": self.fallbacks,
            "successes": self.successes, "answers": self.answers,
            "error_rate": self.error_rate, "success_rate": self.success_rate,
            "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
        }


@dataclass(frozen=True)
class WindowStats:
    """Figures over one window: per operation and path, and per path over all operations."""

    window_s: float
    per_op: dict[str, dict[str, PathStats]] = field(default_factory=dict)
    total: dict[str, PathStats] = field(default_factory=dict)
    shadow_calls: int = 0
    shadow_mismatches: int = 0

    def path(self, name: str) -> PathStats:
        return self.total.get(name, PathStats())

    @property
    def domain_share(self) -> float | None:
        """Actual share of calls that the domain path was chosen for (None without calls)."""
        d, lg = self.path(DOMAIN).calls, self.path(LEGACY).calls
        return d / (d + lg) if d + lg else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "domain_share": self.domain_share,
            "shadow_calls": self.shadow_calls,
            "shadow_mismatches": self.shadow_mismatches,
            "total": {p: s.as_dict() for p, s in self.total.items()},
            "per_op": {op: {p: s.as_dict() for p, s in paths.items()} for op, paths in self.per_op.items()},
        }


def _quantiles(sk: DDSketch | None) -> tuple[float | None, float | None, float | None]:
    if sk is None or sk.count == 0:
        return None, None, None
    return tuple(sk.get_quantile_value(q) for q in (0.5, 0.95, 0.99))  # type: ignore[return-value]


def _stats(cells: Iterable[_Cell]) -> PathStats:
    calls = errors = fallbacks = successes = answers = 0
    sketch: DDSketch | None = None
    for c in cells:
        calls += c.calls
        errors += c.errors
        fallbacks += c.fallbacks
        successes += c.successes
        answers += c.answers
        if c.sketch is not None and c.sketch.count:
            if sketch is None:
                sketch = DDSketch()
            sketch.merge(c.sketch)
    p50, p95, p99 = _quantiles(sketch)
    return PathStats(calls, errors, fallbacks, successes, answers, p50, p95, p99)


def _merged(cells: Iterable[_Cell]) -> DDSketch | None:
    """The cells' sketches merged into a new one (``None`` when they hold no value)."""
    merged = None
    for c in cells:
        if c.sketch is not None and c.sketch.count:
            if merged is None:
                merged = DDSketch()
            merged.merge(c.sketch)
    return merged


def _p95_of(done: DDSketch | None, cur: _Cell | None) -> float | None:
    """The P95 of a merge of the completed buckets and the current bucket's cell, as :func:`_stats`
    would compute it (merging into an empty sketch copies it, so a lone sketch is read as is)."""
    last = cur.sketch if cur is not None and cur.sketch is not None and cur.sketch.count else None
    if done is None or last is None:
        one = done if last is None else last
        return one.get_quantile_value(0.95) if one is not None else None
    both = DDSketch()
    both.merge(done)
    both.merge(last)
    return both.get_quantile_value(0.95)


_ALL = "*"  # the per-path key of a merged bucket: (_ALL, path)


def _merge_into(out: _Cell, c: _Cell) -> None:
    out.calls += c.calls
    out.errors += c.errors
    out.fallbacks += c.fallbacks
    out.successes += c.successes
    out.answers += c.answers
    if c.sketch is not None and c.sketch.count:
        if out.sketch is None:
            out.sketch = DDSketch()
        out.sketch.merge(c.sketch)


def _add_bucket(dst: dict[tuple[str, str], _Cell], bucket: dict[tuple[str, str], _Cell]) -> None:
    """Merge one bucket into ``dst``, per key and into the per-path ``(_ALL, path)`` cells."""
    for (op, path), cell in bucket.items():
        for key in ((op, path), (_ALL, path)):
            out = dst.get(key)
            if out is None:
                out = dst[key] = _Cell(with_sketch=False)
            _merge_into(out, cell)


def _copy(cells: dict[tuple[str, str], _Cell]) -> dict[tuple[str, str], _Cell]:
    out = {}
    for key, c in cells.items():
        n = out[key] = _Cell(with_sketch=False)
        _merge_into(n, c)
    return out


class RolloutMetrics:
    """Thread-safe counters and latency sketches per (operation, path) over a sliding window."""

    def __init__(self, window_s: float = 300.0, bucket_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        if bucket_s <= 0 or window_s < bucket_s:
            raise ValueError(f"window_s ({window_s}) must be >= bucket_s ({bucket_s}) > 0")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._clock = clock
        self._keep = int(math.ceil(window_s / bucket_s)) + 1
        self._lock = threading.Lock()
        self._buckets: dict[int, dict[tuple[str, str], _Cell]] = {}
        self._shadow: dict[int, list[int]] = {}  # bucket -> [calls, mismatches]
        self._cur_idx: int | None = None
        self._cur: dict[tuple[str, str], _Cell] = {}
        # the completed buckets, merged as a two-stack sliding window (see _completed)
        self._done: tuple[list[tuple[int, dict[tuple[str, str], _Cell]]], dict[tuple[str, str], _Cell]] | None = None
        self._done_first = self._done_end = self._back_end = 0
        self._done_sketch: dict[tuple[str, str], DDSketch | None] = {}  # per key: the completed buckets' merge
        self.totals: dict[tuple[str, str], _Cell] = {}
        self.shadow_totals = [0, 0]
        self.observers: list[Callable[[str, str, float], None]] = []  # (op, path, latency_s) per call

    def _bucket(self, now: float) -> dict[tuple[str, str], _Cell]:
        idx = int(now // self.bucket_s)
        if idx != self._cur_idx:
            if self._cur_idx is not None and idx < self._cur_idx:
                self._done = None  # the clock went back: a completed bucket may change again
            self._cur_idx = idx
            cur = self._buckets.get(idx)
            if cur is None:
                cur = self._buckets[idx] = {}
                for old in [i for i in self._buckets if i <= idx - self._keep]:
                    del self._buckets[old]
                for old in [i for i in self._shadow if i <= idx - self._keep]:
                    del self._shadow[old]
            self._cur = cur
        return self._cur

    def record(self, op: str, path: str, latency_s: float, *, error: bool = False, fallback: bool = False,
               success: bool = True, answer: bool = False, counted: bool = True) -> None:
        """Count one routed call (see the module docstring for the meaning of each flag).

        ``counted=False`` (a forced call, a verify run): only the lifetime totals see it, never the
        window that health and the charts judge."""
        key = (op, path)
        now = self._clock()
        with self._lock:
            tot = self.totals.get(key)
            if tot is None:
                tot = self.totals[key] = _Cell(with_sketch=False)
            tot.calls += 1
            tot.errors += error
            tot.fallbacks += fallback
            tot.successes += success
            tot.answers += success and answer
            if counted:
                bucket = self._cur if int(now // self.bucket_s) == self._cur_idx else self._bucket(now)
                cell = bucket.get(key)
                if cell is None:
                    cell = bucket[key] = _Cell()
                cell.calls += 1
                cell.errors += error
                cell.fallbacks += fallback
                cell.successes += success
                cell.answers += success and answer
                cell.add_latency(latency_s * 1000.0)
        for observe in self.observers:
            observe(op, path, latency_s)

    def record_shadow(self, mismatch: bool) -> None:
        with self._lock:
            self._bucket(self._clock())
            assert self._cur_idx is not None
            slot = self._shadow.setdefault(self._cur_idx, [0, 0])
            slot[0] += 1
            self.shadow_totals[0] += 1
            if mismatch:
                slot[1] += 1
                self.shadow_totals[1] += 1

    def summary(self, window_s: float | None = None, now: float | None = None,
                ops: Iterable[str] | None = None) -> WindowStats:
        """Figures over the last ``window_s`` seconds (default: the metrics' window); ``ops`` = only
        these operations (one track's, for its charts; shadow figures stay station-wide)."""
        only = frozenset(ops) if ops is not None else None
        window_s = min(window_s or self.window_s, self.window_s)
        now = self._clock() if now is None else now
        first = int((now - window_s) // self.bucket_s) + 1
        last = int(now // self.bucket_s)
        with self._lock:
            done, done_paths = self._completed(first, last)
            groups: dict[tuple[str, str], list[_Cell]] = {
                key: list(cells) for key, cells in done.items() if only is None or key[0] in only}
            for key, cell in self._buckets.get(last, {}).items():
                if only is None or key[0] in only:
                    groups.setdefault(key, []).append(cell)
            sh = [v for i, v in self._shadow.items() if first <= i <= last]
            per_op: dict[str, dict[str, PathStats]] = {}
            by_path: dict[str, list[_Cell]] = {}
            for (op, path), cells in groups.items():
                per_op.setdefault(op, {})[path] = _stats(cells)
                if only is not None:
                    by_path.setdefault(path, []).extend(cells)
            if only is None:  # the merged completed buckets per path, and the current bucket's cells
                for path, cells in done_paths.items():
                    by_path.setdefault(path, []).extend(cells)
                for (_, path), cell in self._buckets.get(last, {}).items():
                    by_path.setdefault(path, []).append(cell)
            total = {p: _stats(cells) for p, cells in by_path.items()}
        return WindowStats(window_s, per_op, total, sum(v[0] for v in sh), sum(v[1] for v in sh))

    def health_window(self, window_s: float | None = None, min_samples: int = 1,
                      now: float | None = None) -> WindowStats:
        """The figures a health check reads, and no more: counters per operation and path, and the
        P95 only of the operations with ``min_samples`` calls on both paths (the only ones whose
        latency is compared); no per-path totals, no P50/P99. The same windows as :meth:`summary`
        (the merged completed buckets and the current one), so the same verdicts, at a fraction of
        the cost: a check merges sketches only where a latency check will read them."""
        window_s = min(window_s or self.window_s, self.window_s)
        now = self._clock() if now is None else now
        first = int((now - window_s) // self.bucket_s) + 1
        last = int(now // self.bucket_s)
        with self._lock:
            done, _ = self._completed(first, last)
            current = self._buckets.get(last, {})
            sh = [v for i, v in self._shadow.items() if first <= i <= last]
            counts: dict[tuple[str, str], tuple[int, int, int, int, int]] = {}
            for key in {*done, *current}:
                cells = [*done.get(key, ()), *((current[key],) if key in current else ())]
                counts[key] = (sum(c.calls for c in cells), sum(c.errors for c in cells),
                               sum(c.fallbacks for c in cells), sum(c.successes for c in cells),
                               sum(c.answers for c in cells))
            per_op: dict[str, dict[str, PathStats]] = {}
            for (op, path), (calls, errors, fallbacks, successes, answers) in counts.items():
                p95 = None
                if all(counts.get((op, p), (0,))[0] >= min_samples for p in PATHS):
                    key = (op, path)
                    if key not in self._done_sketch:  # the completed buckets merged once per bucket
                        self._done_sketch[key] = _merged(done.get(key, ()))
                    p95 = _p95_of(self._done_sketch[key], current.get(key))
                per_op.setdefault(op, {})[path] = PathStats(calls, errors, fallbacks, successes, answers, None, p95)
        return WindowStats(window_s, per_op, {}, sum(v[0] for v in sh), sum(v[1] for v in sh))

    def _completed(self, first: int, last: int) -> tuple[dict[tuple[str, str], list[_Cell]], dict[str, list[_Cell]]]:
        """The buckets ``first .. last - 1``, per key and per path, as at most two merged cells each.

        Completed buckets never change, so they are merged once, as a two-stack sliding window:
        the *front* holds suffix merges of the older buckets (one per start bucket), the *back* the
        merge of the newer ones. The window moving on adds one bucket to the back; when the front
        runs out it is rebuilt from the window's buckets (once per window length). Amortized, that
        is about three sketch merges per key and bucket instead of one per bucket and summary."""
        if self._done is None or first > self._done_end or first < self._done_first:
            self._rebuild_front(first, last)
        assert self._done is not None
        front, back = self._done
        for idx in range(self._back_end + 1, last):  # newly completed buckets join the back
            bucket = self._buckets.get(idx)
            if bucket:
                _add_bucket(back, bucket)
                self._done_sketch.clear()
        self._back_end = max(self._back_end, last - 1)
        while front and front[0][0] < first:
            front.pop(0)
            self._done_sketch.clear()
        groups: dict[tuple[str, str], list[_Cell]] = {}
        paths: dict[str, list[_Cell]] = {}
        for part in ((front[0][1] if front else {}), back):
            for (op, path), cell in part.items():
                (paths.setdefault(path, []) if op == _ALL else groups.setdefault((op, path), [])).append(cell)
        return groups, paths

    def _rebuild_front(self, first: int, last: int) -> None:
        front: list[tuple[int, dict[tuple[str, str], _Cell]]] = []
        running: dict[tuple[str, str], _Cell] = {}
        for idx in sorted((i for i in self._buckets if first <= i < last), reverse=True):
            running = _copy(running)
            _add_bucket(running, self._buckets[idx])
            front.append((idx, running))
        front.reverse()
        self._done = (front, {})
        self._done_sketch.clear()
        self._done_first, self._done_end = first, last - 1
        self._back_end = last - 1

    def lifetime(self) -> dict[str, dict[str, dict[str, Any]]]:
        """op -> path -> counters since start (both paths of an operation, not just the last one)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            for (op, path), c in self.totals.items():
                out.setdefault(op, {})[path] = {"calls": c.calls, "errors": c.errors, "fallbacks": c.fallbacks,
                                                "successes": c.successes, "answers": c.answers}
        return out

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._shadow.clear()
            self._cur_idx = None
            self._cur = {}
            self._done = None
            self._done_sketch.clear()
            self.totals.clear()
            self.shadow_totals = [0, 0]


# ---------------------------------------------------------------- from the audit log

#: audit op recorded for a sampled shadow comparison that disagreed
SHADOW_MISMATCH_OP = "rollout.shadow_mismatch"


def stats_from_audit(entries: Iterable[AuditEntry], window_s: float) -> WindowStats:
    """The same figures rebuilt from audit entries (used by the CLI and the stage gate).

    Outcomes written by the router: ``ok``, ``error:<code>`` (an answer),
    ``fallback_ok``/``fallback_error:<code>`` (served by legacy after a domain failure),
    ``fallback_failed`` (legacy failed too), ``failed`` (an unexpected failure reached the
    caller), ``failed_after_side_effect``.
    """
    cells: dict[tuple[str, str], _Cell] = {}
    mismatches = 0
    for e in entries:
        if e.op == SHADOW_MISMATCH_OP:
            mismatches += 1
            continue
        if e.op not in OPERATIONS or e.path not in PATHS:
            continue
        cell = cells.get((e.op, e.path))
        if cell is None:
            cell = cells[(e.op, e.path)] = _Cell()
        n = e.calls  # an aggregate of read-only calls stands for many
        cell.calls += n
        out = e.outcome
        if e.fallback or out.startswith("fallback"):
            cell.fallbacks += n
            cell.errors += n
        elif out.startswith("failed"):
            cell.errors += n
        if "failed" not in out:
            cell.successes += n
            if "error:" in out:
                cell.answers += n
        for value, weight in latency_samples(e):
            cell.sketch.add(value, weight)  # type: ignore[union-attr]
    per_op: dict[str, dict[str, PathStats]] = {}
    by_path: dict[str, list[_Cell]] = {}
    for (op, path), c in cells.items():
        per_op.setdefault(op, {})[path] = _stats([c])
        by_path.setdefault(path, []).append(c)
    total = {p: _stats(cs) for p, cs in by_path.items()}
    return WindowStats(window_s, per_op, total, 0, mismatches)
