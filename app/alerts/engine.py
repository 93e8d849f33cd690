"""The alert engine: evaluates every enabled rule once a tick against the metrics registry.

Semantics (Prometheus-like, per rule instance = rule × subject):

- The condition is ``value <comparator> threshold`` on the newest sample of the
  rule's series; a sample older than ``stale_after`` seconds is *no data*, and
  the rule's no-data policy decides: ``alerting`` (the condition holds), ``ok``
  (it does not) or ``keep_last`` (the instance keeps its state: nothing
  advances, nothing resolves).
- inactive → pending when the condition first holds; pending → firing on the
  first tick at which it has held for ``for_seconds`` (at once when 0);
  pending → inactive when it stops holding. firing → resolved on the first tick
  at which it has not held for ``keep_firing_for`` seconds; resolved → pending
  when it holds again.
- Outside the rule's weekly schedule the rule is not evaluated: pending goes
  back to inactive and firing resolves.
- A camera that is offline (its ``offline`` series is 1, or an ``offline`` rule
  fires for it) inhibits its other rules: they are held (pending clears, firing
  stays, nothing is notified) until it is back.
- A firing stores an event (value, threshold, started/fired times); resolving
  closes it; an operator acknowledges it (who, when), which stops repeats.
- A restart loses nothing: the events a previous run left firing are adopted
  by their rule instance (same event, acknowledgement kept, not announced
  again). The instance holds, without resolving, until its series has fresh
  data or ``restore_grace`` seconds passed (cameras start a few seconds after
  the engine); only events no instance adopted within the grace are closed.
- Notifications: a firing is announced unless the same instance was announced
  less than ``cooldown`` seconds ago; while firing and unacknowledged it is
  announced again every ``max(repeat_interval, cooldown)`` when
  ``repeat_interval > 0``; a resolve is announced when its firing was.
  Announcements go to subscribers (``AlertChange.notify``) and to the
  dispatcher (webhook/command) without waiting for delivery.

Time is unix seconds from an injectable clock; ``tick(now)`` makes tests exact.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from app.alerts.events import EventSink, MemoryEventSink, StoreEventSink
from app.alerts.lifecycle import (
    Pending,
    PreparedRule,
    RuleInstance,
    inhibit,
    leave,
    step,
    to_datetime,
)
from app.alerts.notify import Dispatcher
from app.alerts.writer import EventWriter, HeldEvent, WriteJob
from app.domain.alerts import (
    AlertChange,
    AlertEvent,
    AlertState,
    AlertStatus,
    ChangeKind,
    EventState,
)
from app.domain.emitter import Emitter
from app.domain.errors import FieldError, NotFound, ValidationError
from app.domain.rules import (
    AlertRule,
    TargetKind,
)
from app.metrics.registry import MetricsRegistry, SeriesKey

if TYPE_CHECKING:
    from app.store.uow import Store

log = logging.getLogger(__name__)

_CAMERA_TARGETS = (TargetKind.CAMERA, TargetKind.ALL_CAMERAS)
OFFLINE_METRIC = "offline"
_NO_EVENT = (ChangeKind.PENDING, ChangeKind.CLEARED)


class AlertEngineError(Exception):
    """Base of the engine's own failures (bad wiring, not bad rules: those are ``ValidationError``)."""


@dataclass(frozen=True)
class TickResult:
    at: float
    instances: int
    changes: int
    seconds: float


