"""Time series: 1-second ring buffers, windowed percentile sketches, minute rollups, feeds.

Qt-free. Wiring (see ``app.station``)::

    registry = MetricsRegistry()
    sup_feed = SupervisorFeed(supervisor, registry).start()
    sampler = MetricsSampler([sup_feed, StationFeed(data_dir, registry), RolloutFeed(router_snapshot, registry)],
                             rollup=Rollup(registry, store)).start()
"""

from app.metrics.feeds import (
    MetricsSampler,
    RolloutFeed,
    StationFeed,
    SupervisorFeed,
    camera_labels,
)
from app.metrics.registry import BadSeries, MetricsError, MetricsRegistry, SeriesInfo, series_key
from app.metrics.rollup import Rollup, RollupResult, history_arrays, rollup_history
from app.metrics.series import RingSeries
from app.metrics.sketch import SketchError, SlidingCounter, SlidingSketch

__all__ = [
    "BadSeries", "MetricsError", "MetricsRegistry", "MetricsSampler", "RingSeries", "RolloutFeed",
    "Rollup", "RollupResult", "SeriesInfo", "SketchError", "SlidingCounter", "SlidingSketch",
    "StationFeed", "SupervisorFeed", "camera_labels", "history_arrays", "rollup_history", "series_key",
]
