"""Per-track rollout series (the charts' per-track plots), from the router's snapshot once a second.

For each rollout track (``rules``, ``cameras``), over the health window of that track's
operations only:

* ``rollout_track_error_rate{track}``   domain errors before fallback / domain calls (no calls: not written)
* ``rollout_track_domain_share{track}`` share of the track's calls that the domain path was chosen for
* ``rollout_track_target_percent{track}`` the track's target share (0 when off or latched)
* ``rollout_track_p50_ms{track,path}``, ``rollout_track_p95_ms{track,path}`` latency per path
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.metrics.registry import MetricsRegistry, series_key

SERIES = (
    ("rollout_track_error_rate", "ratio", "per track: domain errors before fallback / domain calls"),
    ("rollout_track_domain_share", "ratio", "per track: share of calls on the domain path"),
    ("rollout_track_target_percent", "%", "per track: the target share of keys"),
    ("rollout_track_p50_ms", "ms", "per track and path: P50 latency"),
    ("rollout_track_p95_ms", "ms", "per track and path: P95 latency"),
)


class RolloutTrackFeed:
    """``snapshot()`` = ``Router.snapshot`` (a ``RolloutSnapshot`` with ``track_windows``)."""

    def __init__(self, snapshot: Callable[[], Any], registry: MetricsRegistry):
        self._snapshot = snapshot
        self._reg = registry
        for name, unit, text in SERIES:
            registry.register_series(name, unit=unit, help=text)

    def poll(self, now: float) -> None:
        snap = self._snapshot()
        windows = getattr(snap, "track_windows", None) or {}
        rec = self._reg.record_key
        for track, w in windows.items():
            labels = {"track": track}
            d = w.path("domain")
            if d.error_rate is not None:
                rec(series_key("rollout_track_error_rate", labels), d.error_rate, now)
            if w.domain_share is not None:
                rec(series_key("rollout_track_domain_share", labels), w.domain_share, now)
            rec(series_key("rollout_track_target_percent", labels), snap.settings.track(track).target_percent, now)
            for path, st in w.total.items():
                for q, v in (("p50", st.p50_ms), ("p95", st.p95_ms)):
                    if v is not None:
                        rec(series_key(f"rollout_track_{q}_ms", {"track": track, "path": path}), v, now)
