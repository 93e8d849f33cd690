"""Prometheus exposition of the station: per camera, per routing path, alerts, and the API itself.

Every operation series carries its rollout ``track`` (``rules`` or ``cameras``) next to ``op`` and
``path``, so the shipped rules (``packaging/prometheus/``) aggregate per track without a lookup table.

A :class:`StationCollector` reads the station at scrape time (no background
work); the API's request counter and latency histogram are ordinary
prometheus-client metrics. Everything lives in the server's own
:class:`CollectorRegistry` (never the process-global one), rendered with
prometheus-client's ``generate_latest``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app import __version__
from app.api.backend import StationBackend
from app.domain.camera import CameraState
from app.domain.operations import OPERATIONS, TRACK_OF, TRACKS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NS = "edge_station"


class StationCollector(Collector):
    def __init__(self, backend: StationBackend):
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        yield _info()
        for part in (self._cameras, self._series, self._rollout, self._alerts):
            try:
                yield from part()
            except Exception:  # one broken source of figures must not empty the whole scrape
                log.exception("collecting %s metrics failed", part.__name__.strip("_"))

    # ------------------------------------------------------------ cameras

    def _cameras(self) -> Iterator[Metric]:
        station = self.backend.station
        statuses = station.live_status()
        labels = ["camera", "name"]
        up = GaugeMetricFamily(f"{NS}_camera_up", "1 when the worker runs and its source is up", labels=labels)
        active = GaugeMetricFamily(f"{NS}_camera_active", "1 when the camera is active", labels=labels)
        state = GaugeMetricFamily(f"{NS}_camera_state", "1 for the camera's current state", labels=[*labels, "state"])
        fps = GaugeMetricFamily(f"{NS}_camera_fps", "decoded frames per second", labels=labels)
        age = GaugeMetricFamily(f"{NS}_camera_last_frame_age_seconds", "seconds since the last decoded frame",
                                labels=labels)
        uptime = GaugeMetricFamily(f"{NS}_camera_uptime_seconds", "seconds the worker has been running", labels=labels)
        motion = GaugeMetricFamily(f"{NS}_camera_motion", "motion score 0..1", labels=labels)
        restarts = CounterMetricFamily(f"{NS}_camera_restarts", "worker restarts since the station started",
                                       labels=labels)
        cpu = GaugeMetricFamily(f"{NS}_camera_cpu_percent", "worker CPU use", labels=labels)
        rss = GaugeMetricFamily(f"{NS}_camera_rss_bytes", "worker resident memory", labels=labels)
        for st in statuses:
            lv = [str(st.camera_id), st.name]
            up.add_metric(lv, 1.0 if st.state is CameraState.RUNNING and st.source == "up" else 0.0)
            active.add_metric(lv, 1.0 if st.active else 0.0)
            for s in CameraState:
                state.add_metric([*lv, s.value], 1.0 if st.state is s else 0.0)
            restarts.add_metric(lv, float(st.restarts))
            if st.fps is not None:
                fps.add_metric(lv, st.fps)
            if st.last_frame_age is not None:
                age.add_metric(lv, st.last_frame_age)
            if st.uptime is not None:
                uptime.add_metric(lv, st.uptime)
            if st.motion is not None:
                motion.add_metric(lv, st.motion)
            if st.pid is not None:
                stats = station.worker_stats(st.camera_id)
                if stats is not None:
                    cpu.add_metric(lv, float(stats.cpu_percent))
                    rss.add_metric(lv, float(stats.rss_bytes))
        yield from (up, active, state, fps, age, uptime, motion, restarts, cpu, rss)

    # ------------------------------------------------------------ the station's metrics registry

    def _series(self) -> Iterator[Metric]:
        """Latest values of the station's series (station CPU/memory/disk/temperature, per-camera
        figures the camera families above do not have, per-op rollout series), as gauges."""
        registry = self.backend.station.metrics_reader()
        if registry is None:
            return
        families: dict[tuple[str, tuple[str, ...]], GaugeMetricFamily] = {}
        for name, labels in registry.keys():
            if (labels and labels[0][0] == "camera" and name in _CAMERA_COVERED) or name.startswith("rollout_") \
                    or any(k == "op" for k, _ in labels):
                continue  # exported above, or below as the operation counters and quantiles
            sample = registry.latest_sample((name, labels))
            if sample is None or sample[1] != sample[1]:  # none yet, or NaN
                continue
            label_names = tuple(k for k, _ in labels)
            scope = "camera" if "camera" in label_names else "station"
            prom, factor = _prom_unit(_prom_name(name))
            metric = f"{NS}_{scope}_{prom}" if not name.startswith(f"{scope}_") else f"{NS}_{prom}"
            fam = families.get((metric, label_names))
            if fam is None:
                if any(m == metric for m, _ in families):
                    continue  # one label set per family
                info = registry.info(name)
                help_ = (info.help or name) + (f" ({info.unit})" if info.unit else "")
                fam = families[(metric, label_names)] = GaugeMetricFamily(metric, help_, labels=list(label_names))
            fam.add_metric([v for _, v in labels], float(sample[1]) * factor)
        yield from families.values()

    # ------------------------------------------------------------ rollout, per path

    def _rollout(self) -> Iterator[Metric]:
        station = self.backend.station
        health = self.backend.rollout_health()
        yield GaugeMetricFamily(f"{NS}_rollout_use_domain", "the master toggle", value=float(health.use_domain))
        yield GaugeMetricFamily(f"{NS}_rollout_percent", "the target domain share in percent",
                                value=float(health.percent))
        yield GaugeMetricFamily(f"{NS}_rollout_latched", "1 when a rollback is latched", value=float(health.latched))
        verdict = GaugeMetricFamily(f"{NS}_rollout_health", "1 for the current health verdict", labels=["verdict"])
        for v in ("ok", "alert", "inconclusive", "unknown"):
            verdict.add_metric([v], 1.0 if health.verdict == v else 0.0)
        yield verdict
        settings = station.rollout_settings()
        target = GaugeMetricFamily(f"{NS}_rollout_track_target_percent",
                                   "per track: the share of keys meant for the domain path (0 when off or latched)",
                                   labels=["track"])
        latched = GaugeMetricFamily(f"{NS}_rollout_track_latched", "per track: 1 when a rollback is latched",
                                    labels=["track"])
        for track in TRACKS:
            ts = settings.track(track)
            target.add_metric([track], float(ts.target_percent))
            latched.add_metric([track], 1.0 if ts.latched else 0.0)
        yield target
        yield latched
        labels = ["op", "track", "path"]
        fams = {k: CounterMetricFamily(f"{NS}_operation_{k}", help_, labels=labels) for k, help_ in (
            ("calls", "operation calls since the station started"),
            ("errors", "unexpected failures (before any fallback)"),
            ("fallbacks", "calls served by legacy after the domain path failed"),
            ("successes", "calls that ended well for the caller (after any fallback; answers included)"),
            ("answers", "calls answered with an operation error (not a failure)"),
        )}
        for (op, path), counts in station.operation_counts().items():
            lv = [op, TRACK_OF.get(op, ""), path]
            fams["calls"].add_metric(lv, float(counts.calls))
            fams["errors"].add_metric(lv, float(counts.errors))
            fams["fallbacks"].add_metric(lv, float(counts.fallbacks))
            fams["successes"].add_metric(lv, float(counts.successes))
            fams["answers"].add_metric(lv, float(counts.answers))
        yield from fams.values()
        window = station.operation_window()
        wcalls = GaugeMetricFamily(f"{NS}_operation_window_calls", f"calls in the last {window.window_s:g} s",
                                   labels=labels)
        for op, paths in window.per_op.items():
            for path, ps in paths.items():
                wcalls.add_metric([op, TRACK_OF.get(op, ""), path], float(ps.calls))
        yield wcalls
        share = window.domain_share
        if share is not None:
            yield GaugeMetricFamily(f"{NS}_rollout_domain_share", "actual share of calls on the domain path",
                                    value=share)

    # ------------------------------------------------------------ alerts

    def _alerts(self) -> Iterator[Metric]:
        station = self.backend.station
        rules = GaugeMetricFamily(f"{NS}_alert_rules", "alert rules in the database", labels=["enabled"])
        all_rules = station.list_rules()
        rules.add_metric(["true"], float(sum(1 for r in all_rules if r.enabled)))
        rules.add_metric(["false"], float(sum(1 for r in all_rules if not r.enabled)))
        yield rules
        if not station.alerts_running():
            return
        firing = GaugeMetricFamily(f"{NS}_alerts_firing", "alert instances firing now", labels=["severity"])
        pending = GaugeMetricFamily(f"{NS}_alerts_pending", "alert instances pending now", labels=["severity"])
        counts: dict[tuple[str, str], int] = {}
        for st in station.alert_statuses():
            key = (str(st.state), str(st.severity))
            counts[key] = counts.get(key, 0) + 1
        for sev in ("info", "warning", "critical"):
            firing.add_metric([sev], float(counts.get(("firing", sev), 0)))
            pending.add_metric([sev], float(counts.get(("pending", sev), 0)))
        yield firing
        yield pending


def _info() -> Metric:
    info = GaugeMetricFamily(f"{NS}_info", "1; the station's version in a label (join on it for dashboards)",
                             labels=["version"])
    info.add_metric([__version__], 1.0)
    return info


#: camera series the camera families already export (from the supervisor's live status)
_CAMERA_COVERED = frozenset({"fps", "motion", "last_frame_age", "cpu_percent", "rss_mb", "restarts"})


def _prom_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


_UNITS = {"_gb": ("_bytes", 1e9), "_mb": ("_bytes", 1e6), "_kb": ("_bytes", 1e3), "_ms": ("_seconds", 1e-3)}


def _prom_unit(name: str) -> tuple[str, float]:
    """Prometheus names carry base units (``disk_free_gb`` -> ``disk_free_bytes``, values scaled)."""
    for suffix, (base, factor) in _UNITS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)] + base, factor
    return name, 1.0


#: latency buckets (seconds) of the API and of the operations
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    """The server's registry: station figures, its own request counter and latency histogram, and the
    operations' latency histogram per operation and path (fed by every routed call, API or not)."""

    def __init__(self, backend: StationBackend):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StationCollector(backend))
        self.requests = Counter(f"{NS}_api_requests", "API requests answered", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram(f"{NS}_api_request_duration_seconds", "API request handling time", ["route"],
                                 registry=self.registry, buckets=BUCKETS)
        self.operations = Histogram(f"{NS}_operation_duration_seconds",
                                    "operation latency through the rollout router, per operation and path",
                                    ["op", "track", "path"], registry=self.registry, buckets=BUCKETS)
        for op in OPERATIONS:  # known label sets appear at zero before the first call
            self.latency.labels(op)
        self._backend = backend
        self._unobserve: Callable[[], None] | None = None
        # labelled children, looked up once per label set (``labels()`` costs microseconds a call)
        self._op_children: dict[tuple[str, str], Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def start(self) -> None:
        """Observe every routed call (API or not) from now on."""
        if self._unobserve is None:
            self._unobserve = self._backend.station.observe_operations(self._on_call)

    def _on_call(self, op: str, path: str, seconds: float) -> None:
        child = self._op_children.get((op, path))
        if child is None:
            child = self._op_children[(op, path)] = self.operations.labels(op, TRACK_OF.get(op, ""), path)
        child.observe(seconds)

    def close(self) -> None:
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            if len(self._request_children) < 4096:  # label sets are bounded by the routes; the cap is a guard
                self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
