"""The stations the rollout commands run on, built from :class:`Station`: the throwaway station of
verify and rehearse (:func:`scratch_station`), the drill's throwaway one with running ``test://``
cameras (:func:`scratch_drill_station`) and the station of a data dir (:func:`live_drill_station`).

The drill itself (``app.rollout.drill``) never builds a station; the command line passes these
factories down to it, as it does the scratch station of verify and rehearse.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain import Camera
from app.domain.operations import CameraRef, StationOperations
from app.platform.paths import StationPaths, sqlite_url
from app.rollout.drill import DrillStationBusy
from app.station.facade import Station, StationAlreadyRunning, StationOptions
from app.station.scratch import scratch_station_of
from app.station.wiring import StationParts

if TYPE_CHECKING:
    from app.rollout.verify import ScratchStation


def scratch_station() -> contextlib.AbstractContextManager[ScratchStation]:
    """The throwaway station of ``verify`` and ``rollout rehearse`` (see :mod:`app.station.scratch`)."""
    return scratch_station_of(Station)


@dataclass(frozen=True)
class ScratchDrillStation:
    """A scratch station for drills (``station``) and the ids of its running ``test://`` cameras
    (an :class:`app.rollout.drill.DrillStation`)."""

    station: Station
    drill_cameras: tuple[int, ...]

    @property
    def legacy_ops(self) -> StationOperations:
        return self.station.parts().legacy_ops

    @property
    def domain_ops(self) -> StationOperations:
        return self.station.parts().domain_ops


@contextlib.contextmanager
def scratch_drill_station(cameras: int = 4, *, frame_timeout: float = 30.0,
                          size: str = "320x180") -> Iterator[ScratchDrillStation]:
    """A throwaway station with ``cameras`` running ``test://`` cameras; everything is removed on exit."""
    with tempfile.TemporaryDirectory(prefix="edge-station-drill-") as tmp:
        root = Path(tmp).resolve()
        station = Station(StationOptions(paths=StationPaths(root, sqlite_url(root / "drill.db")), seed_demo=False,
                                         autostart=False, fleet=False))
        station.open()
        try:
            parts = station.parts()
            ids = []
            for i in range(cameras):
                cam = parts.admin.add_camera(Camera(name=f"drill-{i + 1}", source=f"test://moving?size={size}&rate=10"))
                assert cam.id is not None
                ids.append(cam.id)
                parts.legacy_ops.start_camera(CameraRef(cam.id))
            deadline = time.monotonic() + frame_timeout
            while time.monotonic() < deadline:
                if all(parts.legacy_ops.camera_status(CameraRef(c)).fps for c in ids):
                    break
                time.sleep(0.1)
            yield ScratchDrillStation(station, tuple(ids))
        finally:
            station.close()


@contextlib.contextmanager
def live_drill_station(paths: StationPaths) -> Iterator[StationParts]:
    """The station on ``paths``, opened with nothing autostarting and closed on exit (its parts are an
    :class:`app.rollout.drill.LiveDrillStation`); :class:`DrillStationBusy` when it runs elsewhere."""
    station = Station(StationOptions(paths=paths, seed_demo=False, autostart=False, fleet=False))
    try:
        station.open()
    except StationAlreadyRunning as e:
        raise DrillStationBusy(str(e)) from None
    try:
        yield station.parts()
    finally:
        station.close()
