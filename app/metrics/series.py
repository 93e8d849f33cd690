"""One metric series: a numpy ring buffer of 1-second samples (the last hour by default)."""

from __future__ import annotations

import numpy as np

from app.domain.metrics import labels_text

DEFAULT_CAPACITY = 3600  # seconds


_WRAP = 0x7FFFFFFF  # seconds are stored as int32 modulo 2**31 (wraps every 68 years)


class RingSeries:
    """Samples at 1-second resolution; a later sample in the same second replaces the earlier one.

    A slot holds its second (int32) and its value (float32: 7 significant digits,
    plenty for charts and rollups; the newest value is also kept exactly in
    ``last_value``), 8 bytes a second: an hour of one series is 28 KB.

    Not locked by itself: :class:`~app.metrics.registry.MetricsRegistry` serialises access.
    """

    __slots__ = ("name", "labels", "_cap", "_ts", "_val", "last_ts", "last_value")

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...] = (), capacity: int = DEFAULT_CAPACITY):
        if capacity < 2:
            raise ValueError("a ring series needs at least 2 slots")
        self.name = name
        self.labels = labels
        self._cap = capacity
        self._ts = np.full(capacity, -1, dtype=np.int32)  # the second each slot holds (mod 2**31)
        self._val = np.full(capacity, np.nan, dtype=np.float32)
        self.last_ts: float | None = None
        self.last_value: float | None = None

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def nbytes(self) -> int:
        return self._ts.nbytes + self._val.nbytes

    def __repr__(self) -> str:
        return f"RingSeries({self.name}{{{labels_text(self.labels)}}}, last={self.last_value})"

    def record(self, value: float, ts: float) -> None:
        sec = int(ts)
        i = sec % self._cap
        self._ts[i] = sec & _WRAP
        self._val[i] = value
        if self.last_ts is None or ts >= self.last_ts:
            self.last_ts = ts
            self.last_value = float(value)

    def window(self, seconds: float, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples of the seconds ``(now - seconds, now]``: (unix seconds, values), oldest first (copies)."""
        n = max(0, min(int(seconds), self._cap))
        end = int(now)
        secs = np.arange(end - n + 1, end + 1, dtype=np.int64)
        idx = secs % self._cap
        mask = self._ts[idx] == (secs & _WRAP)
        return secs[mask].astype(np.float64), self._val[idx[mask]].astype(np.float64)

    def between(self, start: int, stop: int) -> np.ndarray:
        """Values of the whole seconds ``[start, stop)`` (at most one capacity), oldest first."""
        start = max(start, stop - self._cap)
        if stop <= start:
            return np.empty(0, dtype=np.float64)
        secs = np.arange(start, stop, dtype=np.int64)
        idx = secs % self._cap
        mask = self._ts[idx] == (secs & _WRAP)
        return np.asarray(self._val[idx[mask]], dtype=np.float64)
