"""Adapters that write series into a :class:`MetricsRegistry`.

Series names match the alert rule metrics (``app.domain.rules.METRICS``):
camera series carry the label ``camera=<id>``, station and rollout series
have no labels (per-operation rollout series carry ``op`` and ``path``).

Each feed has ``poll(now)``, called once a second by :class:`MetricsSampler`;
:class:`SupervisorFeed` also records every heartbeat as it arrives.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from app.metrics.registry import MetricsRegistry, series_key

log = logging.getLogger(__name__)

STALL_WINDOW = 3600.0


def camera_labels(camera_id: int) -> tuple[tuple[str, str], ...]:
    return (("camera", str(camera_id)),)


def _num(v: object) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return None


class Feed(Protocol):
    def poll(self, now: float) -> None: ...


# Worker states (app.supervisor.WorkerState values) as plain strings, so this module
# needs the supervisor only duck-typed.
_RUNNING = "running"
_STOPPED = "stopped"


class _CameraTrack:
    __slots__ = ("state", "source", "last_motion", "first_seen", "restarts", "incidents",
                 "stall_open", "hb_ts", "hb_dropped")

    def __init__(self, now: float):
        self.state: str = _STOPPED
        self.source: str | None = None
        self.last_motion: float | None = None
        self.first_seen: float | None = now
        self.restarts: int | None = None
        self.incidents: deque[float] = deque()
        self.stall_open = False
        self.hb_ts: float | None = None
        self.hb_dropped: int | None = None


class SupervisorFeed:
    """Per-camera series from supervisor events and a once-a-second status/stats poll.

    From heartbeats: ``fps``, ``dropped_rate``, ``motion``, ``motion_active``,
    ``last_frame_age``. From the poll: ``offline`` (1 unless the worker is
    running with its source up), ``no_motion_seconds``, ``restarts``,
    ``stall_rate`` (stalls and restarts in the last hour; a stall that ends in a
    restart counts once), ``cpu_percent``, ``rss_mb``, ``threads``.

    A camera whose worker is stopped on purpose is not *watched*: none of its
    series is written, so its rules see no data (the "camera offline" template
    treats that as OK). :meth:`watched_cameras` is what the alert engine
    evaluates "all cameras" rules over.
    """

    def __init__(self, supervisor: Any, registry: MetricsRegistry, *, clock: Callable[[], float] = time.time):
        self._sup = supervisor
        self._reg = registry
        self._clock = clock
        self._lock = threading.Lock()
        self._cams: dict[int, _CameraTrack] = {}
        self._unsubscribe: Callable[[], None] | None = None
        for name, unit, text in (
            ("offline", "bool", "1 when the source is down or the worker is not running"),
            ("fps", "fps", "analysed frames per second"),
            ("dropped_rate", "fps", "frames dropped per second"),
            ("motion", "ratio", "peak motion score of the last second"),
            ("motion_active", "bool", "1 when motion was seen in the last second"),
            ("no_motion_seconds", "s", "seconds since motion was last seen"),
            ("last_frame_age", "s", "seconds since the last decoded frame"),
            ("restarts", "count", "worker restarts since the station started"),
            ("stall_rate", "per h", "stalls and restarts in the last hour"),
            ("cpu_percent", "%", "CPU use (percent of one core)"),
            ("rss_mb", "MB", "resident memory"),
            ("threads", "count", "threads of the worker and its children"),
        ):
            registry.register_series(name, unit=unit, help=text)

    def start(self) -> SupervisorFeed:
        if self._unsubscribe is None:
            self._unsubscribe = self._sup.subscribe(self.on_event)
        return self

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def watched_cameras(self) -> list[int]:
        with self._lock:
            return sorted(cid for cid, t in self._cams.items() if t.state != _STOPPED)

    def _track(self, camera_id: int, now: float) -> _CameraTrack:
        t = self._cams.get(camera_id)
        if t is None:
            t = self._cams[camera_id] = _CameraTrack(now)
        return t

    # -- events (supervisor thread) ------------------------------------------------------
    def on_event(self, ev: Any) -> None:
        try:
            self._on_event(ev)
        except Exception:  # a bad event must not break the supervisor's delivery
            log.exception("metrics: cannot record supervisor event %r", getattr(ev, "kind", ev))

    def _on_event(self, ev: Any) -> None:
        kind = ev.kind
        if kind not in ("heartbeat", "state", "source"):
            return
        cid = int(ev.camera_id)
        now = float(ev.ts or self._clock())
        state = getattr(ev.state, "value", ev.state)
        labels = camera_labels(cid)
        with self._lock:
            t = self._track(cid, now)
            t.state = str(state)
            if kind in ("state", "source"):
                if kind == "state" and ev.detail.get("to") == "stalled":
                    t.incidents.append(now)
                    t.stall_open = True
                if kind == "source":
                    t.source = ev.detail.get("to")
                # Say it at once rather than at the next poll (the offline alert's latency).
                if t.state != _STOPPED:
                    offline = 0.0 if (t.state == _RUNNING and t.source == "up") else 1.0
                    self._reg.record_key(("offline", labels), offline, now)
                return
            hb = ev.detail
            t.source = hb.get("source", t.source)
            ts = _num(hb.get("ts")) or now
            if hb.get("motion_active"):
                t.last_motion = ts
            dropped = hb.get("dropped")
            rate = None
            if isinstance(dropped, int) and t.hb_dropped is not None and t.hb_ts is not None and ts > t.hb_ts:
                rate = max(0, dropped - t.hb_dropped) / (ts - t.hb_ts)
            if isinstance(dropped, int):
                t.hb_dropped, t.hb_ts = dropped, ts
        rec = self._reg.record_key
        for name in ("fps", "motion", "motion_active", "last_frame_age"):
            v = _num(hb.get(name))
            if v is not None:
                rec((name, labels), v, ts)
        if rate is not None:
            rec(("dropped_rate", labels), rate, ts)

    # -- poll (sampler thread, once a second) ----------------------------------------------
    def poll(self, now: float) -> None:
        statuses = self._sup.statuses()
        rows = []
        with self._lock:
            for cid, st in statuses.items():
                t = self._track(cid, now)
                state = str(getattr(st.state, "value", st.state))
                t.state = state
                if state == _STOPPED:
                    t.last_motion = None
                    t.first_seen = None  # "no motion" counts again from the next start
                    t.hb_dropped = t.hb_ts = None
                    continue
                if t.first_seen is None:
                    t.first_seen = now
                source = st.source if st.source is not None else t.source
                t.source = source
                if st.restarts is not None:
                    if t.restarts is not None and st.restarts > t.restarts:
                        new = st.restarts - t.restarts
                        if t.stall_open:  # the stall we already counted ended in this restart
                            new -= 1
                            t.stall_open = False
                        t.incidents.extend([now] * max(0, new))
                    t.restarts = st.restarts
                while t.incidents and t.incidents[0] <= now - STALL_WINDOW:
                    t.incidents.popleft()
                if state == _RUNNING:
                    t.stall_open = False if source == "up" else t.stall_open
                offline = 0.0 if (state == _RUNNING and source == "up") else 1.0
                since = t.last_motion if t.last_motion is not None else t.first_seen
                assert since is not None
                rows.append((cid, offline, max(0.0, now - since), float(t.restarts or 0), float(len(t.incidents))))
        rec = self._reg.record_key
        for cid, offline, no_motion, restarts, incidents in rows:
            labels = camera_labels(cid)
            rec(("offline", labels), offline, now)
            rec(("no_motion_seconds", labels), no_motion, now)
            rec(("restarts", labels), restarts, now)
            rec(("stall_rate", labels), incidents, now)
            try:
                stats = self._sup.stats(cid)
            except Exception:  # the worker went away between the two calls
                stats = None
            if stats is not None:
                rec(("cpu_percent", labels), float(stats.cpu_percent), now)
                rec(("rss_mb", labels), stats.rss_bytes / 1e6, now)
                rec(("threads", labels), float(stats.threads), now)


class StationFeed:
    """Station series from psutil: ``cpu_percent``, ``memory_percent``, ``disk_free_percent``
    (of the data dir's disk), ``disk_free_gb``, ``temperature_c`` (highest sensor, when the
    machine reports one) and ``load1``."""

    def __init__(self, data_dir: Path | str, registry: MetricsRegistry):
        self._dir = Path(data_dir)
        self._reg = registry
        psutil.cpu_percent(interval=None)  # prime: the first call has no reference point
        self._has_temp = hasattr(psutil, "sensors_temperatures")
        for name, unit, text in (
            ("cpu_percent", "%", "station CPU use (all cores)"),
            ("memory_percent", "%", "memory in use"),
            ("disk_free_percent", "%", "free space on the data dir's disk"),
            ("disk_free_gb", "GB", "free space on the data dir's disk"),
            ("temperature_c", "°C", "highest sensor temperature"),
            ("load1", "", "1-minute load average"),
        ):
            registry.register_series(name, unit=unit, help=text)

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "memory_percent": float(psutil.virtual_memory().percent),
        }
        try:
            du = psutil.disk_usage(str(self._dir))
            out["disk_free_percent"] = 100.0 * du.free / du.total if du.total else 0.0
            out["disk_free_gb"] = du.free / 1e9
        except OSError as e:
            log.warning("metrics: cannot read disk usage of %s: %s", self._dir, e)
        if self._has_temp:
            try:
                temps = psutil.sensors_temperatures()
            except (OSError, RuntimeError):
                temps = {}
            currents = [t.current for entries in temps.values() for t in entries if _num(t.current) is not None]
            if currents:
                out["temperature_c"] = float(max(currents))
        try:
            out["load1"] = float(os.getloadavg()[0])
        except (OSError, AttributeError):
            pass
        return out

    def poll(self, now: float) -> None:
        for name, v in self.sample().items():
            self._reg.record_key((name, ()), v, now)


class RolloutFeed:
    """Rollout series from the router, once a second.

    ``snapshot()`` returns either the router's ``RolloutSnapshot`` (anything
    with ``metrics`` and ``health``: ``Router.snapshot``) or a plain mapping
    (``Router.health_metrics``; or a dataclass).

    - The rule metrics ``domain_error_rate``, ``success_rate`` and ``p95_ratio``
      become unlabelled series. A value that is ``None`` or whose health check
      is *inconclusive* (too few calls) is not written, so rules see no data and
      the rollout templates (``keep_last``) hold their state.
    - ``domain_share`` and other numeric top-level entries become unlabelled series.
    - Per path figures (calls, errors, fallbacks, error_rate, success_rate,
      p50_ms, p95_ms, p99_ms...) become ``rollout_<field>{path=…}``; with
      ``per_op=True`` also ``rollout_<field>{op=…,path=…}``. A mapping may carry
      per-operation figures as ``"ops": {op: {path: {field: number}}}``.
    """

    def __init__(self, snapshot: Callable[[], Any], registry: MetricsRegistry, *, per_op: bool = False):
        self._snapshot = snapshot
        self._reg = registry
        self._per_op = per_op  # router snapshots: also one series per operation (13 x 2 x 10 more series)
        for name, unit, text in (
            ("domain_error_rate", "ratio", "domain path errors before fallback / calls"),
            ("success_rate", "ratio", "end-to-end success after fallback / calls"),
            ("p95_ratio", "ratio", "domain P95 latency / legacy P95 latency"),
            ("health_inconclusive", "bool", "1 while a track is inconclusive for too long"),
            ("domain_share", "ratio", "share of calls served by the domain path"),
        ):
            registry.register_series(name, unit=unit, help=text)

    @staticmethod
    def _fields(stats: Any) -> Mapping[str, Any]:
        if isinstance(stats, Mapping):
            return stats
        if hasattr(stats, "as_dict"):
            return dict(stats.as_dict())
        if is_dataclass(stats) and not isinstance(stats, type):
            return asdict(stats)
        return {}

    def _from_router(self, snap: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        top: dict[str, Any] = dict(snap.metrics or {})
        for check in getattr(snap.health, "checks", ()):
            if str(getattr(check, "status", "")) == "inconclusive" and check.name in top:
                top[check.name] = None
        top["domain_share"] = getattr(snap, "actual_call_share", None)
        top["rollout_percent"] = getattr(snap, "target_percent", None)
        window = getattr(snap, "window", None)
        ops: dict[str, Any] = {}
        if window is not None:
            if self._per_op:
                ops = {op: {p: self._fields(st) for p, st in paths.items()} for op, paths in window.per_op.items()}
            ops[""] = {p: self._fields(st) for p, st in window.total.items()}
        return top, ops

    def poll(self, now: float) -> None:
        snap = self._snapshot()
        if snap is None:
            return
        top: Mapping[str, Any]
        ops: Mapping[str, Any]
        if hasattr(snap, "metrics") and hasattr(snap, "health"):
            top, ops = self._from_router(snap)
        else:
            if is_dataclass(snap) and not isinstance(snap, type):
                snap = asdict(snap)
            if not isinstance(snap, Mapping):
                raise TypeError(f"rollout snapshot must be a mapping, dataclass or RolloutSnapshot, not {type(snap).__name__}")
            top = {k: v for k, v in snap.items() if k != "ops"}
            raw_ops = snap.get("ops")
            ops = raw_ops if isinstance(raw_ops, Mapping) else {}
        rec = self._reg.record_key
        for name, value in top.items():
            v = _num(value)
            if v is not None:
                rec((str(name), ()), v, now)
        for op, paths in ops.items():
            if not isinstance(paths, Mapping):
                continue
            for path, fields in paths.items():
                if not isinstance(fields, Mapping):
                    continue
                labels = {"op": op, "path": path} if op else {"path": path}
                for fname, value in fields.items():
                    v = _num(value)
                    if v is not None:
                        rec(series_key(f"rollout_{fname}", labels), v, now)


class MetricsSampler:
    """Polls the feeds once a second and runs the rollup; on its own thread or ticked by the caller."""

    def __init__(
        self,
        feeds: list[Feed],
        *,
        rollup: Any | None = None,
        clock: Callable[[], float] = time.time,
        interval: float = 1.0,
    ):
        self.feeds = list(feeds)
        self.rollup = rollup
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.errors = 0

    def tick(self, now: float | None = None) -> None:
        if now is None:
            now = self._clock()
        for feed in self.feeds:
            try:
                feed.poll(now)
            except Exception:
                self.errors += 1
                log.exception("metrics: feed %r failed", feed)
        if self.rollup is not None:
            try:
                self.rollup.tick(now)
            except Exception:
                self.errors += 1
                log.exception("metrics: rollup failed")
        self.ticks += 1

    def start(self) -> MetricsSampler:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            next_at += self._interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (suspend, slow disk): do not try to catch up
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
