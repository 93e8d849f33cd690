"""A throwaway station for ``edge-station verify`` and ``rollout rehearse``.

:func:`scratch_station_of` builds it from the station type it is given, so this module needs no
import of the facade (the facade's own verify and rehearse pass ``type(self)``);
``app.station.scratch_station`` is the ready factory for the command line.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.domain import Camera
from app.platform.paths import StationPaths, sqlite_url
from app.station.core import StationOptions

if TYPE_CHECKING:
    from app.rollout.verify import ScratchStation
    from app.station.wiring import StationParts


class Openable(Protocol):
    """What the scratch station needs of a station: open it, reach its parts, close it."""

    def open(self) -> Any: ...

    def parts(self) -> StationParts: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def scratch_station_of(station_type: Callable[[StationOptions], Openable]) -> Iterator[ScratchStation]:
    """A throwaway station: temporary database, synthetic cameras.

    Nothing autostarts; an active ``test://moving`` camera and an inactive
    ``test://still`` one are added. Everything is stopped and deleted on exit.
    """
    from app.rollout.verify import ScratchStation

    with tempfile.TemporaryDirectory(prefix="edge-station-verify-") as tmp:
        # Never resolve_paths(tmp, None): it would honour EDGE_STATION_DB; a scratch station never touches it.
        root = Path(tmp).resolve()
        station = station_type(StationOptions(paths=StationPaths(root, sqlite_url(root / "verify.db")),
                                              seed_demo=False, autostart=False, fleet=False))
        station.open()
        try:
            parts = station.parts()
            active = parts.admin.add_camera(Camera(name="verify-active", source="test://moving?size=320x180&rate=10"))
            inactive = parts.admin.add_camera(Camera(name="verify-inactive", source="test://still", active=False))
            assert active.id is not None and inactive.id is not None
            yield ScratchStation(legacy=parts.legacy_ops, domain=parts.domain_ops, active_camera=active.id,
                                 inactive_camera=inactive.id, store=parts.store)
        finally:
            station.close()
