"""A throwaway station for ``edge-station verify`` and ``rollout rehearse``."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain import Camera
from app.platform.paths import StationPaths, sqlite_url

if TYPE_CHECKING:
    from app.rollout.verify import ScratchStation


@contextlib.contextmanager
def scratch_station() -> Iterator[ScratchStation]:
    """A throwaway station: temporary database, synthetic cameras.

    Nothing autostarts; an active ``test://moving`` camera and an inactive
    ``test://still`` one are added. Everything is stopped and deleted on exit.
    """
    from app.rollout.verify import ScratchStation
    from app.station.facade import Station, StationOptions

    with tempfile.TemporaryDirectory(prefix="edge-station-verify-") as tmp:
        # Never resolve_paths(tmp, None): it would honour EDGE_STATION_DB; a scratch station never touches it.
        root = Path(tmp).resolve()
        station = Station(StationOptions(paths=StationPaths(root, sqlite_url(root / "verify.db")),
                                         seed_demo=False, autostart=False))
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
