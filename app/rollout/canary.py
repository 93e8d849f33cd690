"""Canary calls: routed (never forced) calls of the read-only operations at a set rate.

An edge station's own traffic is small (a few operations an hour), so a stage gate
that needs evidence would never be reached. Like a canary analysis' load tester, the
station may make calls itself: every ``60 / rollout.canary_rate`` seconds one call of
one read-only operation of the cameras track, cycling over the operations and the
current cameras, **through the router without force**, so the decision (latch, toggle,
percent) chooses the path exactly as for an operator's call. The calls are audited
with the actor ``canary``; they count as gate and health evidence ("N of the calls by
the canary"), on both paths (domain keys and legacy keys alike, for the latency
baseline). Writes are never made by the canary: evidence for the writes comes from
real calls and the scratch-station rehearsal.

The canary runs while the cameras track routes some keys to the domain path, and while it
is rolled back (latched: every canary call then goes to legacy, which is what the rollback
checklist judges legacy health on); a track at 0 % and not latched gets no canary call.
It never makes two calls at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from app.domain.errors import OperationError
from app.domain.operations import (
    READ_ONLY_OPERATIONS,
    TRACKS,
    CameraRef,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    StatsRequest,
)
from app.rollout.control import CANARY_ACTOR

if TYPE_CHECKING:
    from app.rollout.decision import Decision
    from app.rollout.router import Router

log = logging.getLogger(__name__)

#: the read-only operations the canary calls, in its order (each is on the cameras track)
CANARY_OPERATIONS: tuple[str, ...] = tuple(op for op in TRACKS["cameras"] if op in READ_ONLY_OPERATIONS)

_REQUESTS: dict[str, Callable[[int], Any]] = {
    "camera_status": CameraRef,
    "list_status": lambda cid: ListStatus(),
    "camera_logs": lambda cid: LogsRequest(cid, limit=20),
    "camera_snapshot": CameraRef,
    "probe_camera": lambda cid: ProbeRequest(cid, timeout=5.0),
    "camera_stats": lambda cid: StatsRequest(cid, window_s=30.0),
}
assert set(_REQUESTS) == set(CANARY_OPERATIONS)


class Canary:
    """Makes routed canary calls through ``router`` at ``router.settings.canary_rate`` calls/minute."""

    def __init__(self, router: Router, cameras: Callable[[], Sequence[int]]):
        self._router = router
        self._cameras = cameras
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.made = 0

    def active(self) -> bool:
        """While the cameras track routes keys to the domain path, or is rolled back (its calls then
        go to legacy: the evidence the rollback checklist's ``legacy_healthy`` is judged on)."""
        s = self._router.settings
        t = s.track("cameras")
        return s.canary_rate > 0 and (t.target_percent > 0 or t.latched)

    def step(self) -> tuple[str, Any] | None:
        """Make one canary call now (when active); returns ``(operation, decision)`` or None."""
        if not self.active():
            return None
        cams = list(self._cameras())
        if not cams:
            return None
        op = CANARY_OPERATIONS[self._n % len(CANARY_OPERATIONS)]
        cam = cams[(self._n // len(CANARY_OPERATIONS)) % len(cams)]
        self._n += 1
        d: Decision | None
        try:
            _, d = self._router.call_with_decision(op, _REQUESTS[op](cam), actor=CANARY_ACTOR)
        except OperationError:
            d = self._router.last_decision  # an answer (a stopped camera has no snapshot): still evidence
        except Exception:
            d = self._router.last_decision
            log.debug("canary call %s on camera %s failed", op, cam, exc_info=True)
        self.made += 1
        return op, d

    def _run(self) -> None:
        while not self._stop.is_set():
            rate = 0.0
            try:
                rate = float(self._router.settings.canary_rate)
                self.step()
            except Exception:
                log.exception("canary step failed")
            interval = 60.0 / rate if rate > 0 else 5.0
            self._stop.wait(min(max(interval, 0.1), 60.0))

    def start(self) -> Canary:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rollout-canary", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
