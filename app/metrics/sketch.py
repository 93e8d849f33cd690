"""Windowed percentiles and counts over a sliding time window (DDSketch per time slice).

:class:`SlidingSketch` is shared with the rollout code (latency P50/P95/P99 per
operation and path). The window is cut into ``slices`` equal slices; each slice
has its own DDSketch and a read merges the slices still inside the window, so
the window slides in steps of ``window / slices`` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

from ddsketch import DDSketch


class SketchError(ValueError):
    """Bad parameters for a sliding sketch or counter."""


def _slice_params(window: float, slices: int) -> float:
    if not (isinstance(window, int | float) and math.isfinite(window) and window > 0):
        raise SketchError(f"window must be a positive number of seconds, not {window!r}")
    if not (isinstance(slices, int) and slices >= 1):
        raise SketchError(f"slices must be a positive integer, not {slices!r}")
    return float(window) / slices


class SlidingSketch:
    """Quantiles of the values added in the last ``window`` seconds (relative accuracy ``relative_accuracy``).

    ``clock`` gives seconds (monotonic by default); every method also takes an
    explicit ``at`` for tests and replays. Thread-safe.
    """

    def __init__(
        self,
        window: float = 300.0,
        *,
        slices: int = 10,
        relative_accuracy: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.window = float(window)
        self._slice_len = _slice_params(window, slices)
        self._n = slices
        self._acc = relative_accuracy
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: list[tuple[int, DDSketch] | None] = [None] * slices
        self._cache: tuple[int, int, DDSketch] | None = None  # (slice, version, merged)
        self._version = 0

    def _slice(self, at: float | None) -> int:
        return int((self._clock() if at is None else at) // self._slice_len)

    def add(self, value: float, at: float | None = None) -> None:
        cur = self._slice(at)
        i = cur % self._n
        with self._lock:
            slot = self._slots[i]
            if slot is None or slot[0] != cur:
                if slot is not None and slot[0] > cur:
                    return  # older than the window: ignore
                slot = (cur, DDSketch(self._acc))
                self._slots[i] = slot
            slot[1].add(float(value))
            self._version += 1

    def add_many(self, values: Iterable[float], at: float | None = None) -> None:
        for v in values:
            self.add(v, at)

    def merged(self, at: float | None = None) -> DDSketch:
        """One sketch holding the window's values (shared and cached: read it, do not add to it)."""
        cur = self._slice(at)
        with self._lock:
            if self._cache is not None and self._cache[0] == cur and self._cache[1] == self._version:
                return self._cache[2]
            out = DDSketch(self._acc)
            for slot in self._slots:
                if slot is not None and cur - self._n < slot[0] <= cur and slot[1].count:
                    out.merge(slot[1])
            self._cache = (cur, self._version, out)
            return out

    def quantile(self, q: float, at: float | None = None) -> float | None:
        """The ``q`` quantile (0..1) of the window, ``None`` when the window is empty."""
        if not 0 <= q <= 1:
            raise SketchError(f"quantile must be within 0..1, not {q!r}")
        s = self.merged(at)
        return s.get_quantile_value(q) if s.count else None

    def quantiles(self, qs: Iterable[float] = (0.5, 0.95, 0.99), at: float | None = None) -> dict[float, float | None]:
        s = self.merged(at)
        return {q: (s.get_quantile_value(q) if s.count else None) for q in qs}

    def count(self, at: float | None = None) -> int:
        return int(self.merged(at).count)

    def mean(self, at: float | None = None) -> float | None:
        s = self.merged(at)
        return s.avg if s.count else None

    def clear(self) -> None:
        with self._lock:
            self._slots = [None] * self._n
            self._cache = None
            self._version += 1


class SlidingCounter:
    """Sum of increments over the last ``window`` seconds, in ``slices`` steps (calls, errors, fallbacks)."""

    def __init__(self, window: float = 300.0, *, slices: int = 10, clock: Callable[[], float] = time.monotonic):
        self.window = float(window)
        self._slice_len = _slice_params(window, slices)
        self._n = slices
        self._clock = clock
        self._lock = threading.Lock()
        self._idx = [-1] * slices
        self._val = [0.0] * slices

    def add(self, amount: float = 1.0, at: float | None = None) -> None:
        cur = int((self._clock() if at is None else at) // self._slice_len)
        i = cur % self._n
        with self._lock:
            if self._idx[i] != cur:
                if self._idx[i] > cur:
                    return
                self._idx[i] = cur
                self._val[i] = 0.0
            self._val[i] += amount

    def total(self, at: float | None = None) -> float:
        cur = int((self._clock() if at is None else at) // self._slice_len)
        with self._lock:
            return sum(v for idx, v in zip(self._idx, self._val, strict=True) if cur - self._n < idx <= cur)
