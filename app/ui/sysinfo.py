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
