"""The composition root: one object that wires the store, the supervisor, both
implementations of the operations, the rollout router, metrics and alerts.

Qt-free. The window, the headless runner, the CLI and the API all talk to a
:class:`Station`. Blocking work is theirs to keep off a GUI thread; events come
from background threads and the UI bridges them into Qt signals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain import Camera
from app.domain.operations import OPERATIONS, CameraRef, CameraStatus, StopCamera
from app.kiosk.instance import AlreadyRunning as StationAlreadyRunning
from app.kiosk.instance import InstanceLock
from app.paths import StationPaths, sqlite_url

# The store, supervisor, operations, router, metrics and alerts (SQLAlchemy, Alembic, pydantic,
# numpy, ddsketch...) are imported when the station opens, not here: the window imports this
# module before it first paints, and opens the station on a background thread afterwards.
if TYPE_CHECKING:
    from app.rollout.router import Router
    from app.rollout.verify import ScratchStation
    from app.store import Store
    from app.store.yaml_io import ImportReport
    from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent

log = logging.getLogger("edge_station.station")

__all__ = ["Station", "StationAlreadyRunning", "StationEvent", "StationOptions", "run_headless"]

DEMO_CAMERAS_FILE = Path(__file__).resolve().parent / "data" / "demo-cameras.yaml"
SETTING_SEEDED = "station.demo_seeded"
SETTING_RULES_SEEDED = "alerts.default_rules_seeded"


@dataclass(frozen=True)
class StationEvent:
    """Something a view may want to redraw for.

    kinds: ``state`` (a camera's worker changed state; data = CameraStatus),
    ``cameras`` (the camera list changed, here or in another process),
    ``alert`` (an alert fired/resolved/acknowledged), ``settings``, ``log``.
    """

    kind: str
    camera_id: int | None = None
    data: Any = None
    ts: float = field(default_factory=time.time)


@dataclass
class StationOptions:
    paths: StationPaths
    seed_demo: bool = True
    autostart: bool = True
    policy: RestartPolicy | None = None
    watch_interval: float = 1.0
    owner: str | None = None
    api: bool = False  # serve the local control API (the window and headless do; tests opt in)
    api_port: int | None = None  # --api-port: overrides EDGE_STATION_API_PORT and the api.port setting


class Station:
    def __init__(self, options: StationOptions):
        self.options = options
        self.paths = options.paths
        self.store: Store | None = None
        self.supervisor: Supervisor | None = None
        self._subscribers: list[Callable[[StationEvent], None]] = []
        self._sub_lock = threading.Lock()
        self._cameras: dict[int, Camera] = {}
        self._cam_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._unsubscribe_supervisor: Callable[[], None] | None = None
        self._opened = False
        self.instance_lock: InstanceLock | None = None
        self._fingerprint_at_open: tuple = ()
        self.api = None

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
            self._open_parts()
        except BaseException:
            self.close()
            raise
        return self

    def _open_parts(self) -> None:
        from app.store import open_store
        from app.supervisor import Supervisor

        self.store = open_store(self.paths.db_url)
        if self.options.seed_demo:
            self._seed_demo()
        self.supervisor = Supervisor(
            self.paths.run_dir, self.paths.log_dir, policy=self.options.policy,
            owner=self.options.owner or uuid.uuid4().hex[:12],
        )
        self.supervisor.start()
        self._unsubscribe_supervisor = self.supervisor.subscribe(self._on_supervisor_event)
        self._wire_operations()
        self._seed_default_rules()
        self._fingerprint_at_open = self._db_fingerprint()
        self._reload_cameras()
        self._wire_metrics_and_alerts()
        if self.options.api:
            from app.api import start_for_station

            self.api = start_for_station(self)  # None (and logged) when the port is taken
        self._opened = True
        if self.options.autostart:
            self.autostart()
        self._watcher = threading.Thread(target=self._watch_database, name="station-db-watch", daemon=True)
        self._watcher.start()

    def _seed_demo(self) -> None:
        """On the first start of an empty database, add the demo cameras (once, ever)."""
        from app.store.yaml_io import parse_cameras_file

        assert self.store is not None
        demo = parse_cameras_file(DEMO_CAMERAS_FILE)
        with self.store.uow() as uow:
            if uow.settings.get(SETTING_SEEDED) or uow.cameras.count():
                return
            for cam in demo:
                uow.cameras.add(cam)
            uow.settings.set(SETTING_SEEDED, True)
            uow.commit()
        log.info("seeded %d demo cameras", len(demo))

    def _seed_default_rules(self) -> None:
        """The rollout health rules ship enabled: add them once, on the first start."""
        from app.alerts import default_rules

        assert self.store is not None
        with self.store.uow() as uow:
            if uow.settings.get(SETTING_RULES_SEEDED):
                return
            for rule in default_rules():
                if uow.rules.get_by_name(rule.name) is None:
                    uow.rules.add(rule)
            uow.settings.set(SETTING_RULES_SEEDED, True)
            uow.commit()

    def _wire_metrics_and_alerts(self) -> None:
        from app.alerts import AlertEngine, Dispatcher
        from app.metrics import (
            MetricsRegistry,
            MetricsSampler,
            RolloutFeed,
            Rollup,
            StationFeed,
            SupervisorFeed,
        )

        assert self.store is not None and self.supervisor is not None
        self.metrics = MetricsRegistry()
        self.supervisor_feed = SupervisorFeed(self.supervisor, self.metrics).start()
        self.sampler = MetricsSampler(
            [self.supervisor_feed, StationFeed(self.paths.data_dir, self.metrics),
             RolloutFeed(self.router.snapshot, self.metrics), _RolloutHealthTick(self.router)],
            rollup=Rollup(self.metrics, self.store),
        ).start()
        self.dispatcher = Dispatcher()

        def camera_name(camera_id: int) -> str | None:
            cam = self.camera(camera_id)
            return cam.name if cam else None

        self.alerts = AlertEngine(
            self.metrics, store=self.store, dispatcher=self.dispatcher,
            cameras=self.supervisor_feed.watched_cameras, camera_name=camera_name,
        )
        self.alerts.load_rules()
        self._unsubscribe_alerts = self.alerts.subscribe(
            lambda change: self.emit(StationEvent("alert", change.camera_id, change)))
        self.alerts.start()

    def _wire_operations(self) -> None:
        from app.legacy.operations import LegacyOperations
        from app.rollout.router import Router
        from app.services.admin import StationAdmin
        from app.services.operations import DomainOperations
        from app.services.ports import HeartbeatHistory, ProbeRunner

        assert self.store is not None and self.supervisor is not None
        self.history = HeartbeatHistory().attach(self.supervisor)
        self.probe_runner = ProbeRunner()
        self.domain_ops = DomainOperations(self.store, self.supervisor, self.probe_runner, self.history)
        self.legacy_ops = LegacyOperations(self.store.engine, self.supervisor, self.probe_runner, self.history)
        self.admin = StationAdmin(self.store, self.supervisor)
        # Every operation goes through the rollout router (settings, env overrides, audit, metrics).
        self.router = Router(self.legacy_ops, self.domain_ops, self.store)
        self.ops = self.router

    def close(self) -> None:
        """Stop every worker (in parallel) and release the database. Idempotent."""
        if self.api is not None:
            self.api.stop()
            self.api = None
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        if getattr(self, "alerts", None) is not None:
            self._unsubscribe_alerts()
            self.alerts.stop()
            self.dispatcher.close()
            self.alerts = None
        if getattr(self, "sampler", None) is not None:
            self.sampler.stop()
            self.supervisor_feed.close()
            self.sampler = None
        if self._unsubscribe_supervisor:
            self._unsubscribe_supervisor()
            self._unsubscribe_supervisor = None
        if getattr(self, "history", None) is not None:
            self.history.detach()
        if self.supervisor is not None:
            self.supervisor.shutdown()
            self.supervisor = None
        if getattr(self, "router", None) is not None:
            self.router.close()  # flushes the audit buffer while the store is still open
        if self.store is not None:
            self.store.dispose()
            self.store = None
        if self.instance_lock is not None:
            self.instance_lock.release()
            self.instance_lock = None
        self._opened = False

    def __enter__(self) -> Station:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ operations

    def call(self, op: str, request: Any, *, force: str | None = None, actor: str = "operator") -> Any:
        """Run one of the thirteen operations by name (window actions, CLI, API).

        ``force`` is ``"domain"``, ``"legacy"`` or ``None`` (let the rollout router decide).
        """
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        return self.router.call(op, request, force=force, actor=actor)

    def call_with_decision(self, op: str, request: Any, *, force: str | None = None,
                           actor: str = "operator") -> tuple[Any, Any]:
        """Like :meth:`call`, and also return the router's decision (path, reason, fallback)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        return self.router.call_with_decision(op, request, force=force, actor=actor)

    # ------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[StationEvent], None]) -> Callable[[], None]:
        with self._sub_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: StationEvent) -> None:
        with self._sub_lock:
            subs = list(self._subscribers)
        for cb in subs:
            try:
                cb(event)
            except Exception:  # a broken view must not break the station
                log.exception("station event subscriber failed")

    def _on_supervisor_event(self, ev: SupervisorEvent) -> None:
        if ev.kind in ("state", "exit", "failed"):
            self.emit(StationEvent("state", ev.camera_id, ev))

    # ------------------------------------------------------------ cameras

    def cameras(self) -> list[Camera]:
        with self._cam_lock:
            return list(self._cameras.values())

    def camera(self, camera_id: int) -> Camera | None:
        with self._cam_lock:
            return self._cameras.get(camera_id)

    def _reload_cameras(self) -> list[Camera]:
        assert self.store is not None
        with self.store.uow() as uow:
            cams = uow.cameras.list()
        with self._cam_lock:
            self._cameras = {c.id: c for c in cams}  # type: ignore[misc]
        return cams

    def live_status(self) -> list[CameraStatus]:
        """Every camera's state from the supervisor's snapshot: cheap, no database, not routed."""
        from app.services.operations import to_camera_status

        sup = self.supervisor
        statuses = sup.statuses() if sup is not None else {}
        out = []
        for cam in self.cameras():
            ws = statuses.get(cam.id)
            if ws is None and sup is not None:
                ws = sup.status(cam.id)  # a camera that never ran: the supervisor's idle status
            if ws is not None:
                out.append(to_camera_status(cam, ws))
        return out

    def preview_path(self, camera_id: int) -> Path | None:
        """The camera's shared-memory preview slot (read it with app.worker.preview.PreviewReader)."""
        return self.supervisor.preview_path(camera_id) if self.supervisor else None

    def autostart(self) -> None:
        """Start every active camera that is not running yet (used at open and by 'Start all')."""
        from app.supervisor import WorkerState

        for cam in self.cameras():
            if not cam.active:
                continue
            st = self.supervisor.status(cam.id) if self.supervisor else None
            if st is not None and st.state not in (WorkerState.STOPPED, WorkerState.FAILED):
                continue
            try:
                self.ops.start_camera(CameraRef(cam.id))
            except Exception as e:  # one bad camera must not keep the others from starting
                log.warning("autostart of camera %s (%s) failed: %s", cam.id, cam.name, e)

    def stop_all(self) -> None:
        from app.supervisor import WorkerState

        for cam in self.cameras():
            st = self.supervisor.status(cam.id) if self.supervisor else None
            if st is not None and st.state != WorkerState.STOPPED:
                try:
                    self.ops.stop_camera(StopCamera(cam.id))
                except Exception as e:
                    log.warning("stop of camera %s failed: %s", cam.id, e)

    def reload_cameras(self) -> None:
        """Re-read cameras, rules and rollout settings now (the watcher does it within a second)."""
        self._on_database_changed()

    def export_file(self, path: Path | str, *, include_secrets: bool = False) -> int:
        from app.store.yaml_io import export_file

        assert self.store is not None
        return export_file(self.store, path, include_secrets=include_secrets)

    def get_settings(self) -> dict[str, Any]:
        """Every stored setting (rollout settings go through the router, not here)."""
        assert self.store is not None
        with self.store.uow() as uow:
            return uow.settings.all()

    def set_settings(self, values: dict[str, Any], *, actor: str = "operator") -> None:
        """Store settings in one transaction, each change audited with its old and new value."""
        from app.domain.audit import AuditEntry

        assert self.store is not None
        with self.store.uow() as uow:
            for key, value in values.items():
                old = uow.settings.get(key)
                if old == value:
                    continue
                uow.settings.set(key, value)
                uow.audit.add(AuditEntry(op="settings.set", outcome="ok", key=key, actor=actor,
                                         detail={"old": old, "new": value}))
            uow.commit()
        self.emit(StationEvent("settings"))

    def import_file(self, path: Path | str, *, replace: bool = False) -> ImportReport:
        from app.store.yaml_io import import_cameras, parse_cameras_file

        assert self.store is not None
        report = import_cameras(self.store, parse_cameras_file(path), replace=replace)
        self._on_database_changed()
        return report

    def import_text(self, text: str, *, replace: bool = False, filename: str = "<request>") -> ImportReport:
        """Import cameras from YAML text (the cameras file format), all or nothing."""
        from app.store.yaml_io import import_cameras, parse_cameras_text

        assert self.store is not None
        report = import_cameras(self.store, parse_cameras_text(text, filename), replace=replace)
        self._on_database_changed()
        return report

    def export_text(self, *, include_secrets: bool = False) -> str:
        """Every camera as a cameras file (passwords masked unless asked for)."""
        from app.store.yaml_io import export_text

        assert self.store is not None
        with self.store.uow() as uow:
            return export_text(uow.cameras.list(), include_secrets=include_secrets)

    def alert_events(self, limit: int = 200, *, rule_id: int | None = None, camera_id: int | None = None,
                     unacknowledged: bool = False, active: bool | None = None) -> list:
        """Stored alert events, newest first, filtered."""
        from app.store.alert_events import AlertEventRepository

        assert self.store is not None
        with self.store.uow() as uow:
            events = AlertEventRepository(uow.session).recent(
                limit if active is None else max(limit, 5000), rule_id=rule_id, camera_id=camera_id,
                unacknowledged=unacknowledged)
        if active is not None:
            events = [e for e in events if e.active == active][:limit]
        return events

    def alert_event(self, event_id: int):
        from app.domain.errors import NotFound
        from app.store.alert_events import AlertEventRepository

        assert self.store is not None
        with self.store.uow() as uow:
            ev = AlertEventRepository(uow.session).get(event_id)
        if ev is None:
            raise NotFound(f"alert event {event_id} does not exist", details={"event_id": event_id})
        return ev

    def acknowledge_alert(self, event_id: int, by: str):
        """Acknowledge a stored alert event (its repeats stop); the first acknowledgement stays."""
        if getattr(self, "alerts", None) is None:
            from app.domain.errors import Unavailable

            raise Unavailable("the alert engine is not running")
        return self.alerts.acknowledge(event_id, by)

    def audit_page(self, limit: int = 100, *, before: int | None = None, op_prefix: str | None = None) -> list:
        """Audit entries newest first; ``before`` an id for the next page."""
        assert self.store is not None
        with self.store.uow() as uow:
            return uow.audit.recent(limit, op_prefix=op_prefix, before=before)

    def record_admin(self, op: str, *, key: str = "", outcome: str = "ok", actor: str = "operator",
                     detail: dict | None = None) -> None:
        """Audit one station administration change (camera and rule CRUD, imports) made outside the router."""
        from app.domain.audit import AuditEntry

        assert self.store is not None
        with self.store.uow() as uow:
            uow.audit.add(AuditEntry(op=op, outcome=outcome, key=key, actor=actor, detail=dict(detail or {})))
            uow.commit()

    # ------------------------------------------------------------ other processes' changes

    def _watch_database(self) -> None:
        """Notice commits made by any connection or process (a CLI import, say) and apply them.

        SQLite: every commit writes the database file or its WAL, so the files' identity, size
        and modification time are a fingerprint that costs no query and needs no long-lived
        connection. Other databases: a fingerprint query over the tables a station caches.
        The baseline is taken in :meth:`open` *before* the cameras are first loaded, so a
        change that lands between that load and the first poll is not missed.
        """
        last = self._fingerprint_at_open
        while not self._stop.wait(self.options.watch_interval):
            try:
                version = self._db_fingerprint()
            except Exception:
                log.debug("database change poll failed", exc_info=True)
                continue
            if version != last:
                try:
                    self._on_database_changed()
                except Exception:
                    log.exception("applying a database change failed")
            last = version

    def _db_fingerprint(self) -> tuple:
        assert self.store is not None
        engine = self.store.engine
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            return _file_fingerprint(engine.url.database)
        return _query_fingerprint(engine)

    def _on_database_changed(self) -> None:
        from app.supervisor import WorkerState

        before = {c.id: c for c in self.cameras()}
        after = {c.id: c for c in self._reload_cameras()}
        sup = self.supervisor
        if sup is not None:
            for cid, old in before.items():
                new = after.get(cid)
                gone_or_off = new is None or (old.active and not new.active)
                if gone_or_off and sup.status(cid).state != WorkerState.STOPPED:
                    try:
                        sup.stop_worker(cid)
                    except Exception as e:
                        log.warning("stopping camera %s after it was removed/deactivated: %s", cid, e)
        if getattr(self, "alerts", None) is not None:
            self.alerts.load_rules()  # a rule may have been added, changed or disabled
        if getattr(self, "router", None) is not None:
            self.router.reload()  # rollout settings changed by `edge-station rollout ...`
        if before != after:
            self.emit(StationEvent("cameras"))


