"""What the station tells its views: :class:`StationEvent`, and the local API's :class:`ApiStatus`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StationEvent:
    """Something a view may want to redraw for.

    kinds: ``state`` (a camera's worker changed state; data = the supervisor's event),
    ``cameras`` (the camera list changed, here or in another process),
    ``alert`` (an alert fired/resolved/acknowledged; data = AlertChange), ``settings``,
    ``rollout`` (a track's settings, latch or reports changed here), ``evidence``,
    ``api`` (the local API started or could not; data = ApiStatus).
    """

    kind: str
    camera_id: int | None = None
    data: Any = None
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ApiStatus:
    """Whether the local control API runs, and if it should and does not, why (shown in the window)."""

    enabled: bool
    running: bool
    host: str = ""
    port: int | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.enabled and not self.running
