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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain import Camera
from app.domain.operations import OPERATIONS, CameraRef, CameraStatus, StopCamera
from app.kiosk.instance import AlreadyRunning as StationAlreadyRunning
from app.kiosk.instance import InstanceLock
from app.platform.paths import StationPaths, sqlite_url
from app.station.events import ApiStatus, StationEvent
from app.station.port import (
    ApiHandle,
    ApiStarter,
    DatabaseCheck,
    EvidenceDisk,
    MetricsReader,
    OperationCounts,
    StationPort,
)

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

__all__ = ["ApiStatus", "Station", "StationAlreadyRunning", "StationEvent", "StationOptions", "run_headless"]

DEMO_CAMERAS_FILE = Path(__file__).resolve().parent.parent / "data" / "demo-cameras.yaml"
SETTING_SEEDED = "station.demo_seeded"
SETTING_RULES_SEEDED = "alerts.default_rules_seeded"
#: set once the "camera offline" rule was seeded (also on a station first started before it shipped)
SETTING_OFFLINE_SEEDED = "alerts.camera_offline_seeded"
#: the audit actor of the restarts and starts the station makes by itself after an edit
EDIT_ACTOR = "station (camera settings changed)"
#: the camera fields a worker reads at start: changing one needs a restart to apply
WORKER_FIELDS = ("source", "max_fps", "loop", "motion", "stall_timeout")


def worker_settings_changed(old: Camera, new: Camera) -> bool:
    """True when ``new`` differs from ``old`` in something a running worker uses."""
    return any(getattr(old, f) != getattr(new, f) for f in WORKER_FIELDS)
SETTING_EVIDENCE_RULE_SEEDED = "evidence.rule_seeded"


API_PORT_ENV = "EDGE_STATION_API_PORT"


