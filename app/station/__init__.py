"""The station: one object that wires the store, the supervisor, both implementations of the
operations, the rollout router, metrics, alerts and evidence, and the facade its clients use.

Qt-free. The window, the kiosk, the headless runner, the CLI and the API talk to a station
through :class:`~app.station.port.StationPort`; :class:`Station` implements it.
"""

from app.station.events import ApiStatus, StationEvent
from app.station.facade import (
    EDIT_ACTOR,
    SETTING_OFFLINE_SEEDED,
    SETTING_RULES_SEEDED,
    Station,
    StationAlreadyRunning,
    StationOptions,
    run_headless,
    scratch_station,
    status_line,
    worker_settings_changed,
)
from app.station.port import StationPort

__all__ = [
    "EDIT_ACTOR", "SETTING_OFFLINE_SEEDED", "SETTING_RULES_SEEDED", "ApiStatus", "Station",
    "StationAlreadyRunning", "StationEvent", "StationOptions", "StationPort", "run_headless",
    "scratch_station", "status_line", "worker_settings_changed",
]
