"""Station load for the status bar (Qt-free, psutil).

Used until the metrics module publishes station series; the window reads it on
its status timer. ``cpu_percent`` is measured between two calls (non-blocking).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class StationLoad:
    cpu_percent: float
    memory_percent: float
    disk_percent: float
    disk_free: int


class LoadSampler:
    """Reads station CPU, memory and the data dir's disk usage without blocking."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        psutil.cpu_percent(interval=None)  # prime: the next call measures since now

    def sample(self) -> StationLoad:
        cpu = psutil.cpu_percent(interval=None)
        mem = psutil.virtual_memory().percent
        path = self.data_dir if self.data_dir.exists() else Path(self.data_dir.anchor or "/")
        try:
            du = psutil.disk_usage(str(path))
            disk, free = du.percent, du.free
        except OSError:
            disk, free = 0.0, 0
        return StationLoad(cpu_percent=cpu, memory_percent=mem, disk_percent=disk, disk_free=free)


@dataclass(frozen=True)
class StatusSample:
    """What the status bar shows, gathered off the GUI thread once a second."""

    load: StationLoad | None
    alerts_firing: int | None  # None: the station has no alert engine
    alerts_unacknowledged: int | None
    rollout: str | None  # short text, None: the station has no rollout router
    rollout_tip: str = ""


def rollout_text(settings: object) -> tuple[str, str]:
    """``("domain 25 %", tooltip)`` from a RolloutSettings-like object."""
    latched = bool(getattr(settings, "latched", False))
    use = bool(getattr(settings, "use_domain", False))
    pct = int(getattr(settings, "percent", 0) or 0)
    locked = getattr(settings, "locked_fields", lambda: {})()
    if latched:
        text = "ROLLED BACK"
        tip = f"rollback latched: {getattr(settings, 'latch_reason', '') or 'no reason given'}"
    elif not use:
        text, tip = "legacy", "every call is served by the legacy implementation"
    else:
        stage = int(getattr(settings, "stage", pct) or 0)
        text = f"domain {pct} %"
        tip = f"{pct} % of keys on the domain path (stage {stage})"
    if locked:
        tip += "; locked by " + ", ".join(sorted(set(locked.values())))
    return text, tip


def collect_status(station: object, sampler: LoadSampler | None) -> StatusSample:
    """Station load, alert counts and rollout stage from whatever the station offers."""
    load = sampler.sample() if sampler is not None else None
    firing = unacked = None
    engine = getattr(station, "alerts", None)
    if engine is not None and hasattr(engine, "firing"):
        active = list(engine.firing())
        firing = len(active)
        unacked = sum(1 for a in active if not getattr(a, "acknowledged", False))
    rollout = None
    tip = ""
    router = getattr(station, "router", None)
    if router is not None and hasattr(router, "settings"):
        rollout, tip = rollout_text(router.settings)
    return StatusSample(load, firing, unacked, rollout, tip)