class AlertEngine:
    """Evaluates rules; persist events through ``store`` (an :class:`app.store.Store`) or in memory.

    ``cameras()`` lists the camera ids that "all cameras" rules cover and that
    single-camera rules may evaluate (the station passes
    ``SupervisorFeed.watched_cameras``); by default, every camera whose
    ``offline`` series has a fresh sample.
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        *,
        store: Store | None = None,
        events: EventSink | None = None,
        dispatcher: Dispatcher | None = None,
        clock: Callable[[], float] = time.time,
        cameras: Callable[[], Iterable[int]] | None = None,
        camera_name: Callable[[int], str | None] | None = None,
        stale_after: float = 5.0,
        tz: tzinfo | None = None,
        rules: Iterable[AlertRule] = (),
        async_writes: bool = True,
        restore_grace: float = 60.0,
    ) -> None:
        self._reg = registry
        self._store = store
        self._events: EventSink = events or (StoreEventSink(store) if store is not None else MemoryEventSink())
        self._clock = clock
        self._cameras = cameras
        self._camera_name = camera_name
        self.stale_after = stale_after
        self._tz = tz  # None: the station's local time
        self._lock = threading.RLock()
        self._rules: list[PreparedRule] = []
        self._instances: dict[tuple[object, int | None], RuleInstance] = {}
        self._changes: Emitter[AlertChange] = Emitter("alerts")
        self._orphans: dict[tuple[int | None, int | None], AlertEvent] = {}
        self._retired: list[RuleInstance] = []  # instances of retargeted rules, closed by the next tick
        self._restored = False
        self.restore_grace = restore_grace
        self._restore_deadline: float | None = None  # set by the first tick after a restore
        self._ticks = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._next_due: float | None = None
        # Writer: events are stored and changes announced off the evaluating thread.
        self._keys = itertools.count(1)  # event keys: the writer maps them to database ids
        self._writer = EventWriter(self._events, self._changes, dispatcher=dispatcher, state_lock=self._lock,
                                   async_writes=async_writes)
        self.last_tick: TickResult | None = None
        self.tick_errors = 0
        self.set_rules(rules)

    # -- configuration -----------------------------------------------------------------
    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace the rule set (enabled rules are evaluated). Instances of unchanged rules keep
        their state; instances of removed, disabled or retargeted rules are closed at the next tick."""
        prepared = []
        for r in rules:
            if not r.enabled:
                continue
            try:
                prepared.append(PreparedRule(r.validated()))
            except ValidationError as e:
                log.error("alerts: skipping invalid rule %r: %s", r.name, e)
        with self._lock:
            by_key = {p.key: p for p in prepared}
            for key, inst in list(self._instances.items()):
                new = by_key.get(inst.rule.key)
                if new is None:
                    continue  # removed or disabled: closed by the next tick (nobody evaluates it)
                if new.same_subjects(inst.rule.rule):
                    inst.rule = new  # threshold, for, severity... apply from the next tick on
                else:  # another metric or target: the old instance ends, a new one starts
                    self._retired.append(self._instances.pop(key))
            self._rules = prepared

    def load_rules(self) -> int:
        """(Re)load the rules from the store; returns how many are enabled."""
        if self._store is None:
            raise AlertEngineError("load_rules needs an engine built with a store")
        with self._store.uow() as uow:
            rules = uow.rules.list()
        self.set_rules(rules)
        if not self._restored:
            self._restore(self._read_firing())  # read outside the lock
        return sum(1 for r in rules if r.enabled)

    def rules(self) -> list[AlertRule]:
        with self._lock:
            return [p.rule for p in self._rules]

    def subscribe(self, callback: Callable[[AlertChange], None]) -> Callable[[], None]:
        """``callback(change)`` for every change, in order, once its event is stored (on the
        engine's writer thread; on the ticking thread with ``async_writes=False``); returns
        unsubscribe. Keep it short: hand the change to a queue or a Qt signal."""
        return self._changes.subscribe(callback)

    # -- evaluation ------------------------------------------------------------------------
    def _subject_cameras(self, now: float) -> list[int]:
        if self._cameras is not None:
            return sorted(int(c) for c in self._cameras())
        out = []
        for key in self._reg.keys(OFFLINE_METRIC):
            sample = self._reg.latest_sample(key)
            cam = dict(key[1]).get("camera")
            if sample is not None and now - sample[0] <= self.stale_after and cam is not None and cam.isdigit():
                out.append(int(cam))
        return out

    def _subject(self, camera_id: int) -> str:
        name = self._camera_name(camera_id) if self._camera_name is not None else None
        return f"camera {name}" if name else f"camera {camera_id}"

    def _read_firing(self) -> list[AlertEvent]:
        try:
            return self._events.firing()
        except Exception:
            log.exception("alerts: cannot read firing events of the previous run")
            return []

    def _restore(self, firing: list[AlertEvent]) -> None:
        """Adopt the events a previous run left firing (so they are not announced twice)."""
        with self._lock:
            if self._restored:
                return
            self._restored = True
            for ev in firing:
                self._orphans[(ev.rule_id, ev.camera_id)] = ev

    @property
    def ticks(self) -> int:
        """How many times every rule has been evaluated so far (for a wait on the engine's progress)."""
        with self._lock:
            return self._ticks

    def tick(self, now: float | None = None) -> TickResult:
        """Evaluate every rule once at ``now`` (unix seconds; the clock when omitted)."""
        if now is None:
            now = self._clock()
        t0 = time.perf_counter()
        changes: list[Pending] = []
        if not self._restored:
            self._restore(self._read_firing())
        with self._lock:
            self._ticks += 1
            tick_no = self._ticks
            if self._restore_deadline is None:
                self._restore_deadline = now + self.restore_grace
            local = datetime.fromtimestamp(now, self._tz) if self._tz is not None else datetime.fromtimestamp(now)
            cams = self._subject_cameras(now)
            cam_set = set(cams)
            latest = self._reg.latest_sample
            stale = self.stale_after
            # Offline cameras: the raw series, plus any offline rule still firing (keep_firing_for).
            offline: set[int | None] = set()
            for cid in cams:
                s = latest((OFFLINE_METRIC, (("camera", str(cid)),)))
                if s is not None and now - s[0] <= stale and s[1] >= 1:
                    offline.add(cid)
            for held in self._instances.values():
                if held.state is AlertState.FIRING and held.rule.rule.metric == OFFLINE_METRIC:
                    offline.add(held.camera_id)
            instances = self._instances
            n = 0
            for pr in self._rules:
                rule = pr.rule
                in_schedule = not pr.spans or any(s.contains(local) for s in pr.spans)
                if rule.target in _CAMERA_TARGETS:
                    if rule.target is TargetKind.CAMERA:
                        subjects = [rule.camera_id] if rule.camera_id in cam_set else []
                    else:
                        subjects = cams
                    is_offline_rule = rule.metric == OFFLINE_METRIC
                    for cid in subjects:
                        inst = instances.get((pr.key, cid))
                        if inst is None:
                            inst = self._new_instance(pr, cid, now)
                        inst.seen = tick_no
                        n += 1
                        if not in_schedule:
                            leave(inst, now, "outside the rule's schedule", changes)
                            inst.last_eval = math.inf  # what held meanwhile does not count
                        elif not is_offline_rule and cid in offline:
                            inhibit(inst, now, changes)
                            inst.last_eval = math.inf
                        else:
                            inst.inhibited = False
                            step(inst, pr, latest(inst.series), now, stale, changes, restore_until=self._restore_deadline,
                                 value_since=self._reg.value_since, keys=self._keys)
                            inst.last_eval = now
                else:
                    inst = instances.get((pr.key, None))
                    if inst is None:
                        inst = self._new_instance(pr, None, now)
                    inst.seen = tick_no
                    n += 1
                    if not in_schedule:
                        leave(inst, now, "outside the rule's schedule", changes)
                        inst.last_eval = math.inf
                    else:
                        step(inst, pr, latest(pr.station_key), now, stale, changes, restore_until=self._restore_deadline,
                             value_since=self._reg.value_since, keys=self._keys)
                        inst.last_eval = now
            # When a pending instance is due to fire (the thread wakes for it, so a firing is
            # not up to a tick late).
            due = [i.active_since + i.rule.rule.for_seconds for i in instances.values()
                   if i.state is AlertState.PENDING and i.active_since is not None]
            self._next_due = min(due) if due else None
            # Instances of changed rules, and those nobody evaluated this tick (rule removed or
            # disabled, camera stopped or removed): they end.
            gone, self._retired = self._retired, []
            for inst in gone:
                leave(inst, now, "the rule was changed", changes)
            for key in [k for k, i in instances.items() if i.seen != tick_no]:
                inst = instances.pop(key)
                leave(inst, now, "rule or camera no longer watched", changes)
                gone.append(inst)
            job = WriteJob(
                saves=self._take_dirty(gone) + self._take_orphans(now),
                changes=[(self._change(kind, inst, notify, msg, now),
                          inst.event_key if inst.event and kind not in _NO_EVENT else None,
                          inst.rule.rule.notify if notify else None)
                         for kind, inst, notify, msg in changes],
            )
        if job.saves or job.changes:
            self._writer.submit(job)
        res = TickResult(now, n, len(job.changes), time.perf_counter() - t0)
        self.last_tick = res
        return res

    def _new_instance(self, pr: PreparedRule, camera_id: int | None, now: float) -> RuleInstance:
        if camera_id is None:
            subject = str(pr.rule.target)
            series: SeriesKey = pr.station_key
        else:
            subject = self._subject(camera_id)
            series = (pr.rule.metric, (("camera", str(camera_id)),))
        inst = RuleInstance(pr, camera_id, subject, series)
        inst.since = now
        orphan = self._orphans.pop((pr.rule.id, camera_id), None)
        if orphan is not None:  # still firing from the previous run: carry on without re-announcing
            inst.state = AlertState.FIRING
            inst.event = orphan
            inst.event_key = next(self._keys)
            inst.value = orphan.value
            inst.active_since = orphan.started_at.timestamp()
            inst.since = orphan.fired_at.timestamp() if orphan.fired_at else now
            inst.last_true = now
            inst.last_notified = inst.since
            inst.announced = True
            inst.acknowledged = orphan.acknowledged
            inst.adopted = True
        self._instances[(pr.key, camera_id)] = inst
        return inst

    def _take_orphans(self, now: float) -> list[tuple[HeldEvent | None, int, AlertEvent]]:
        """Events of the previous run that no instance adopted within the grace: closed."""
        if not self._orphans or (self._restore_deadline is not None and now < self._restore_deadline):
            return []
        closed: list[tuple[HeldEvent | None, int, AlertEvent]] = [
            (None, next(self._keys), ev.with_changes(
                state=EventState.RESOLVED, resolved_at=to_datetime(now),
                message=(ev.message + "; " if ev.message else "") + "closed: rule no longer evaluated"))
            for ev in self._orphans.values()
        ]
        self._orphans.clear()
        return closed

    def _take_dirty(self, extra: list[RuleInstance]) -> list[tuple[HeldEvent | None, int, AlertEvent]]:
        out: list[tuple[HeldEvent | None, int, AlertEvent]] = []
        for inst in (*self._instances.values(), *extra):
            if inst.dirty and inst.event is not None:
                out.append((inst, inst.event_key, inst.event))
                inst.dirty = False
        return out

    # -- persistence and delivery (app.alerts.writer) ------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every evaluated change is stored and delivered to subscribers."""
        return self._writer.flush(timeout)

    def _change(self, kind: ChangeKind, inst: RuleInstance, notify: bool, msg: str, now: float) -> AlertChange:
        rule = inst.rule.rule
        ev = inst.event if kind not in _NO_EVENT else None  # pending/cleared: no event (yet)
        return AlertChange(
            kind=kind, rule_name=rule.name, severity=rule.severity, subject=inst.subject, at=to_datetime(now),  # type: ignore[arg-type]
            notify=notify, rule_id=rule.id, camera_id=inst.camera_id, value=inst.value,
            threshold=rule.threshold, event=ev, message=msg or (ev.message if ev else ""),
            sound=rule.notify.sound, desktop=rule.notify.desktop,
        )

    # -- operator --------------------------------------------------------------------------
    def acknowledge(self, event_id: int, by: str, at: float | None = None) -> AlertEvent:
        """Record that ``by`` acknowledged the event (stops its repeats). The first acknowledgement stays."""
        if not isinstance(by, str) or not by.strip():
            raise ValidationError(FieldError("by", "must name who acknowledges"), subject="acknowledgement")
        if len(by) > 80:
            raise ValidationError(FieldError("by", "must be at most 80 characters"), subject="acknowledgement")
        when = self._clock() if at is None else at
        # The database first, outside the engine's lock: a busy database delays the operator,
        # never an evaluation.
        ev = self._events.acknowledge(event_id, by.strip(), to_datetime(when))  # type: ignore[arg-type]
        if ev is None:
            raise NotFound(f"alert event {event_id} does not exist", details={"event_id": event_id})
        with self._lock:
            target = None
            for inst in self._instances.values():
                if inst.event is not None and inst.event.id == event_id:
                    inst.acknowledged = True
                    inst.event = ev
                    target = inst
            change = None
            if target is not None:
                change = self._change(ChangeKind.ACKNOWLEDGED, target, False, f"acknowledged by {ev.acknowledged_by}", when)
        if change is not None:
            self._changes.emit(change)
        return ev

    # -- reads -----------------------------------------------------------------------------
    def statuses(self, *, include_inactive: bool = False) -> list[AlertStatus]:
        """The active instances (pending and firing); with ``include_inactive``, every instance."""
        with self._lock:
            out = []
            for inst in self._instances.values():
                if not include_inactive and inst.state not in (AlertState.PENDING, AlertState.FIRING):
                    continue
                rule = inst.rule.rule
                out.append(AlertStatus(
                    rule_name=rule.name, severity=rule.severity, subject=inst.subject, state=inst.state,
                    rule_id=rule.id, camera_id=inst.camera_id, value=inst.value, threshold=rule.threshold,
                    since=to_datetime(inst.since), inhibited=inst.inhibited, acknowledged=inst.acknowledged,
                    event_id=inst.event.id if inst.event is not None else None,
                ))
            return out

    def firing(self) -> list[AlertStatus]:
        return [s for s in self.statuses() if s.state is AlertState.FIRING]

    def history(self, limit: int = 200) -> list[AlertEvent]:
        return self._events.recent(limit)

    # -- thread ----------------------------------------------------------------------------
    def start(self, interval: float = 1.0) -> AlertEngine:
        """Tick every ``interval`` seconds on a thread of its own (or call ``tick`` yourself)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(interval,), name="alert-engine", daemon=True)
            self._thread.start()
        return self

    def _run(self, interval: float) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                self.tick_errors += 1
                log.exception("alerts: evaluation tick failed")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()
                delay = 0.0
            due = self._next_due
            if due is not None:
                until_due = due - self._clock()
                if 0 <= until_due < delay:
                    # An extra evaluation exactly when a pending rule reaches its ``for``;
                    # the regular schedule stays as it was.
                    if self._stop.wait(until_due + 0.001):
                        return
                    try:
                        self.tick()
                    except Exception:
                        self.tick_errors += 1
                        log.exception("alerts: evaluation tick failed")
                    delay = max(0.0, next_at - time.monotonic())
            self._stop.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking, store and announce what was evaluated, and end the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush(timeout)
        self._writer.stop(timeout)

    close = stop
