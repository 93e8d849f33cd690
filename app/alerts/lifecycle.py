"""The life of one rule instance (rule × subject): inactive, pending, firing, resolved.

The transitions the alert engine applies on each evaluation (see :mod:`app.alerts.engine` for
the semantics). Each one changes the instance and appends the change it makes to ``changes``:
no thread, no store, no clock of its own (``now`` is an argument).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from app.domain.alerts import AlertEvent, AlertState, ChangeKind, EventState
from app.domain.rules import AlertRule, Comparator, NoDataPolicy, ScheduleSpan, parse_schedule
from app.metrics.registry import SeriesKey

_OPS: dict[Comparator, Callable[[float, float], bool]] = {
    Comparator.GT: operator.gt, Comparator.GE: operator.ge, Comparator.LT: operator.lt,
    Comparator.LE: operator.le, Comparator.EQ: operator.eq, Comparator.NE: operator.ne,
}


def to_datetime(ts: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (``None`` stays ``None``)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class PreparedRule:
    """A rule prepared for fast evaluation."""

    __slots__ = ("rule", "key", "op", "spans", "station_key")

    def __init__(self, rule: AlertRule):
        self.rule = rule
        self.key: object = rule.id if rule.id is not None else rule.name
        self.op = _OPS[Comparator(rule.comparator)]
        self.spans: tuple[ScheduleSpan, ...] = parse_schedule(rule.schedule)
        self.station_key: SeriesKey = (rule.metric, ())

    def same_subjects(self, other: AlertRule) -> bool:
        r = self.rule
        return (r.metric, r.target, r.camera_id) == (other.metric, other.target, other.camera_id)


class RuleInstance:
    """One rule applied to one subject (a camera, or the station): its state and its current event."""

    __slots__ = ("rule", "camera_id", "subject", "series", "state", "since", "active_since", "last_true",
                 "value", "last_notified", "announced", "event", "dirty", "acknowledged", "inhibited",
                 "seen", "last_eval", "event_key", "adopted")

    def __init__(self, rule: PreparedRule, camera_id: int | None, subject: str, series: SeriesKey):
        self.rule = rule
        self.camera_id = camera_id
        self.subject = subject
        self.series = series
        self.state = AlertState.INACTIVE
        self.since: float | None = None
        self.active_since: float | None = None
        self.last_true: float | None = None
        self.value: float | None = None
        self.last_notified: float | None = None
        self.announced = False  # this firing was announced
        self.event: AlertEvent | None = None
        self.event_key = 0  # this firing's key in the writer (the database id may come later)
        self.dirty = False  # event needs saving
        self.acknowledged = False
        self.inhibited = False
        self.seen = 0  # tick number that last evaluated it
        # When it was last evaluated (inf: it was held or out of schedule, so a pending
        # period may not start before the next evaluation; None: never evaluated).
        self.last_eval: float | None = None
        self.adopted = False  # carries a previous run's firing event and has seen no fresh data yet


#: a change found by a tick, before it is announced: (kind, instance, notify, message)
Pending = tuple[ChangeKind, RuleInstance, bool, str]


def step(inst: RuleInstance, pr: PreparedRule, sample: tuple[float, float] | None, now: float, stale: float,
         changes: list[Pending], *, restore_until: float | None, value_since: Callable[[SeriesKey], float | None],
         keys: Iterator[int]) -> None:
    """One evaluation of ``inst`` on its newest ``sample``; the changes it makes go to ``changes``.

    ``restore_until``: until then an adopted firing holds without data; ``value_since``: since when a
    series has had its current value; ``keys``: the event keys (see :class:`~app.alerts.writer.EventWriter`)."""
    rule = pr.rule
    if sample is None or now - sample[0] > stale:
        if inst.adopted and restore_until is not None and now < restore_until:
            inst.last_true = now  # a restarted station has no data yet: the firing it adopted holds
            return
        policy = rule.no_data
        if policy is NoDataPolicy.KEEP_LAST:
            return
        cond = policy is NoDataPolicy.ALERTING
        value = None
    else:
        value = sample[1]
        cond = pr.op(value, rule.threshold)
    inst.adopted = False
    state = inst.state
    if cond:
        inst.last_true = now
        inst.value = value  # None: it holds because there is no data (no-data policy "alerting")
        if state is AlertState.INACTIVE or state is AlertState.RESOLVED:
            inst.state = AlertState.PENDING
            # Pending since the value appeared (an event-driven sample may be up to a tick
            # older than this evaluation), but not before the previous evaluation of this
            # instance: it did not hold then.
            start = now
            if value is not None:
                start = value_since(inst.series) or sample[0]  # type: ignore[index]
                floor = inst.last_eval if inst.last_eval is not None else sample[0]  # type: ignore[index]
                start = min(now, max(start, floor))
            inst.active_since = inst.since = start
            inst.acknowledged = False
            changes.append((ChangeKind.PENDING, inst, False, ""))
            state = AlertState.PENDING
        if state is AlertState.PENDING:
            if now - inst.active_since >= rule.for_seconds:  # type: ignore[operator]
                fire(inst, now, changes, keys)
        elif state is AlertState.FIRING:
            maybe_repeat(inst, now, changes)
    else:
        if state is AlertState.PENDING:
            inst.state = AlertState.INACTIVE
            inst.since = now
            inst.active_since = None
            changes.append((ChangeKind.CLEARED, inst, False, ""))
        elif state is AlertState.FIRING:
            if value is not None:
                inst.value = value
            if now - (inst.last_true if inst.last_true is not None else now) >= rule.keep_firing_for:
                resolve(inst, now, "", changes)
            else:
                maybe_repeat(inst, now, changes)


def announce_allowed(inst: RuleInstance, now: float) -> bool:
    """Whether a firing may be announced now (its cooldown since the last announcement has passed)."""
    return inst.last_notified is None or now - inst.last_notified >= inst.rule.rule.cooldown


def fire(inst: RuleInstance, now: float, changes: list[Pending], keys: Iterator[int]) -> None:
    """pending -> firing: a new event, announced unless within the cooldown."""
    rule = inst.rule.rule
    inst.state = AlertState.FIRING
    inst.since = now
    inst.acknowledged = False
    notify = announce_allowed(inst, now)
    if notify:
        inst.last_notified = now
    inst.announced = notify
    val = "no data" if inst.value is None else f"{inst.value:g}"
    msg = f"{rule.name}: {inst.subject} {rule.metric} = {val} ({rule.comparator} {rule.threshold:g})"
    inst.event_key = next(keys)
    inst.event = AlertEvent(
        rule_id=rule.id, rule_name=rule.name, camera_id=inst.camera_id, subject=inst.subject,
        severity=rule.severity, state=EventState.FIRING, value=inst.value, threshold=rule.threshold,
        message=msg, started_at=to_datetime(inst.active_since) or to_datetime(now),  # type: ignore[arg-type]
        fired_at=to_datetime(now),
    )
    inst.dirty = True
    changes.append((ChangeKind.FIRING, inst, notify, msg))


def maybe_repeat(inst: RuleInstance, now: float, changes: list[Pending]) -> None:
    """While firing and unacknowledged: announced again every ``max(repeat_interval, cooldown)``."""
    rule = inst.rule.rule
    if rule.repeat_interval <= 0 or inst.acknowledged or inst.last_notified is None:
        return
    if now - inst.last_notified >= max(rule.repeat_interval, rule.cooldown):
        inst.last_notified = now
        inst.announced = True
        changes.append((ChangeKind.REPEAT, inst, True, "still firing"))


def resolve(inst: RuleInstance, now: float, why: str, changes: list[Pending]) -> None:
    """firing -> resolved: the event closes; announced when its firing was."""
    inst.state = AlertState.RESOLVED
    inst.since = now
    inst.active_since = None
    if inst.event is not None:
        msg = inst.event.message + (f"; resolved: {why}" if why else "")
        inst.event = inst.event.with_changes(
            state=EventState.RESOLVED, resolved_at=to_datetime(now), value=inst.value, message=msg
        )
        inst.dirty = True
    changes.append((ChangeKind.RESOLVED, inst, inst.announced, why))
    inst.announced = False


def leave(inst: RuleInstance, now: float, why: str, changes: list[Pending]) -> None:
    """The rule stops applying (schedule, removal): clear pending, resolve firing."""
    if inst.state is AlertState.PENDING:
        inst.state = AlertState.INACTIVE
        inst.since = now
        inst.active_since = None
        changes.append((ChangeKind.CLEARED, inst, False, why))
    elif inst.state is AlertState.FIRING:
        resolve(inst, now, why, changes)


def inhibit(inst: RuleInstance, now: float, changes: list[Pending]) -> None:
    """The camera is offline: pending clears, firing stays, nothing is notified."""
    inst.inhibited = True
    if inst.state is AlertState.PENDING:
        inst.state = AlertState.INACTIVE
        inst.since = now
        inst.active_since = None
        changes.append((ChangeKind.CLEARED, inst, False, "inhibited: camera offline"))
