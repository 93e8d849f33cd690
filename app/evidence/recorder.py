"""Taking evidence: a snapshot when a camera alert fires and when it resolves, a clip when it fires,
and clips on an operator's request.

:class:`EvidenceRecorder` observes the alert engine (``engine.subscribe(recorder.on_alert)``)
and never blocks it: each piece of evidence is a job on a small pool. Every write first
checks the free-space floor; at the floor nothing is written, the station series
``evidence_blocked`` reads 1 (its rule alerts) and the failure is kept for the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from app.domain.alerts import AlertChange, ChangeKind
from app.domain.evidence import Evidence, EvidenceSettings
from app.evidence.store import DiskFloorReached, EvidenceStore


class EvidenceSource(Protocol):
    """Who takes the pictures: the supervisor asks the camera's running worker."""

    def request_evidence(self, camera_id: int, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]: ...

__all__ = ["EvidenceError", "EvidenceFeed", "EvidenceRecorder"]

log = logging.getLogger("edge_station.evidence")

SNAPSHOT_TIMEOUT = 5.0
RETENTION_INTERVAL = 60.0


class EvidenceError(Exception):
    """Evidence could not be taken (the message says which camera and why)."""


class EvidenceRecorder:
    def __init__(self, store: EvidenceStore, supervisor: EvidenceSource, *, settings: Callable[[], EvidenceSettings],
                 camera_name: Callable[[int], str | None] = lambda _cid: None,
                 on_change: Callable[[Evidence | None, str | None], None] | None = None,
                 workers: int = 3) -> None:
        self.store = store
        self.supervisor = supervisor
        self.settings = settings
        self.camera_name = camera_name
        self.on_change = on_change
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evidence")
        self._closed = False
        self._lock = threading.Lock()
        self.failures: OrderedDict[int, list[str]] = OrderedDict()  # event id -> why evidence is missing
        self.blocked: str | None = None  # the free-space problem while writing is stopped
        self.latencies: list[float] = []  # alert change -> snapshot on disk (s), the newest 100

    # -- the alert engine's observer -----------------------------------------------------

    def on_alert(self, change: AlertChange) -> Future[Any] | None:
        """Called for every alert change; queues evidence for camera alerts that fire or resolve."""
        if self._closed or change.camera_id is None or change.event is None or change.event.id is None:
            return None
        if change.kind not in (ChangeKind.FIRING, ChangeKind.RESOLVED):
            return None
        settings = self.settings()
        if not settings.enabled:
            return None
        moment = "fired" if change.kind is ChangeKind.FIRING else "resolved"
        t0 = time.monotonic()
        try:
            return self._pool.submit(self._for_alert, change.camera_id, change.event.id, moment, settings, t0)
        except RuntimeError:  # shut down meanwhile
            return None

    def _for_alert(self, camera_id: int, event_id: int, moment: str, settings: EvidenceSettings, t0: float) -> None:
        try:
            self.snapshot(camera_id, event_id=event_id, moment=moment, settings=settings)
            with self._lock:
                self.latencies = [*self.latencies[-99:], time.monotonic() - t0]
        except EvidenceError as e:
            self._failed(event_id, f"snapshot: {e}")
        if moment == "fired" and settings.clips:
            try:
                self.clip(camera_id, event_id=event_id, moment=moment, settings=settings)
            except EvidenceError as e:
                self._failed(event_id, f"clip: {e}")

    def _failed(self, event_id: int, why: str) -> None:
        log.warning("evidence for alert event %s: %s", event_id, why)
        with self._lock:
            self.failures.setdefault(event_id, []).append(why)
            while len(self.failures) > 500:
                self.failures.popitem(last=False)
        if self.on_change is not None:
            self.on_change(None, why)

    # -- taking evidence (blocking; any thread but the supervisor's) --------------------

    def snapshot(self, camera_id: int, *, event_id: int | None = None, moment: str = "manual",
                 settings: EvidenceSettings | None = None) -> Evidence:
        """A full-resolution JPEG of the camera's latest frame, stored and listed."""
        settings = settings or self.settings()
        self._budget(settings)
        dest = self.store.new_file(camera_id, "snapshot", moment, event_id, "jpg")
        answer = self._ask(camera_id, {"kind": "snapshot", "format": "jpeg", "dest": str(dest)}, SNAPSHOT_TIMEOUT)
        ev = Evidence(
            kind="snapshot", moment=moment, path="", bytes=0, created_at=_utc(answer.get("taken_at")),
            camera_id=camera_id, camera_name=self.camera_name(camera_id) or "", event_id=event_id,
            width=answer.get("width"), height=answer.get("height"), codec="jpeg",
        )
        return self._record(ev, dest)

    def clip(self, camera_id: int, *, event_id: int | None = None, moment: str = "manual",
             pre: float | None = None, post: float | None = None,
             settings: EvidenceSettings | None = None) -> Evidence:
        """Pre-roll + post-roll of the camera's stream as an MP4 (remuxed), stored and listed."""
        settings = settings or self.settings()
        pre = settings.preroll_s if pre is None else pre
        post = settings.postroll_s if post is None else post
        budget = self._budget(settings)
        dest = self.store.new_file(camera_id, "clip", moment, event_id, "mp4")
        answer = self._ask(camera_id, {"kind": "clip", "pre": pre, "post": post, "dest": str(dest),
                                       "max_bytes": int(budget)}, pre + post + 15.0)
        ev = Evidence(
            kind="clip", moment=moment, path="", bytes=0, created_at=datetime.now(UTC), camera_id=camera_id,
            camera_name=self.camera_name(camera_id) or "", event_id=event_id,
            duration=answer.get("duration"), preroll=answer.get("preroll"), codec=str(answer.get("codec") or ""),
            reencoded=bool(answer.get("reencoded")),
            note=_clip_note(answer),
        )
        return self._record(ev, dest)

    def _budget(self, settings: EvidenceSettings) -> int:
        try:
            budget = self.store.budget(settings)
        except DiskFloorReached as e:
            self.blocked = str(e)
            raise EvidenceError(str(e)) from None
        self.blocked = None
        return budget

    def _ask(self, camera_id: int, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        from app.domain.worker import EvidenceRequestError

        try:
            return self.supervisor.request_evidence(camera_id, request, timeout)
        except EvidenceRequestError as e:
            if "budget" in str(e):
                self.blocked = str(e)
            raise EvidenceError(str(e)) from None

    def _record(self, ev: Evidence, dest: Path) -> Evidence:
        try:
            saved = self.store.record(ev, dest)
        except Exception as e:
            raise EvidenceError(f"camera {ev.camera_id}: cannot list {dest.name}: {e}") from e
        if self.on_change is not None:
            self.on_change(saved, None)
        return saved

    # -- lifecycle -----------------------------------------------------------------------

    def failures_for(self, event_id: int) -> list[str]:
        with self._lock:
            return list(self.failures.get(event_id, ()))

    def close(self, wait: bool = True) -> None:
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)