def _port_problem(host: str, port: int) -> str | None:
    """Why nothing can listen on ``host:port`` (a quick bind), or None when it is free."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                return f"port {port} on {host} is already in use by another program"
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


@dataclass
class StationOptions:
    paths: StationPaths
    seed_demo: bool = True
    autostart: bool = True
    policy: RestartPolicy | None = None
    watch_interval: float = 1.0
    owner: str | None = None
    api: ApiStarter | None = None  # serve the local control API with this (the window and headless do; tests opt in)
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
        self._change_lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._unsubscribe_supervisor: Callable[[], None] | None = None
        self._opened = False
        self.instance_lock: InstanceLock | None = None
        self._fingerprint_at_open: tuple = ()
        self.api: ApiHandle | None = None
        self.api_status = ApiStatus(enabled=False, running=False)
        self._rules_lock = threading.Lock()  # one rule reload at a time: an older read never wins

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
        self._wire_evidence()
        from app.rollout.canary import Canary

        self.canary = Canary(self.router, lambda: [c.id for c in self.cameras() if c.id is not None]).start()
        if self.options.api:
            self._start_api()
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
        """The default rules ship enabled: each default rule is added once (the setting lists the
        templates seeded, so a rule the operator deleted is never added again and a new default
        still reaches a station seeded before it shipped, once)."""
        from app.alerts import default_rules

        assert self.store is not None
        with self.store.uow() as uow:
            seeded = uow.settings.get(SETTING_RULES_SEEDED)
            if seeded is True:  # seeded before the list was kept: the first three rollout rules
                seeded = ["rollout_error_rate", "rollout_success_rate", "rollout_latency"]
            done = set(seeded) if isinstance(seeded, list) else set()
            if uow.settings.get(SETTING_OFFLINE_SEEDED):
                done.add("camera_offline")
            todo = [r for r in default_rules() if r.template not in done]
            if not todo:
                return
            for rule in todo:
                if uow.rules.get_by_name(rule.name) is None:
                    uow.rules.add(rule)
            uow.settings.set(SETTING_RULES_SEEDED, sorted(done | {r.template for r in todo}))
            uow.settings.set(SETTING_OFFLINE_SEEDED, True)
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
        from app.metrics.tracks import RolloutTrackFeed

        assert self.store is not None and self.supervisor is not None
        self.metrics = MetricsRegistry()
        self.supervisor_feed = SupervisorFeed(self.supervisor, self.metrics).start()
        self.sampler = MetricsSampler(
            [self.supervisor_feed, StationFeed(self.paths.data_dir, self.metrics),
             RolloutFeed(self.router.snapshot, self.metrics), RolloutTrackFeed(self.router.snapshot, self.metrics),
             _RolloutHealthTick(self.router)],
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
        self.probe_runner = ProbeRunner(run_dir=self.paths.run_dir)
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
        if getattr(self, "canary", None) is not None:
            self.canary.stop()
            self.canary = None
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        if getattr(self, "evidence_recorder", None) is not None:
            self._unsubscribe_evidence()
            self.evidence_recorder.close(wait=False)
            self.evidence_recorder = None
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
        if not self.options.api:
            return self.api_status
        if self.api is not None:
            self.api.stop()
            self.api = None
        return self._start_api()

    def _api_status(self) -> ApiStatus:
        assert self.store is not None
        with self.store.uow() as uow:
            enabled = uow.settings.get("api.enabled", True)
            host = str(uow.settings.get("api.host", "127.0.0.1") or "127.0.0.1")
            port_setting = uow.settings.get("api.port", 8765)
        env_port = os.environ.get(API_PORT_ENV, "").strip()
        try:
            port = int(env_port or port_setting)
        except (TypeError, ValueError):
            port = None
        enabled = enabled is not False
        if self.api is not None:
            with contextlib.suppress(Exception):
                port = int(self.api.port)
            return ApiStatus(enabled=True, running=True, host=str(getattr(self.api, "host", host)), port=port)
        if not enabled:
            return ApiStatus(enabled=False, running=False, host=host, port=port)
        why = _port_problem(host, port) if port else f"the API port {port_setting!r} is not a port number"
        return ApiStatus(enabled=True, running=False, host=host, port=port,
                         error=why or "it could not start; see the station log")

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

    def last_decision(self) -> Any:
        """The routing decision of this thread's last call (also when it raised), or None."""
        router = getattr(self, "router", None)
        return router.last_decision if router is not None else None

    # ------------------------------------------------------------ administration (not routed)

    def list_cameras(self) -> list[Camera]:
        """The cameras as stored now (a database read; :meth:`cameras` is the loaded list)."""
        return self.admin.list_cameras()

    def get_camera(self, camera_id: int) -> Camera:
        """One stored camera; ``NotFound`` when there is none."""
        return self.admin.get_camera(camera_id)

    def add_camera(self, camera: Camera) -> Camera:
        """Store a new camera and apply it now (an active one starts when the station autostarts)."""
        saved = self.admin.add_camera(camera)
        self._on_database_changed()
        return saved

    def update_camera(self, camera_id: int, changes: Mapping[str, Any]) -> Camera:
        """Change some fields of a camera and apply it now (a running worker restarts when needed)."""
        saved = self.admin.update_camera(camera_id, changes)
        self._on_database_changed()
        return saved

    def list_rules(self, *, via: str = "domain") -> list[Any]:
        """Every alert rule, read by the ``domain`` (the store) or the ``legacy`` implementation."""
        if via == "legacy":
            return self.legacy_ops.list_rules()
        if via != "domain":
            raise ValueError(f"unknown path {via!r}: give 'domain' or 'legacy'")
        return self.admin.list_rules()

    def get_rule(self, rule_id: int) -> Any:
        return self.admin.get_rule(rule_id)

    def set_rule_enabled(self, rule_id: int, enabled: bool) -> Any:
        """Enable or disable a rule (a real change bumps its version); the alert engine reloads."""
        rule = self.admin.set_rule_enabled(rule_id, enabled)
        self.reload_rules()
        return rule

    def delete_rule(self, rule_id: int) -> None:
        self.admin.delete_rule(rule_id)
        self.reload_rules()

    # ------------------------------------------------------------ alerts (the engine's live view)

    def alerts_running(self) -> bool:
        return getattr(self, "alerts", None) is not None

    def alert_statuses(self) -> list[Any]:
        """The active alert instances (pending and firing)."""
        engine = getattr(self, "alerts", None)
        return list(engine.statuses()) if engine is not None else []

    def firing_alerts(self) -> list[Any]:
        engine = getattr(self, "alerts", None)
        return list(engine.firing()) if engine is not None else []

    def alert_history(self, limit: int = 200) -> list[Any]:
        engine = getattr(self, "alerts", None)
        return list(engine.history(limit)) if engine is not None else []

    def loaded_rules(self) -> list[Any]:
        """The rules the alert engine evaluates now."""
        engine = getattr(self, "alerts", None)
        return list(engine.rules()) if engine is not None else []

    # ------------------------------------------------------------ health and figures

    def supervisor_running(self) -> bool:
        sup = self.supervisor
        return sup is not None and bool(sup.running)

    def worker_count(self) -> int:
        sup = self.supervisor
        return len(sup.statuses()) if sup is not None else 0

    def worker_stats(self, camera_id: int) -> Any:
        """Resource use of the camera's worker (``ProcessStats``), or None."""
        sup = self.supervisor
        return sup.stats(camera_id) if sup is not None else None

    def metrics_reader(self) -> MetricsReader | None:
        """The live metric series (read only), or None before the station opened."""
        return getattr(self, "metrics", None)

    def operation_counts(self) -> dict[tuple[str, str], OperationCounts]:
        """Lifetime counts per (operation, path) of the calls routed here."""
        totals = dict(self.router.metrics.totals)
        return {k: OperationCounts(calls=c.calls, errors=c.errors, fallbacks=c.fallbacks, answers=c.answers)
                for k, c in totals.items()}

    def operation_window(self) -> Any:
        """The router's figures over its health window (``WindowStats``)."""
        return self.router.metrics.summary()

    def observe_operations(self, observer: Callable[[str, str, float], None]) -> Callable[[], None]:
        """Call ``observer(op, path, seconds)`` after every routed call; returns the unsubscribe."""
        observers = self.router.metrics.observers
        observers.append(observer)

        def unsubscribe() -> None:
            if observer in observers:
                observers.remove(observer)

        return unsubscribe

    def database_check(self) -> DatabaseCheck:
        """Whether the database answers (and how fast), and the storage under it."""
        from sqlalchemy import text

        from app.store.db import storage_health

        store = self.store
        if store is None:
            return DatabaseCheck(ok=False, dialect="", error="the database is closed")
        dialect = store.engine.dialect.name
        t0 = time.perf_counter()
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar()
        except Exception as e:
            return DatabaseCheck(ok=False, dialect=dialect, error=f"{type(e).__name__}: {e}"[:300])
        latency_ms = (time.perf_counter() - t0) * 1000.0
        storage = storage_health(store.engine)
        problem = storage["problem"]
        full = problem is not None and str(problem).startswith("disk full")
        return DatabaseCheck(ok=not full, dialect=dialect, latency_ms=latency_ms,
                             error=str(problem) if full else None, free_bytes=storage["free_bytes"],
                             problem=problem)

    # ------------------------------------------------------------ rollout (per track)
    #
    # The window, the CLI and the API use these; each change is validated and audited by
    # app.rollout.control, and every view is told with a "rollout" event. ``track`` is
    # "rules", "cameras" or (where it makes sense) "all".

    def rollout_snapshot(self) -> Any:
        """The router's :class:`~app.rollout.router.RolloutSnapshot` (both tracks, gates, checklists, reports).

        The gates are read from the audit log at most every two seconds (every change made through
        this station or seen in its database resets them at once)."""
        return self.router.snapshot(gate_ttl=2.0)

    def rollout_status(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready document (``tracks`` -> per track settings, gate, checklist, reports)."""
        return self.rollout_snapshot().as_dict()

    def _rollout_changed(self) -> None:
        self.emit(StationEvent("rollout"))

    def rollout_set(self, *, track: str = "all", use_domain: object = None, percent: object = None,
                    reason: str = "set", override_reason: str | None = None, actor: str = "operator") -> Any:
        """Set a track's toggle/percent (raising goes through its gate, or needs ``override_reason``)."""
        s = self.router.set(track=track, use_domain=use_domain, percent=percent, reason=reason,
                            override_reason=override_reason, actor=actor)
        self._rollout_changed()
        return s

    def rollout_advance(self, *, track: str | None, override_reason: str | None = None, actor: str = "operator") -> Any:
        """Advance a track one stage; ``GateRefused`` (with the gate) when it holds and no override is given."""
        result = self.router.advance(track=track, override_reason=override_reason, actor=actor)
        self._rollout_changed()
        return result

    def rollout_rollback(self, *, track: str = "all", reason: str = "manual rollback",
                         actor: str = "operator") -> dict[str, Any]:
        """Roll back a track or all (latched); returns ``{track: checklist dict}`` as verified now."""
        from app.rollout.settings import parse_tracks

        self.router.rollback(track=track, reason=reason, actor=actor)
        self._rollout_changed()
        out = {}
        for t in parse_tracks(track):
            c = self.router.checklist(t)
            out[t] = c.as_dict() if c is not None else None
        return out

    def rollout_resume(self, *, track: str, reason: str, actor: str = "operator") -> Any:
        """Clear a track's rollback latch (audited with ``reason``); the track stays at 0 %."""
        s = self.router.resume(track=track, reason=reason, actor=actor)
        self._rollout_changed()
        return s

    def rollout_options(self, changes: dict[str, object], *, actor: str = "operator") -> Any:
        """Change shared options: auto_rollback, shadow_rate, canary_rate, thresholds and stage holds."""
        s = self.router.set_options(changes, actor=actor)
        self._rollout_changed()
        return s

    def rollout_gate(self, track: str) -> Any:
        return self.router.gate(track)

    def rollout_checklist(self, track: str) -> Any:
        return self.router.checklist(track)

    def rollout_settings(self) -> Any:
        """Both tracks' settings (``RolloutSettings``), as the router holds them."""
        return self.router.settings

    def rollout_health(self) -> Any:
        """The router's current health verdict (``HealthVerdict``)."""
        return self.router.current_health()

    def verify(self, *, actor: str = "operator", progress: Callable[[str], None] | None = None,
               on_step: Callable[[Any], None] | None = None, cancelled: Callable[[], bool] | None = None) -> Any:
        """Run the verification scenario on a scratch station and record the result for the gate.

        Blocking (tens of seconds); a cancelled run raises ``VerificationCancelled`` and records nothing."""
        from app.rollout.verify import run_verification

        report = run_verification(scratch_station, progress=progress, on_step=on_step, cancelled=cancelled)
        control = self.router.control
        if control is not None:
            d = report.as_dict()
            control.record_verification(report.passed, len(report.mismatches), len(report.failures),
                                        actor=actor, detail={"mismatches": d.get("mismatches"),
                                                             "failures": d.get("failures"),
                                                             "errors": report.errors})
            self.router.reload()
            self._rollout_changed()
        return report

    def rollout_reports(self, track: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        from app.rollout.control import report_dict

        assert self.router.control is not None
        return [report_dict(r) for r in self.router.control.list_reports(track, open_only=open_only)]

    def file_report(self, *, track: str, text: str, camera_id: int | None = None, rule_id: int | None = None,
                    operator: str = "operator") -> dict[str, Any]:
        """File a problem report against the current stage of ``track`` (audited; holds its gate)."""
        from app.rollout.control import report_dict

        assert self.router.control is not None
        rep = self.router.control.file_report(track=track, text=text, operator=operator, camera_id=camera_id,
                                              rule_id=rule_id)
        self.router.reload()
        self._rollout_changed()
        return report_dict(rep)

    def resolve_report(self, report_id: int, *, note: str, operator: str = "operator") -> dict[str, Any]:
        from app.rollout.control import report_dict

        assert self.router.control is not None
        rep = self.router.control.resolve_report(report_id, by=operator, note=note)
        self.router.reload()
        self._rollout_changed()
        return report_dict(rep)

    def rehearse_rollback(self, *, track: str = "cameras", actor: str = "operator",
                          progress: Callable[[str], None] | None = None) -> Any:
        """``rollout rehearse``: rehearse and verify a rollback of ``track`` on a scratch station, and
        record the result here (decision point 2). Blocking (seconds): keep it off a GUI thread."""
        from app.rollout.rehearse import rehearse_rollback

        result = rehearse_rollback(scratch_station, track=track, progress=progress)
        assert self.router.control is not None
        self.router.control.record_rehearsal(track, result.passed, [c.as_dict() for c in result.checks],
                                             actor=actor)
        self.router.reload()
        self._rollout_changed()
        return result

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

    def metric_history(self, name: str, labels: Any = None, since: float = 0.0,
                       until: float | None = None) -> tuple[Any, Any]:
        """Stored minute means of one series, ``(times, values)`` as numpy arrays (minute
        middles, unix s): the charts' history from before a restart. Empty without a store."""
        import numpy as np

        from app.metrics.rollup import history_arrays, rollup_history

        if self.store is None:
            return np.empty(0), np.empty(0)
        cols = history_arrays(rollup_history(self.store, name, labels, since, until))
        return cols["t"] + 30.0, cols["mean"]

    def metric_series(self, name: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """The stored (rolled-up) series keys of one metric, e.g. every camera's ``fps``."""
        from app.store.rollups import RollupRepository

        if self.store is None:
            return []
        with self.store.uow() as uow:
            return [k for k in RollupRepository(uow.session).series_keys() if k[0] == name]

    def preview_path(self, camera_id: int) -> Path | None:
        """The camera's shared-memory preview slot (read it with app.worker.preview.PreviewReader)."""
        return self.supervisor.preview_path(camera_id) if self.supervisor else None

    def autostart(self, *, actor: str = "station") -> None:
        """Start every active camera that is not running yet (used at open and by 'Start all')."""
        from app.supervisor import WorkerState

        for cam in self.cameras():
            if not cam.active or cam.id is None:
                continue
            st = self.supervisor.status(cam.id) if self.supervisor else None
            if st is not None and st.state not in (WorkerState.STOPPED, WorkerState.FAILED):
                continue
            try:
                self.call("start_camera", CameraRef(cam.id), actor=actor)
            except Exception as e:  # one bad camera must not keep the others from starting
                log.warning("autostart of camera %s (%s) failed: %s", cam.id, cam.name, e)

    def stop_all(self, *, actor: str = "station") -> None:
        """Stop every camera whose worker is not stopped."""
        from app.supervisor import WorkerState

        for cam in self.cameras():
            if cam.id is None:
                continue
            st = self.supervisor.status(cam.id) if self.supervisor else None
            if st is not None and st.state != WorkerState.STOPPED:
                try:
                    self.call("stop_camera", StopCamera(cam.id), actor=actor)
                except Exception as e:
                    log.warning("stop of camera %s failed: %s", cam.id, e)

    def reload_cameras(self) -> None:
        """Re-read cameras, rules and rollout settings now (the watcher does it within a second).

        A running camera whose worker settings changed (source, fps cap, loop, motion,
        stall timeout) is restarted once through the router, audited as ``station``;
        a camera added as active starts when the station autostarts its cameras.
        """
        self._on_database_changed()

    def _apply_camera_edit(self, camera: Camera) -> None:
        from app.supervisor import WorkerState

        st = self.supervisor.status(camera.id) if self.supervisor else None
        if st is None or st.state in (WorkerState.STOPPED, WorkerState.STOPPING):
            return  # a stopped worker reads the new settings when it next starts
        log.info("camera %s (%s): worker settings changed, restarting its worker", camera.id, camera.name)
        try:
            self.router.call("restart_camera", CameraRef(camera.id), actor=EDIT_ACTOR)
        except Exception as e:
            log.warning("restart of camera %s after an edit failed: %s", camera.id, e)

    def _start_added_camera(self, camera: Camera) -> None:
        log.info("camera %s (%s) added as active: starting it", camera.id, camera.name)
        try:
            self.router.call("start_camera", CameraRef(camera.id), actor=EDIT_ACTOR)
        except Exception as e:
            log.warning("start of the added camera %s failed: %s", camera.id, e)

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
        self._evidence_settings_cache = None
        self.emit(StationEvent("settings"))

    def import_file(self, path: Path | str, *, replace: bool = False) -> ImportReport:
        from app.store.yaml_io import import_cameras, max_file_bytes, parse_cameras_file

        assert self.store is not None
        cameras = parse_cameras_file(path, max_bytes=max_file_bytes(self.store))
        report = import_cameras(self.store, cameras, replace=replace)
        self._on_database_changed()
        return report

    # ------------------------------------------------------------ evidence (snapshots and clips of alerts)

    def _wire_evidence(self) -> None:
        """The evidence store in the data dir, its recorder on the alert stream, its sampler feed
        (free-space floor, retention) and the webhook's snapshot/clip URLs."""
        from app.alerts.templates import evidence_blocked
        from app.evidence import EvidenceFeed, EvidenceRecorder, EvidenceStore

        assert self.store is not None and self.supervisor is not None
        self._evidence_settings_cache: tuple[float, Any] | None = None
        self.evidence_store = EvidenceStore(self.paths.data_dir / "evidence", self.store)
        self.evidence_store.sweep(parts_older_than=0.0)  # what workers of an earlier run left half-written
        self.evidence_settings()  # also hands the pre-roll to the supervisor
        self.evidence_recorder = EvidenceRecorder(
            self.evidence_store, self.supervisor, settings=self.evidence_settings,
            camera_name=lambda cid: (cam.name if (cam := self.camera(cid)) else None),
            on_change=lambda ev, problem: self.emit(StationEvent(
                "evidence", ev.camera_id if ev else None, ev if ev is not None else problem)),
        )
        self._unsubscribe_evidence = self.alerts.subscribe(self.evidence_recorder.on_alert)
        feed = EvidenceFeed(self.evidence_store, self.metrics, self.evidence_settings, self.evidence_recorder)
        self.sampler.feeds = [*self.sampler.feeds, feed]
        self.dispatcher.document_hook = self._webhook_evidence
        with self.store.uow() as uow:
            if not uow.settings.get(SETTING_EVIDENCE_RULE_SEEDED):
                rule = evidence_blocked()
                if uow.rules.get_by_name(rule.name) is None:
                    uow.rules.add(rule)
                uow.settings.set(SETTING_EVIDENCE_RULE_SEEDED, True)
                uow.commit()
        self.reload_rules()

    def reload_rules(self) -> None:
        """Make the alert engine re-read its rules now. Serialised, so that a reload that read the
        database before a change cannot finish after one that read it afterwards (the window's
        rule editor and the database watcher both reload)."""
        with self._rules_lock:
            if getattr(self, "alerts", None) is not None:
                self.alerts.load_rules()

    def evidence_blocked(self) -> str | None:
        """Why evidence is not being written now (the disk at its free-space floor), or None."""
        rec = getattr(self, "evidence_recorder", None)
        return rec.blocked if rec is not None else None

    def evidence_settings(self) -> Any:
        """The ``evidence.*`` settings as an :class:`app.domain.evidence.EvidenceSettings` (cached 2 s)."""
        from app.domain.evidence import EvidenceSettings

        cached = getattr(self, "_evidence_settings_cache", None)
        now = time.monotonic()
        if cached is not None and now - cached[0] < 2.0:
            return cached[1]
        values = self.get_settings() if self.store is not None else {}
        settings = EvidenceSettings.from_settings(values)
        self._evidence_settings_cache = (now, settings)
        if self.supervisor is not None:
            self.supervisor.preroll_seconds = settings.preroll_s  # workers started from now on
        return settings

    def evidence_path(self, evidence: Any) -> Path:
        """Where one piece of evidence (``Evidence``) is on disk."""
        return self.evidence_store.path_of(evidence)

    def evidence_disk(self) -> EvidenceDisk:
        """The evidence folder, the bytes it holds and its disk's free space."""
        es = self.evidence_store
        return EvidenceDisk(root=es.root, total_bytes=es.total_bytes(), free_bytes=es.free_space(es.root))

    def evidence_for_event(self, event_id: int) -> list[Any]:
        """Every snapshot and clip of an alert event (``Evidence``), oldest first."""
        return self.evidence_store.for_event(event_id)

    def evidence_for_events(self, event_ids: list[int]) -> dict[int, list[Any]]:
        return self.evidence_store.for_events(event_ids)

    def evidence_failures(self, event_id: int) -> list[str]:
        """Why evidence of the event is missing (since this station started), e.g. the camera was down."""
        rec = getattr(self, "evidence_recorder", None)
        return rec.failures_for(event_id) if rec is not None else []

    def event_snapshot_path(self, event_id: int, moment: str = "fired") -> Path | None:
        """The event's snapshot file (``moment`` "fired" or "resolved"), or None."""
        for ev in reversed(self.evidence_store.for_event(event_id)):
            if ev.kind == "snapshot" and ev.moment == moment:
                path = self.evidence_store.path_of(ev)
                return path if path.exists() else None
        return None

    def event_snapshot(self, event_id: int, moment: str = "fired") -> tuple[bytes, str] | None:
        """The event's snapshot as (bytes, content type), or None (the API's ``/snapshot``)."""
        path = self.event_snapshot_path(event_id, moment)
        if path is None:
            return None
        return path.read_bytes(), "image/png" if path.suffix == ".png" else "image/jpeg"

    def event_clip_path(self, event_id: int) -> Path | None:
        """The event's newest clip (MP4), or None (the API's ``/clip``)."""
        for ev in reversed(self.evidence_store.for_event(event_id)):
            if ev.kind == "clip":
                path = self.evidence_store.path_of(ev)
                return path if path.exists() else None
        return None

    def evidence_file(self, evidence_id: int) -> tuple[Path, Any] | None:
        """(file, Evidence) of one piece of evidence, or None."""
        ev = self.evidence_store.get(evidence_id)
        if ev is None:
            return None
        path = self.evidence_store.path_of(ev)
        return (path, ev) if path.exists() else None

    def save_clip(self, camera_id: int, *, pre: float | None = None, post: float | None = None,
                  event_id: int | None = None) -> Any:
        """Write a clip of the camera now (pre-roll + post-roll, the settings unless given) and list it.

        Blocks for about ``post`` seconds; raises ``app.evidence.EvidenceError`` with the reason.
        """
        from app.evidence import EvidenceError

        if self.camera(camera_id) is None:
            raise EvidenceError(f"camera {camera_id} does not exist")
        return self.evidence_recorder.clip(camera_id, event_id=event_id, moment="manual", pre=pre, post=post)

    def save_snapshot(self, camera_id: int, *, event_id: int | None = None) -> Any:
        """Store a full-resolution JPEG of the camera now (evidence, moment "manual")."""
        from app.evidence import EvidenceError

        if self.camera(camera_id) is None:
            raise EvidenceError(f"camera {camera_id} does not exist")
        return self.evidence_recorder.snapshot(camera_id, event_id=event_id, moment="manual")

    def list_evidence(self, camera_id: int | None = None, limit: int = 1000) -> list[Any]:
        return self.evidence_store.list(camera_id, limit)

    def evidence_usage(self) -> list[Any]:
        """Per camera: snapshots, clips, bytes, oldest and newest (``EvidenceUsage``)."""
        return self.evidence_store.usage()

    def delete_evidence(self, evidence_ids: list[int]) -> int:
        items = [ev for i in evidence_ids if (ev := self.evidence_store.get(i)) is not None]
        freed = self.evidence_store.delete(items)
        self.emit(StationEvent("evidence"))
        return freed

    def delete_camera_evidence(self, camera_id: int) -> tuple[int, int]:
        """Remove a camera's evidence now: (files, bytes)."""
        out = self.evidence_store.delete_camera(camera_id)
        self.emit(StationEvent("evidence", camera_id))
        return out

    def remove_camera(self, camera_id: int, *, delete_evidence: bool = False) -> tuple[int, int]:
        """Remove a camera; its evidence is kept until retention unless ``delete_evidence``.
        Returns the (files, bytes) of evidence removed with it."""
        self.admin.remove_camera(camera_id)
        removed = self.delete_camera_evidence(camera_id) if delete_evidence else (0, 0)
        self._on_database_changed()
        return removed

    def export_event(self, event_id: int, dest: Path | str) -> Path:
        """A ZIP with the event as JSON, its snapshots and clips (for handing to someone)."""
        from app.alerts import StoreEventSink
        from app.evidence.export import export_event

        assert self.store is not None
        event = StoreEventSink(self.store).get(event_id)
        if event is None:
            raise ValueError(f"alert event {event_id} does not exist")
        return export_event(self.evidence_store, event, Path(dest))

    def _webhook_evidence(self, change: Any, doc: dict) -> dict:
        """A webhook for a camera alert carries the API URLs of its snapshot and clip. It waits
        (up to 6 s, on a notification thread) for the snapshot, so the URL answers when fetched."""
        ev = change.event
        if change.camera_id is None or ev is None or ev.id is None or self.api is None:
            return doc
        moment = "resolved" if str(change.kind) == "resolved" else "fired"
        deadline = time.monotonic() + 6.0
        while self.event_snapshot_path(ev.id, moment) is None and time.monotonic() < deadline:
            if self._stop.wait(0.1):
                break
        base = f"{self.api.url.rstrip('/')}/api/v1/alerts/events/{ev.id}"
        return {**doc, "snapshot_url": f"{base}/snapshot", "clip_url": f"{base}/clip"}

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
        with self._change_lock:  # the watcher and reload_cameras(): each change is applied once
            self._apply_database_change()

    def _apply_database_change(self) -> None:
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
                elif new is not None and worker_settings_changed(old, new):
                    self._apply_camera_edit(new)
            if self._opened and self.options.autostart:
                for cid, new in after.items():
                    if new.active and cid not in before:
                        self._start_added_camera(new)
        self.reload_rules()  # a rule may have been added, changed or disabled
        if getattr(self, "router", None) is not None:
            self.router.reload()  # rollout settings changed by `edge-station rollout ...`
        if before != after:
            self.emit(StationEvent("cameras"))


class _RolloutHealthTick:
    """Judges rollout health every sampler tick, so auto-rollback does not wait for the next call."""

    def __init__(self, router: Router):
        self._router = router

    def poll(self, now: float) -> None:
        self._router.health_tick()


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
    """A throwaway station for ``edge-station verify`` and ``rollout rehearse``: temporary database,
    synthetic cameras.

    Nothing autostarts; an active ``test://moving`` camera and an inactive
    ``test://still`` one are added. Everything is stopped and deleted on exit.
    """
    from app.platform.paths import resolve_paths
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
                store=station.store,
            )
        finally:
            station.close()


_station_is_a_port: type[StationPort] = Station  # mypy checks that Station provides every method of the port
