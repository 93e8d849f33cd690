"""Restart arithmetic: exponential backoff with jitter, and a sliding-window start limit.

Pure functions of an injected time value, so the unit tests need no sleeps.
"""

from __future__ import annotations

import random
from collections import deque

from app.supervisor.model import RestartPolicy


def backoff_delay(policy: RestartPolicy, failures: int, rng: random.Random | None = None) -> float:
    """Delay before the restart that follows the ``failures``-th consecutive fast failure.

    failures=1 -> backoff_initial, then multiplied by backoff_factor each time, capped at
    backoff_max, then spread by +/- jitter (a fraction of the delay).
    """
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    base = policy.backoff_initial
    # Multiply step by step so huge failure counts cannot overflow.
    for _ in range(failures - 1):
        base *= policy.backoff_factor
        if base >= policy.backoff_max:
            base = policy.backoff_max
            break
    base = min(base, policy.backoff_max)
    if policy.jitter:
        r = (rng or random).uniform(-policy.jitter, policy.jitter)
        base *= 1.0 + r
    return max(0.0, base)


class StartRateLimiter:
    """At most ``limit`` starts within any ``window`` seconds (sliding window)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._starts: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._starts and now - self._starts[0] >= self.window:
            self._starts.popleft()

    def allowed(self, now: float) -> bool:
        self._prune(now)
        return len(self._starts) < self.limit

    def record(self, now: float) -> None:
        self._prune(now)
        self._starts.append(now)

    def count(self, now: float) -> int:
        self._prune(now)
        return len(self._starts)

    def reset(self) -> None:
        self._starts.clear()