class _RolloutHealthTick:
    """Judges rollout health every sampler tick, so auto-rollback does not wait for the next call."""

    def __init__(self, router: Router):
        self._router = router

    def poll(self, now: float) -> None:
        self._router.check_health()


def _file_fingerprint(db_file: str) -> tuple:
    out = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(db_file + suffix)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _query_fingerprint(engine) -> tuple:
    from sqlalchemy import text

    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT (SELECT count(*) FROM cameras), (SELECT max(updated_at) FROM cameras), "
            "(SELECT count(*) FROM alert_rules), (SELECT max(updated_at) FROM alert_rules), "
            "(SELECT max(updated_at) FROM settings)"
        )).one())


def status_line(station: Station) -> str:
    parts = []
    for st in station.live_status():
        fps = f" {st.fps:.1f} fps" if st.fps is not None and st.state.value == "running" else ""
        src = f" source {st.source}" if st.source and st.source != "up" else ""
        parts.append(f"{st.name}: {st.state.value}{fps}{src}")
    return "; ".join(parts) or "no cameras"


def run_headless(station: Station, duration: float | None = None, status_interval: float = 10.0) -> int:
    """Run until SIGTERM/SIGINT (or ``duration`` seconds); stop every worker before returning.

    Prints a status line every ``status_interval`` seconds (0 = never).
    """
    stop = threading.Event()

    def _handler(signum, _frame):
        stop.set()

    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        station.open()  # cleans up after itself when it fails
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        raise
    try:
        active = [c.name for c in station.cameras() if c.active]
        print(f"edge-station headless: {len(station.cameras())} cameras ({len(active)} active); "
              f"data dir {station.paths.data_dir}. Stop with Ctrl-C.", flush=True)
        if station.api is not None:
            print(f"control API on {station.api.url} (token in {station.api.token_path})", flush=True)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            wait = status_interval if status_interval > 0 else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = left if wait is None else min(wait, left)
            if not stop.wait(wait) and status_interval > 0:
                print(f"status: {status_line(station)}", flush=True)
    finally:
        print("edge-station headless: stopping all workers", flush=True)
        station.close()
        for s, h in old.items():
            signal.signal(s, h)
    print("edge-station headless: all workers stopped", flush=True)
    return 0


