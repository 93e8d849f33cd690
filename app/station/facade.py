"""The station facade: :class:`Station` opens and closes the parts (see :mod:`app.station.wiring`),
serves the local API through the starter it was given, runs operations through the rollout
router, and offers the rest of :class:`~app.station.port.StationPort` from its role modules
(cameras, alerts, rollout, evidence, health).

Qt-free. Blocking work is its clients' to keep off a GUI thread; events come from background
threads and the UI bridges them into Qt signals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from app.domain.operations import OPERATIONS
from app.kiosk.instance import AlreadyRunning as StationAlreadyRunning
from app.kiosk.instance import InstanceLock
from app.station.alerts import AlertMethods
from app.station.cameras import CameraMethods
from app.station.core import StationOptions
from app.station.events import ApiStatus, StationEvent
from app.station.evidence import EvidenceMethods
from app.station.fleet import FleetMethods
from app.station.health import HealthMethods
from app.station.port import StationPort
from app.station.rollout import RolloutMethods
from app.station.watch import ChangeWatch, DbFingerprint

# The store, supervisor, operations, router, metrics and alerts (SQLAlchemy, Alembic, pydantic,
# numpy, ddsketch...) are imported when the station opens, not here: the window imports this
# module before it first paints, and opens the station on a background thread afterwards.
if TYPE_CHECKING:
    from app.rollout.decision import Decision
    from app.store import Store

log = logging.getLogger("edge_station.station")

__all__ = ["API_PORT_ENV", "Station", "StationAlreadyRunning", "StationOptions"]

API_PORT_ENV = "EDGE_STATION_API_PORT"


def _port_problem(host: str, port: int) -> str | None:
    """Why nothing can listen on ``host:port`` (a quick bind), or None when it is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                return f"port {port} on {host} is already in use by another program"
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