class EvidenceFeed:
    """A sampler feed: the ``evidence_blocked`` station series (1 at the free-space floor) every
    tick, and retention every ``RETENTION_INTERVAL`` seconds."""

    def __init__(self, store: EvidenceStore, registry: Any, settings: Callable[[], EvidenceSettings],
                 recorder: EvidenceRecorder | None = None) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.recorder = recorder
        self._next_retention = 0.0
        registry.register_series("evidence_blocked", unit="bool",
                                 help="1 when evidence is not written: the disk is at its free-space floor")

    def poll(self, now: float) -> None:
        settings = self.settings()
        try:
            self.store.budget(settings)
            blocked = 0.0
        except DiskFloorReached as e:
            blocked = 1.0
            if self.recorder is not None:
                self.recorder.blocked = str(e)
        except OSError as e:
            log.warning("evidence: cannot read free space of %s: %s", self.store.root, e)
            return
        if not blocked and self.recorder is not None and self.recorder.blocked and "floor" in self.recorder.blocked:
            self.recorder.blocked = None
        self.registry.record_key(("evidence_blocked", ()), blocked, now)
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_INTERVAL
            try:
                self.store.enforce(settings, now)
            except Exception:
                log.exception("evidence retention failed")


def _utc(ts: Any) -> datetime:
    if isinstance(ts, int | float) and ts > 0:
        return datetime.fromtimestamp(ts, UTC)
    return datetime.now(UTC)


def _clip_note(answer: dict[str, Any]) -> str:
    parts = []
    if answer.get("reencoded"):
        parts.append("re-encoded (the source's codec cannot go into MP4)")
    if answer.get("note"):
        parts.append(str(answer["note"]))
    return "; ".join(parts)
