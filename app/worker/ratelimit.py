"""A frame-rate limiter that keeps a steady cadence despite arrival jitter."""

from __future__ import annotations

import math

__all__ = ["RateLimiter"]


class RateLimiter:
    """Accepts at most *rate* events per second on average.

    An event is accepted when it arrives no earlier than half an interval before
    its slot, so frames that arrive a little early (jitter) are not skipped and a
    30 fps source capped at 15 yields 15, not 10. After a pause the schedule
    restarts instead of letting a burst through. ``rate`` 0 accepts nothing;
    ``None`` or ``inf`` accepts everything.
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and (math.isnan(rate) or rate < 0):
            raise ValueError(f"rate must be >= 0, got {rate}")
        self.rate = rate
        self.interval = (
            0.0 if rate is None or math.isinf(rate) else (math.inf if rate == 0 else 1.0 / rate)
        )
        self._next = -math.inf

    def accept(self, now: float) -> bool:
        interval = self.interval
        if interval == 0.0:
            return True
        if interval == math.inf:
            return False
        if now < self._next - 0.5 * interval:
            return False
        nxt = self._next + interval
        self._next = nxt if nxt > now - interval else now + interval
        return True