class Station(CameraMethods, AlertMethods, RolloutMethods, EvidenceMethods, HealthMethods, FleetMethods):
    """The station of one data dir (at most one per data dir, held by its instance lock)."""

    def __init__(self, options: StationOptions):
        super().__init__(options)
        self.instance_lock: InstanceLock | None = None
        self.api_status = ApiStatus(enabled=False, running=False)
        self._watch: ChangeWatch | None = None

    # ------------------------------------------------------------ lifecycle

    def open(self) -> Station:
        """Migrate, seed, start the supervisor and autostart active cameras."""
        if self._opened:
            return self
        self.paths.ensure()
        lock = InstanceLock.for_data_dir(self.paths.data_dir)
        lock.acquire()  # raises AlreadyRunning: never two supervisors on one data dir
        self.instance_lock = lock
        try:
            self._load_early()
            self._open_parts()
        except BaseException:
            self.close()
            with self._cam_lock:
                self._cameras = {}  # as if never loaded: the store's read never came
            raise
        return self

    def _load_early(self) -> None:
        """Make the supervisor (not started) and read the cameras of a SQLite file at this app's schema
        with the standard library, before SQLAlchemy and the rest of the parts load (most of an open):
        the window's table shows every camera's state from then on. The store's read replaces the list
        once the store is open; any other database shows its cameras from then on, as before."""
        from app.platform.identity import known_station_id
        from app.station.wiring import make_supervisor
        from app.store.preflight import read_cameras

        # the station's own cameras (and those of no station yet), as its store will read them
        mine = known_station_id(self.paths.data_dir) if self.options.fleet else None
        cams = read_cameras(self.paths.db_url, mine)
        if cams is None:
            return
        self._early_supervisor = make_supervisor(self.paths, policy=self.options.policy, owner=self.options.owner)
        with self._cam_lock:
            self._cameras = {c.id: c for c in cams if c.id is not None}

    def _open_parts(self) -> None:
        from app.station.wiring import build_parts

        self._closing.clear()
        def join_fleet(store: Store, stack: contextlib.ExitStack) -> str | None:
            # Before anything is seeded or started: a name clash refuses the station here.
            member = self._join_fleet(store)
            if member is None:
                return None
            stack.callback(self._leave_fleet)  # marks it stopped while the store is still open
            return member.station_id  # the station's own cameras, rules, settings (app/store/scope.py)

        parts = self._parts = build_parts(self.paths, seed_demo=self.options.seed_demo, policy=self.options.policy,
                                          owner=self.options.owner, hooks=self, on_store=join_fleet,
                                          supervisor=self._early_supervisor,
                                          fleet_id=lambda: self.fleet.station_id if self.fleet is not None else None)
        self._early_supervisor = None
        # The baseline is taken before the cameras are first loaded, so a change that lands
        # between that load and the watch's first poll is not missed.
        fingerprint = DbFingerprint(parts.store.engine)
        baseline = fingerprint()
        self._reload_cameras()
        if self.options.api is not None:
            self._start_api()
        self._opened = True
        if self.options.autostart:
            self.autostart()
        self._watch = ChangeWatch(fingerprint, self._on_database_changed,
                                  self.options.watch_interval).start(baseline)
        if self.fleet is not None:
            self.fleet.beat_now()  # the first full status (cameras started by now), then every interval
            self.fleet.start()

    def close(self) -> None:
        """Stop every worker (in parallel) and release the database. Idempotent."""
        if self.api is not None:
            self.api.stop()
            self.api = None
        self._closing.set()
        if self.fleet is not None:
            self.fleet.stop_heartbeat()  # marked stopped when the parts close, while the store is open
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        parts, self._parts = self._parts, None
        self._early_supervisor = None  # never started when the parts did not come up
        if parts is not None:
            parts.close()
        if self.instance_lock is not None:
            self.instance_lock.release()
            self.instance_lock = None
        self._opened = False

    def __enter__(self) -> Station:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the local API

    def _start_api(self) -> ApiStatus:
        starter = self.options.api
        assert starter is not None
        self.api = starter(self, self.options.api_port)  # None (and logged) when it cannot start
        self.api_status = status = self._api_status()
        if status.failed:
            log.error("the local API is not running: %s", status.error)
        self.emit(StationEvent("api", data=status))
        return status

    def restart_api(self) -> ApiStatus:
        """Stop the API and start it again as the settings say now (a new port, say); its status."""
        if self.options.api is None:
            return self.api_status
        if self.api is not None:
            self.api.stop()
            self.api = None
        return self._start_api()

    def _api_status(self) -> ApiStatus:
        settings = self.get_settings()
        enabled = settings.get("api.enabled", True)
        host = str(settings.get("api.host", "127.0.0.1") or "127.0.0.1")
        port_setting = settings.get("api.port", 8765)
        env_port = os.environ.get(API_PORT_ENV, "").strip()
        port: int | None
        try:
            port = int(env_port or port_setting)
        except (TypeError, ValueError):
            port = None
        if self.api is not None:
            with contextlib.suppress(Exception):
                port = int(self.api.port)
            return ApiStatus(enabled=True, running=True, host=str(self.api.host), port=port)
        if enabled is False:
            return ApiStatus(enabled=False, running=False, host=host, port=port)
        why = _port_problem(host, port) if port else f"the API port {port_setting!r} is not a port number"
        return ApiStatus(enabled=True, running=False, host=host, port=port,
                         error=why or "it could not start; see the station log")

    # ------------------------------------------------------------ operations

    def call(self, op: str, request: Any, *, actor: str = "operator", force: str | None = None) -> Any:
        """Run one of the thirteen operations by name through the rollout router, audited as ``actor``.

        ``force`` is ``"domain"``, ``"legacy"`` or ``None`` (let the rollout router decide).
        """
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        return self.parts().router.call(op, request, force=force, actor=actor)

    def call_with_decision(self, op: str, request: Any, *, actor: str = "operator",
                           force: str | None = None) -> tuple[Any, Decision]:
        """Like :meth:`call`, and also return the router's decision (path, reason, fallback)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        return self.parts().router.call_with_decision(op, request, force=force, actor=actor)

    def last_decision(self) -> Decision | None:
        """The routing decision of this thread's last call (also when it raised), or None."""
        return self._parts.router.last_decision if self._parts is not None else None


_station_is_a_port: type[StationPort] = Station  # mypy checks that Station provides every method of the port
