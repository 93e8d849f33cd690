"""Station load for the status bar (Qt-free, psutil).

Used until the metrics module publishes station series; the window reads it on
its status timer. ``cpu_percent`` is measured between two calls (non-blocking).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil
from PySide6.QtCore import QCoreApplication

from app.station.port import MetricsReader, StationPort
from app.ui.common.reasons import translate_track


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


def _track_text(t: object) -> tuple[str, str, bool]:
    """(text, tooltip, on legacy) of one track, in the window's language."""
    name = getattr(t, "name", "")
    track = translate_track(name)
    if getattr(t, "latched", False):
        return (QCoreApplication.translate("StatusBar", "{track} ROLLED BACK").format(track=track),
                QCoreApplication.translate("StatusBar", "{track}: rollback latched: {reason}").format(
                    track=track, reason=getattr(t, "latch_reason", "") or QCoreApplication.translate("StatusBar", "no reason given")), False)
    pct = int(getattr(t, "target_percent", 0) or 0)
    if not pct:
        return (QCoreApplication.translate("StatusBar", "{track} legacy").format(track=track),
                QCoreApplication.translate("StatusBar", "{track}: every call on the legacy implementation").format(
                    track=track), True)
    return (QCoreApplication.translate("StatusBar", "{track} {percent} %").format(track=track, percent=pct),
            QCoreApplication.translate("StatusBar", "{track}: {percent} % of keys on the domain path (stage {stage} %)")
            .format(track=track, percent=pct, stage=getattr(t, "stage", pct)), False)


def rollout_text(settings: object) -> tuple[str, str]:
    """``("rules 25 % · cameras legacy", tooltip)`` from a RolloutSettings (one part per track);
    ``("domain 25 %", tooltip)`` from a one-track settings-like object."""
    tracks = getattr(settings, "tracks", None)
    if isinstance(tracks, dict) and tracks:
        parts = [_track_text(t) for t in tracks.values()]
        if all(legacy for _, _, legacy in parts):
            text = QCoreApplication.translate("StatusBar", "legacy")
        else:
            text = " · ".join(t for t, _, _ in parts)
        tip = "; ".join(tp for _, tp, _ in parts)
        locked = settings.locked_fields()  # type: ignore[attr-defined]
        if locked:
            tip += "; " + QCoreApplication.translate("StatusBar", "locked by {variables}").format(
                variables=", ".join(sorted(set(locked.values()))))
        return text, tip
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


def load_from_metrics(registry: MetricsReader | None, max_age: float = 5.0) -> StationLoad | None:
    """The station series the metrics module records (cpu/memory/disk), or None when they are not fresh."""
    if registry is None:
        return None
    latest = registry.latest
    cpu = latest("cpu_percent", None, max_age=max_age)
    mem = latest("memory_percent", None, max_age=max_age)
    free = latest("disk_free_percent", None, max_age=max_age)
    if cpu is None or mem is None or free is None:
        return None
    free_gb = latest("disk_free_gb", None, max_age=max_age)
    return StationLoad(cpu_percent=cpu, memory_percent=mem, disk_percent=100.0 - free,
                       disk_free=int((free_gb or 0) * 1e9))


def collect_status(station: StationPort, sampler: LoadSampler | None) -> StatusSample:
    """Station load, alert counts and rollout stage.

    The load comes from the station's metrics when it records them (one psutil
    reader per process: ``cpu_percent(interval=None)`` measures since the last
    call by anyone), else from ``sampler``.
    """
    load = load_from_metrics(station.metrics_reader())
    if load is None and sampler is not None:
        load = sampler.sample()
    firing = unacked = None
    if station.alerts_running():
        active = station.firing_alerts()
        firing = len(active)
        unacked = sum(1 for a in active if not a.acknowledged)
    rollout, tip = rollout_text(station.rollout_settings())
    return StatusSample(load, firing, unacked, rollout, tip)
