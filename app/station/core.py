"""What every part of the station facade shares: its options, its parts while open, its events,
the loaded camera list, and applying a database change (here or in another process)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain import Camera
from app.domain.emitter import Emitter
from app.domain.operations import CameraRef
from app.station.events import StationEvent

if TYPE_CHECKING:
    from app.platform.paths import StationPaths
    from app.station.port import ApiHandle, ApiStarter
    from app.station.wiring import StationParts
    from app.supervisor import RestartPolicy, Supervisor

log = logging.getLogger("edge_station.station")

#: the audit actor of the restarts and starts the station makes by itself after an edit
EDIT_ACTOR = "station (camera settings changed)"
#: the camera fields a worker reads at start: changing one needs a restart to apply
WORKER_FIELDS = ("source", "max_fps", "loop", "motion", "stall_timeout")


def worker_settings_changed(old: Camera, new: Camera) -> bool:
    """True when ``new`` differs from ``old`` in something a running worker uses."""
    return (old.source, old.max_fps, old.loop, old.motion, old.stall_timeout) != (
        new.source, new.max_fps, new.loop, new.motion, new.stall_timeout)


@dataclass
class StationOptions:
    paths: StationPaths
    seed_demo: bool = True
    autostart: bool = True
    policy: RestartPolicy | None = None
    watch_interval: float = 1.0
    owner: str | None = None
    #: serves the local control API (the window and headless pass one; tests opt in); the station
    #: is handed the starter so that it never imports the API, which imports the station's port
    api: ApiStarter | None = None
    api_port: int | None = None  # --api-port: overrides EDGE_STATION_API_PORT and the api.port setting
    #: register in the database's fleet and heartbeat (app/station/fleet.py); throwaway stations do not
    fleet: bool = True
    station_name: str | None = None  # --station: else $EDGE_STATION_NAME, else the host name
    heartbeat_interval: float | None = None  # else $EDGE_STATION_HEARTBEAT_INTERVAL, else fleet.heartbeat_interval
    gone_after: float | None = None  # else the fleet.gone_after setting (20 s)
    fleet_clock: Callable[[], float] | None = None  # the station's own wall clock (tests skew it)


class Unopened(RuntimeError):
    """The station is not open (before :meth:`Station.open` or after :meth:`Station.close`)."""


class StationCore:
    """State and helpers the facade's parts (cameras, alerts, rollout, evidence, health) share."""

    def __init__(self, options: StationOptions):
        self.options = options
        self.paths = options.paths
        self.api: ApiHandle | None = None
        self._parts: StationParts | None = None
        #: while the station opens: its supervisor (not started yet) and its cameras read early
        #: (Station._load_early), so that their states show before the store has loaded
        self._early_supervisor: Supervisor | None = None
        self._opened = False
        self._events: Emitter[StationEvent] = Emitter("station")
        self._closing = threading.Event()
        self._cameras: dict[int, Camera] = {}
        self._cam_lock = threading.Lock()
        self._change_lock = threading.RLock()
        self._rules_lock = threading.Lock()  # one rule reload at a time: an older read never wins

    def parts(self) -> StationParts:
        """The parts of the open station; :class:`Unopened` when it is not open."""
        parts = self._parts
        if parts is None:
            raise Unopened("the station is not open")
        return parts

    def _supervisor_now(self) -> Supervisor | None:
        """The open station's supervisor, else the one made early while it opens, else None."""
        parts = self._parts
        return parts.supervisor if parts is not None else self._early_supervisor

    # ------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[StationEvent], None]) -> Callable[[], None]:
        """Be told of every :class:`StationEvent` (on a station thread); returns the unsubscribe."""
        return self._events.subscribe(callback)

    def emit(self, event: StationEvent) -> None:
        self._events.emit(event)

    # ------------------------------------------------------------ the loaded cameras

    def cameras(self) -> list[Camera]:
        with self._cam_lock:
            return list(self._cameras.values())

    def camera(self, camera_id: int) -> Camera | None:
        with self._cam_lock:
            return self._cameras.get(camera_id)

    def camera_ids(self) -> list[int]:
        return [c.id for c in self.cameras() if c.id is not None]

    def _reload_cameras(self) -> list[Camera]:
        with self.parts().store.uow() as uow:
            cams = uow.cameras.list()
        with self._cam_lock:
            self._cameras = {c.id: c for c in cams if c.id is not None}
        return cams

    def reload_rules(self) -> None:
        """Make the alert engine re-read its rules now. Serialised, so that a reload that read the
        database before a change cannot finish after one that read it afterwards (the window's
        rule editor and the database watcher both reload)."""
        with self._rules_lock:
            if self._parts is not None:
                self._parts.alerts.load_rules()

    # ------------------------------------------------------------ applying a change of the database

    def reload_cameras(self) -> None:
        """Re-read cameras, rules and rollout settings now (the watcher does it within a second).

        A running camera whose worker settings changed (source, fps cap, loop, motion,
        stall timeout) is restarted once through the router, audited as ``station``;
        a camera added as active starts when the station autostarts its cameras.
        """
        self._on_database_changed()

    def _on_database_changed(self) -> None:
        with self._change_lock:  # the watcher and reload_cameras(): each change is applied once
            self._apply_database_change()

    def _apply_database_change(self) -> None:
        from app.supervisor import WorkerState

        parts = self.parts()
        parts.store.invalidate()  # the status reads' snapshots load again (app/store/catalog.py)
        sup = parts.supervisor
        before = {c.id: c for c in self.cameras() if c.id is not None}
        after = {c.id: c for c in self._reload_cameras() if c.id is not None}
        for cid, old in before.items():
            new = after.get(cid)
            gone_or_off = new is None or (old.active and not new.active)
            if gone_or_off and sup.status(cid).state != WorkerState.STOPPED:
                try:
                    sup.stop_worker(cid)
                except Exception as e:
                    log.warning("stopping camera %s after it was removed/deactivated: %s", cid, e)
            elif new is not None and worker_settings_changed(old, new):
                self._apply_camera_edit(new)
        if self._opened and self.options.autostart:
            for cid, new in after.items():
                if new.active and cid not in before:
                    self._start_added_camera(new)
        self.reload_rules()  # a rule may have been added, changed or disabled
        parts.router.reload()  # rollout settings changed by `edge-station rollout ...`
        if before != after:
            self.emit(StationEvent("cameras"))

    def _apply_camera_edit(self, camera: Camera) -> None:
        from app.supervisor import WorkerState

        assert camera.id is not None
        parts = self.parts()
        st = parts.supervisor.status(camera.id)
        if st.state in (WorkerState.STOPPED, WorkerState.STOPPING):
            return  # a stopped worker reads the new settings when it next starts
        log.info("camera %s (%s): worker settings changed, restarting its worker", camera.id, camera.name)
        try:
            parts.router.call("restart_camera", CameraRef(camera.id), actor=EDIT_ACTOR)
        except Exception as e:
            log.warning("restart of camera %s after an edit failed: %s", camera.id, e)

    def _start_added_camera(self, camera: Camera) -> None:
        assert camera.id is not None
        log.info("camera %s (%s) added as active: starting it", camera.id, camera.name)
        try:
            self.parts().router.call("start_camera", CameraRef(camera.id), actor=EDIT_ACTOR)
        except Exception as e:
            log.warning("start of the added camera %s failed: %s", camera.id, e)
