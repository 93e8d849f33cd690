"""The station: one object that wires the store, the supervisor, both implementations of the
operations, the rollout router, metrics, alerts and evidence, and the facade its clients use.

Qt-free. The window, the kiosk, the headless runner, the CLI and the API talk to a station
through :class:`~app.station.port.StationPort`; :class:`Station` implements it.

The parts by role: ``port`` (what clients may ask), ``facade`` (:class:`Station`, with its
role modules ``cameras``, ``alerts``, ``rollout``, ``evidence``, ``health`` on ``core``),
``wiring`` (building and stopping the parts), ``watch`` (other processes' commits),
``runner`` (headless), ``scratch`` (the throwaway station of verify and rehearse), ``drill``
(the stations of the rollout drill: a scratch one with running cameras, and the live one).
"""

from typing import Any

from app.station.core import EDIT_ACTOR, StationOptions, Unopened, worker_settings_changed
from app.station.events import ApiStatus, StationEvent
from app.station.facade import Station, StationAlreadyRunning
from app.station.port import StationPort
from app.station.runner import run_headless, status_line
from app.station.wiring import SETTING_OFFLINE_SEEDED, SETTING_RULES_SEEDED

__all__ = [
    "EDIT_ACTOR", "SETTING_OFFLINE_SEEDED", "SETTING_RULES_SEEDED", "ApiStatus", "ScratchDrillStation", "Station",
    "StationAlreadyRunning", "StationEvent", "StationOptions", "StationPort", "Unopened", "live_drill_station",
    "run_headless", "scratch_drill_station", "scratch_station", "status_line", "worker_settings_changed",
]

#: the stations of the rollout commands (``app.station.drill``) load on first use: they import the
#: rollout package, which the window must not load before its first paint
_DRILL = ("ScratchDrillStation", "live_drill_station", "scratch_drill_station", "scratch_station")


def __getattr__(name: str) -> Any:
    if name in _DRILL:
        from app.station import drill

        return getattr(drill, name)
    raise AttributeError(f"module 'app.station' has no attribute {name!r}")
