"""The metrics registry: named series with labels, written by feeds, read by charts and the alert engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from app.domain.metrics import labels_key
from app.metrics.series import DEFAULT_CAPACITY, RingSeries

Labels = Mapping[str, object] | tuple[tuple[str, str], ...] | None
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


class MetricsError(Exception):
    """Base of the errors of ``app.metrics``."""


class BadSeries(MetricsError):
    """A series name, label or value the registry cannot store."""


@dataclass(frozen=True)
class SeriesInfo:
    name: str
    unit: str = ""
    help: str = ""


def series_key(name: str, labels: Labels = None) -> SeriesKey:
    return (name, labels_key(labels))  # type: ignore[arg-type]


def _check_key(key: SeriesKey) -> None:
    name, labels = key
    if not name or any(c in name for c in ",= "):
        raise BadSeries(f"bad series name {name!r}: it must be non-empty, without spaces, ',' or '='")
    for k, v in labels:
        if not k or any(c in k + v for c in ",="):
            raise BadSeries(f"bad label {k}={v!r} on series {name!r}: labels may not contain ',' or '='")


class MetricsRegistry:
    """Thread-safe store of 1-second ring series (the last ``capacity`` seconds of each).

    Writers: the feeds (supervisor thread, sampler thread). Readers: the alert
    engine (``latest`` on every tick), charts (``window`` at 2-10 Hz), the
    rollup (``between`` once a minute). Timestamps are unix seconds.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.time):
        self._cap = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[SeriesKey, RingSeries] = {}
        self._info: dict[str, SeriesInfo] = {}
        # Hot path for the engine: key -> (ts, value), replaced as a whole (readers need no lock).
        self._latest: dict[SeriesKey, tuple[float, float]] = {}
        self._since: dict[SeriesKey, float] = {}  # key -> when its latest value was first written
        self.writes = 0

    @property
    def capacity(self) -> int:
        return self._cap

    def now(self) -> float:
        return self._clock()

    # -- description ---------------------------------------------------------------
    def register_series(self, name: str, *, unit: str = "", help: str = "") -> SeriesInfo:
        """Describe a series name (unit, help) for charts and exposition; idempotent."""
        _check_key((name, ()))
        info = SeriesInfo(name, unit, help)
        self._info[name] = info
        return info

    def info(self, name: str) -> SeriesInfo:
        return self._info.get(name) or SeriesInfo(name)

    # -- writing ---------------------------------------------------------------------
    def record(self, name: str, value: float, labels: Labels = None, ts: float | None = None) -> None:
        self.record_key(series_key(name, labels), value, ts)

    def record_key(self, key: SeriesKey, value: float, ts: float | None = None) -> None:
        v = float(value)
        if ts is None:
            ts = self._clock()
        with self._lock:
            s = self._series.get(key)
            if s is None:
                _check_key(key)
                s = self._series[key] = RingSeries(key[0], key[1], self._cap)
            s.record(v, ts)
            if s.last_ts == ts:
                prev = self._latest.get(key)
                if prev is None or prev[1] != v:
                    self._since[key] = ts
                self._latest[key] = (ts, v)
            self.writes += 1

    def forget(self, **labels: object) -> int:
        """Drop every series whose labels include all of ``labels`` (e.g. ``camera=3`` for a deleted camera)."""
        want = set(labels_key(labels))
        with self._lock:
            gone = [k for k in self._series if want <= set(k[1])]
            for k in gone:
                del self._series[k]
                self._latest.pop(k, None)
                self._since.pop(k, None)
        return len(gone)

    # -- reading ---------------------------------------------------------------------
    def series(self, name: str, labels: Labels = None) -> RingSeries | None:
        """The live series object (read it through the registry's methods for thread safety)."""
        return self._series.get(series_key(name, labels))

    def latest_sample(self, key: SeriesKey) -> tuple[float, float] | None:
        """``(ts, value)`` of the newest sample of ``key`` — lock-free, for the engine's per-tick reads."""
        return self._latest.get(key)

    def value_since(self, key: SeriesKey) -> float | None:
        """When the series took its current value (the first of the run of equal latest samples)."""
        return self._since.get(key)

    def latest(
        self, name: str, labels: Labels = None, *, max_age: float | None = None, now: float | None = None
    ) -> float | None:
        """The newest value, or ``None`` when there is none (or it is older than ``max_age`` seconds)."""
        sample = self._latest.get(series_key(name, labels))
        if sample is None:
            return None
        if max_age is not None:
            if now is None:
                now = self._clock()
            if now - sample[0] > max_age:
                return None
        return sample[1]

    def window(
        self, name: str, labels: Labels = None, seconds: float = 60.0, now: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(unix seconds, values) of the last ``seconds``; empty arrays for an unknown series."""
        key = series_key(name, labels)
        if now is None:
            now = self._clock()
        with self._lock:
            s = self._series.get(key)
            if s is None:
                return np.empty(0), np.empty(0)
            return s.window(seconds, now)

    def between(self, key: SeriesKey, start: int, stop: int) -> np.ndarray:
        with self._lock:
            s = self._series.get(key)
            return s.between(start, stop) if s is not None else np.empty(0)

    def keys(self, name: str | None = None) -> list[SeriesKey]:
        with self._lock:
            ks = list(self._series)
        return sorted(k for k in ks if name is None or k[0] == name)

    def nbytes(self) -> int:
        """Memory held by the ring buffers."""
        with self._lock:
            return sum(s.nbytes for s in self._series.values())

    def names(self) -> list[str]:
        with self._lock:
            return sorted({k[0] for k in self._series})

    def label_values(self, name: str, label: str) -> list[str]:
        vals = {dict(k[1]).get(label) for k in self.keys(name)}
        vals.discard(None)
        return sorted(vals)  # type: ignore[arg-type]
