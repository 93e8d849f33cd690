"""Minute rollups: every completed minute of every series is written to ``metric_rollups``
(count, sum, min, max, last of its 1-second samples) in one transaction; rows older
than the retention (7 days) are pruned. ``rollup_history`` reads them back for the
24 h / 7 d charts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.domain.metrics import ROLLUP_RETENTION_SECONDS, RollupPoint
from app.metrics.registry import Labels, MetricsRegistry, series_key
from app.store.rollups import RollupRepository

if TYPE_CHECKING:
    from app.store.uow import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollupResult:
    minutes: int  # minutes rolled up by this tick
    points: int  # rows written
    pruned: int  # rows deleted
    seconds: float  # time the tick took


class Rollup:
    """Each tick (call it every second; it works only when a minute has completed) rolls up
    the completed minutes since the last run — at most the ring buffer's span — and prunes.

    ``store`` is an :class:`app.store.Store`; ``clock`` gives unix seconds.
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        store: Store,
        *,
        retention: float = ROLLUP_RETENTION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reg = registry
        self._store = store
        self._retention_min = int(retention // 60)
        self._clock = clock
        self._lock = threading.Lock()
        self._done_minute: int | None = None  # last minute rolled up
        self.last: RollupResult | None = None

    def tick(self, now: float | None = None) -> RollupResult | None:
        if now is None:
            now = self._clock()
        current = int(now // 60)  # the minute in progress
        with self._lock:
            if self._done_minute is None:
                # First run: start with the minute in progress (it may be partial: that is
                # what there is). Earlier minutes were stored by the previous run, if any.
                self._done_minute = current - 1
            if current - 1 <= self._done_minute:
                return None
            oldest = max(self._done_minute + 1, current - self._reg.capacity // 60)
            minutes = range(oldest, current)
            t0 = time.perf_counter()
            points: list[RollupPoint] = []
            for key in self._reg.keys():
                for m in minutes:
                    vals = self._reg.between(key, m * 60, (m + 1) * 60)
                    if vals.size == 0:
                        continue
                    points.append(
                        RollupPoint(
                            series=key[0], labels=key[1], minute=m, count=int(vals.size),
                            sum=float(vals.sum()), min=float(vals.min()), max=float(vals.max()),
                            last=float(vals[-1]),
                        )
                    )
            points = [p for p in points if math.isfinite(p.sum)]
            with self._store.uow() as uow:
                repo = RollupRepository(uow.session)
                written = repo.put_many(points)
                pruned = repo.prune(current - self._retention_min)
                uow.commit()
            self._done_minute = current - 1
            self.last = RollupResult(len(minutes), written, pruned, time.perf_counter() - t0)
            return self.last

    def history(
        self, name: str, labels: Labels = None, since: float = 0.0, until: float | None = None
    ) -> list[RollupPoint]:
        return rollup_history(self._store, name, labels, since, until)


def rollup_history(
    store: Store, name: str, labels: Labels = None, since: float = 0.0, until: float | None = None
) -> list[RollupPoint]:
    """Stored minutes of one series from unix time ``since`` (to ``until``), oldest first."""
    key = series_key(name, labels)
    with store.uow() as uow:
        return RollupRepository(uow.session).history(
            key[0], key[1], int(since // 60), None if until is None else int(math.ceil(until / 60))
        )


def history_arrays(points: list[RollupPoint]) -> dict[str, np.ndarray]:
    """Columns for a chart: ``t`` (minute start, unix s), ``mean``, ``min``, ``max``, ``last``, ``count``."""
    return {
        "t": np.fromiter((p.start for p in points), dtype=np.float64, count=len(points)),
        "mean": np.fromiter((p.mean for p in points), dtype=np.float64, count=len(points)),
        "min": np.fromiter((p.min for p in points), dtype=np.float64, count=len(points)),
        "max": np.fromiter((p.max for p in points), dtype=np.float64, count=len(points)),
        "last": np.fromiter((p.last for p in points), dtype=np.float64, count=len(points)),
        "count": np.fromiter((p.count for p in points), dtype=np.float64, count=len(points)),
    }
