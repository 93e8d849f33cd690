"""Building a station's parts, in order, and taking them down again in reverse.

:func:`build_parts` opens the store, seeds it, starts the supervisor, builds both
implementations of the operations behind the rollout router, the metrics, the alert
engine, the evidence recorder and the canary. It knows nothing of the facade beyond the
few :class:`Hooks` it calls back (tell the views, look a camera up, the evidence settings).
Everything it starts is pushed on one exit stack, so a build that fails half way and a
station that closes both stop exactly what was started, newest first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.station.events import StationEvent

if TYPE_CHECKING:
    from app.alerts import AlertEngine, Dispatcher
    from app.domain import Camera
    from app.domain.alerts import AlertChange
    from app.domain.evidence import EvidenceSettings
    from app.evidence import EvidenceRecorder, EvidenceStore
    from app.legacy.operations import LegacyOperations
    from app.metrics import MetricsRegistry, MetricsSampler, SupervisorFeed
    from app.platform.paths import StationPaths
    from app.rollout.canary import Canary
    from app.rollout.router import Router
    from app.services.admin import StationAdmin
    from app.services.operations import DomainOperations
    from app.services.ports import HeartbeatHistory, ProbeRunner
    from app.store import Store
    from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent

log = logging.getLogger("edge_station.station")

DEMO_CAMERAS_FILE = Path(__file__).resolve().parent.parent / "data" / "demo-cameras.yaml"
SETTING_SEEDED = "station.demo_seeded"
SETTING_RULES_SEEDED = "alerts.default_rules_seeded"
#: set once the "camera offline" rule was seeded (also on a station first started before it shipped)
SETTING_OFFLINE_SEEDED = "alerts.camera_offline_seeded"
SETTING_EVIDENCE_RULE_SEEDED = "evidence.rule_seeded"


class Hooks(Protocol):
    """What the parts call back into the station for."""

    def emit(self, event: StationEvent) -> None: ...

    def camera(self, camera_id: int) -> Camera | None: ...

    def camera_ids(self) -> Sequence[int]: ...

    def webhook_evidence(self, change: AlertChange, doc: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class StationParts:
    """Every part of an open station; :meth:`close` stops them, newest first."""

    store: Store
    supervisor: Supervisor
    history: HeartbeatHistory
    probe_runner: ProbeRunner
    domain_ops: DomainOperations
    legacy_ops: LegacyOperations
    admin: StationAdmin
    router: Router
    metrics: MetricsRegistry
    supervisor_feed: SupervisorFeed
    sampler: MetricsSampler
    dispatcher: Dispatcher
    alerts: AlertEngine
    evidence_store: EvidenceStore
    evidence_recorder: EvidenceRecorder
    evidence_settings: EvidenceSettingsSource
    canary: Canary
    _stack: contextlib.ExitStack

    def close(self) -> None:
        self._stack.close()


def make_supervisor(paths: StationPaths, *, policy: RestartPolicy | None, owner: str | None) -> Supervisor:
    """The station's supervisor, not started yet (it holds nothing until :meth:`Supervisor.start`:
    its idle status of every camera is already the one the station shows)."""
    from app.supervisor import Supervisor

    # Workers are forked by the worker launcher; EDGE_STATION_WORKER_LAUNCHER=spawn execs each one
    # instead (docs/architecture.md, "How workers are started").
    launcher = "spawn" if os.environ.get("EDGE_STATION_WORKER_LAUNCHER", "").strip() == "spawn" else "zygote"
    return Supervisor(paths.run_dir, paths.log_dir, policy=policy, owner=owner or uuid.uuid4().hex[:12],
                      launcher=launcher)


#: how often the station's router looks at the stored rollout settings by itself (seconds)
STATION_SETTINGS_TTL = 5.0


def build_parts(paths: StationPaths, *, seed_demo: bool, policy: RestartPolicy | None, owner: str | None,
                hooks: Hooks, on_store: Callable[[Store, contextlib.ExitStack], str | None] | None = None,
                supervisor: Supervisor | None = None,
                fleet_id: Callable[[], str | None] | None = None) -> StationParts:
    """Open and start every part (raises, having stopped what it started, when one cannot).

    ``on_store`` is called once the store is open and migrated, before anything is seeded or
    started (the station registers in its fleet there); what it pushes on the stack is undone
    when the parts close. It returns the station's id: from then on every part reads and writes
    that station's rows only (``app/store/scope.py``), having first taken over the rows of no
    station (a database from before fleets: ``app/store/ownership.py``). None: every row.
    ``supervisor`` is one from :func:`make_supervisor` not started yet (the station made it early
    to show its cameras' states); it is started where a new one would be. ``fleet_id`` answers this
    station's id in its fleet (None outside one): the rollout router keys the fleet rollout's share with it.
    """
    with contextlib.ExitStack() as stack:
        parts = _build(stack, paths, seed_demo=seed_demo, policy=policy, owner=owner, hooks=hooks,
                       on_store=on_store, supervisor=supervisor, fleet_id=fleet_id)
        parts._stack = stack.pop_all()
        return parts
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns or raises


def _build(stack: contextlib.ExitStack, paths: StationPaths, *, seed_demo: bool, policy: RestartPolicy | None,
           owner: str | None, hooks: Hooks,
           on_store: Callable[[Store, contextlib.ExitStack], str | None] | None = None,
           supervisor: Supervisor | None = None,
           fleet_id: Callable[[], str | None] | None = None) -> StationParts:
    from app.alerts import AlertEngine, Dispatcher
    from app.evidence import EvidenceFeed, EvidenceRecorder, EvidenceStore
    from app.legacy.operations import LegacyOperations
    from app.metrics import (
        MetricsRegistry,
        MetricsSampler,
        RolloutFeed,
        Rollup,
        StationFeed,
        SupervisorFeed,
    )
    from app.metrics.tracks import RolloutTrackFeed
    from app.rollout.canary import Canary
    from app.rollout.router import Router
    from app.services.admin import StationAdmin
    from app.services.operations import DomainOperations
    from app.services.ports import HeartbeatHistory, ProbeRunner
    from app.store import open_store

    store = open_store(paths.db_url)
    stack.callback(store.dispose)
    station_id = on_store(store, stack) if on_store is not None else None
    if station_id is not None:
        from app.store.ownership import take_over_unowned

        take_over_unowned(store.engine, station_id)
        store = store.for_station(station_id)
    routers: list[Router] = []  # closed after the supervisor stopped: it flushes the audit buffer

    def close_routers() -> None:
        for r in routers:
            r.close()

    stack.callback(close_routers)
    if seed_demo:
        seed_demo_cameras(store)
    if supervisor is None:
        supervisor = make_supervisor(paths, policy=policy, owner=owner)
    supervisor.start()
    stack.callback(supervisor.shutdown)
    supervisor.warm_up()  # the worker launcher imports while the cameras load

    def on_supervisor_event(ev: SupervisorEvent) -> None:
        if ev.kind in ("state", "exit", "failed"):
            hooks.emit(StationEvent("state", ev.camera_id, ev))

    stack.callback(supervisor.subscribe(on_supervisor_event))

    # The operations, both implementations, behind the rollout router (settings, env overrides, audit, metrics).
    history = HeartbeatHistory().attach(supervisor)
    stack.callback(history.detach)
    probe_runner = ProbeRunner(run_dir=paths.run_dir)
    domain_ops = DomainOperations(store, supervisor, probe_runner, history)
    legacy_ops = LegacyOperations(store.engine, supervisor, probe_runner, history, station_id=store.station_id)
    admin = StationAdmin(store, supervisor)
    # The station's change watch reloads the router within a second of any commit to the settings,
    # cameras or rules (app/station/watch.py), so its own look at them is only a backstop.
    router = Router(legacy_ops, domain_ops, store, station_id=fleet_id, settings_ttl=STATION_SETTINGS_TTL)
    routers.append(router)
    seed_default_rules(store)

    # Metrics and alerts.
    metrics = MetricsRegistry()
    supervisor_feed = SupervisorFeed(supervisor, metrics).start()
    stack.callback(supervisor_feed.close)
    sampler = MetricsSampler(
        [supervisor_feed, StationFeed(paths.data_dir, metrics), RolloutFeed(router.snapshot, metrics),
         RolloutTrackFeed(router.snapshot, metrics), _RolloutHealthTick(router)],
        rollup=Rollup(metrics, store),
    ).start()
    stack.callback(sampler.stop)
    dispatcher = Dispatcher()
    stack.callback(dispatcher.close)

    def camera_name(camera_id: int) -> str | None:
        cam = hooks.camera(camera_id)
        return cam.name if cam else None

    alerts = AlertEngine(metrics, store=store, dispatcher=dispatcher, cameras=supervisor_feed.watched_cameras,
                         camera_name=camera_name)
    alerts.load_rules()
    stack.callback(alerts.subscribe(lambda change: hooks.emit(StationEvent("alert", change.camera_id, change))))
    alerts.start()
    stack.callback(alerts.stop)

    # Evidence: the store in the data dir, its recorder on the alert stream, its sampler feed
    # (free-space floor, retention) and the webhook's snapshot/clip URLs.
    evidence_store = EvidenceStore(paths.data_dir / "evidence", store)
    evidence_store.sweep(parts_older_than=0.0)  # what workers of an earlier run left half-written
    evidence_settings = EvidenceSettingsSource(store, supervisor)
    evidence_settings()  # also hands the pre-roll to the supervisor
    evidence_recorder = EvidenceRecorder(
        evidence_store, supervisor, settings=evidence_settings, camera_name=camera_name,
        on_change=lambda ev, problem: hooks.emit(StationEvent(
            "evidence", ev.camera_id if ev else None, ev if ev is not None else problem)),
    )
    stack.callback(evidence_recorder.close, wait=False)

    def record_evidence(change: AlertChange) -> None:
        evidence_recorder.on_alert(change)

    stack.callback(alerts.subscribe(record_evidence))
    feed = EvidenceFeed(evidence_store, metrics, evidence_settings, evidence_recorder)
    sampler.feeds = [*sampler.feeds, feed]
    dispatcher.document_hook = hooks.webhook_evidence
    seed_evidence_rule(store)
    alerts.load_rules()

    canary = Canary(router, hooks.camera_ids).start()
    stack.callback(canary.stop)
    return StationParts(
        store=store, supervisor=supervisor, history=history, probe_runner=probe_runner, domain_ops=domain_ops,
        legacy_ops=legacy_ops, admin=admin, router=router, metrics=metrics, supervisor_feed=supervisor_feed,
        sampler=sampler, dispatcher=dispatcher, alerts=alerts, evidence_store=evidence_store,
        evidence_recorder=evidence_recorder, evidence_settings=evidence_settings, canary=canary, _stack=stack,
    )


class EvidenceSettingsSource:
    """The ``evidence.*`` settings as :class:`EvidenceSettings`, read at most every 2 s; each read hands
    the pre-roll to the supervisor (for workers started from then on)."""

    TTL = 2.0

    def __init__(self, store: Store, supervisor: Supervisor):
        self._store = store
        self._supervisor = supervisor
        self._cached: tuple[float, EvidenceSettings] | None = None

    def __call__(self) -> EvidenceSettings:
        from app.domain.evidence import EvidenceSettings

        cached = self._cached
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.TTL:
            return cached[1]
        with self._store.uow() as uow:
            values = uow.settings.all()
        settings = EvidenceSettings.from_settings(values)
        self._cached = (now, settings)
        self._supervisor.preroll_seconds = settings.preroll_s
        return settings

    def invalidate(self) -> None:
        """Read them again next time (the settings were just changed)."""
        self._cached = None


class _RolloutHealthTick:
    """Judges rollout health every sampler tick, so auto-rollback does not wait for the next call."""

    def __init__(self, router: Router):
        self._router = router

    def poll(self, now: float) -> None:
        self._router.health_tick()


# ---------------------------------------------------------------- seeding a new database


def seed_demo_cameras(store: Store) -> None:
    """On the first start of an empty database, add the demo cameras (once, ever).

    Whether to seed is asked first: reading the demo file loads the cameras-file parser (YAML,
    validation), a tenth of a second that every later start would pay before its cameras load."""
    with store.uow() as uow:
        if uow.settings.get(SETTING_SEEDED) or uow.cameras.count():
            return
    from app.domain.errors import ConstraintViolation
    from app.store.yaml_io import parse_cameras_file

    demo = parse_cameras_file(DEMO_CAMERAS_FILE)
    with store.uow() as uow:
        if uow.settings.get(SETTING_SEEDED) or uow.cameras.count():
            return
        try:
            for cam in demo:
                uow.cameras.add(cam)
        except ConstraintViolation:  # camera names are the fleet's: another station has the demo cameras
            uow.rollback()
            log.info("demo cameras not added: another station on this database has them")
            demo = []
        uow.settings.set(SETTING_SEEDED, True)
        uow.commit()
    if demo:
        log.info("seeded %d demo cameras", len(demo))


def seed_default_rules(store: Store) -> None:
    """The default rules ship enabled: each default rule is added once (the setting lists the
    templates seeded, so a rule the operator deleted is never added again and a new default
    still reaches a station seeded before it shipped, once)."""
    from app.domain.errors import ConstraintViolation

    try:
        _seed_rules_once(store)
    except ConstraintViolation as e:  # another station on this database seeded them at the same moment
        log.info("default rules already added by another station on this database (%s)", e)


def _seed_rules_once(store: Store) -> None:
    from app.alerts import default_rules

    with store.uow() as uow:
        seeded = uow.settings.get(SETTING_RULES_SEEDED)
        if seeded is True:  # seeded before the list was kept: the first three rollout rules
            seeded = ["rollout_error_rate", "rollout_success_rate", "rollout_latency"]
        done = set(seeded) if isinstance(seeded, list) else set()
        if uow.settings.get(SETTING_OFFLINE_SEEDED):
            done.add("camera_offline")
        todo = [r for r in default_rules() if r.template not in done]
        if not todo:
            return
        for rule in todo:  # fleet-wide: every station evaluates them on its own cameras
            if uow.rules.get_by_name(rule.name) is None:
                uow.rules.add(rule, fleet_wide=True)
        uow.settings.set(SETTING_RULES_SEEDED, sorted(done | {r.template for r in todo}))
        uow.settings.set(SETTING_OFFLINE_SEEDED, True)
        uow.commit()


def seed_evidence_rule(store: Store) -> None:
    """The "evidence blocked" rule, added once (fleet-wide, as the default rules)."""
    from app.domain.errors import ConstraintViolation

    try:
        _seed_evidence_rule_once(store)
    except ConstraintViolation as e:  # another station on this database added it at the same moment
        log.info("the evidence rule was already added by another station on this database (%s)", e)


def _seed_evidence_rule_once(store: Store) -> None:
    from app.alerts.templates import evidence_blocked

    with store.uow() as uow:
        if not uow.settings.get(SETTING_EVIDENCE_RULE_SEEDED):
            rule = evidence_blocked()
            if uow.rules.get_by_name(rule.name) is None:
                uow.rules.add(rule, fleet_wide=True)
            uow.settings.set(SETTING_EVIDENCE_RULE_SEEDED, True)
            uow.commit()