@contextlib.contextmanager
def scratch_station() -> Iterator[ScratchStation]:
    """A throwaway station for ``edge-station verify``: temporary database, synthetic cameras.

    Nothing autostarts; an active ``test://moving`` camera and an inactive
    ``test://still`` one are added. Everything is stopped and deleted on exit.
    """
    from app.paths import resolve_paths
    from app.rollout.verify import ScratchStation

    with tempfile.TemporaryDirectory(prefix="edge-station-verify-") as tmp:
        station = Station(StationOptions(paths=resolve_paths(tmp, db_url=None), seed_demo=False, autostart=False))
        # resolve_paths(tmp, None) would honour EDGE_STATION_DB; a scratch station never touches it.
        station.paths = StationPaths(Path(tmp).resolve(), sqlite_url(Path(tmp).resolve() / "verify.db"))
        station.open()
        try:
            active = station.admin.add_camera(Camera(name="verify-active", source="test://moving?size=320x180&rate=10"))
            inactive = station.admin.add_camera(Camera(name="verify-inactive", source="test://still", active=False))
            yield ScratchStation(
                legacy=station.legacy_ops, domain=station.domain_ops,
                active_camera=active.id, inactive_camera=inactive.id,  # type: ignore[arg-type]
            )
        finally:
            station.close()
