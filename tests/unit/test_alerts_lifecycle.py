"""The transitions of one rule instance (app.alerts.lifecycle), driven with plain values: no engine, no clock."""

from __future__ import annotations

import itertools
from typing import Any

from app.alerts.lifecycle import (
    Pending,
    PreparedRule,
    RuleInstance,
    inhibit,
    leave,
    step,
)
from app.domain.alerts import AlertState, ChangeKind, EventState
from app.domain.rules import AlertRule, Comparator, NoDataPolicy

T0 = 1_000_000.0
SERIES = ("fps", (("camera", "1"),))


def _instance(**rule: Any) -> RuleInstance:
    r = AlertRule(name="low fps", metric="fps", comparator=Comparator.LT, threshold=5.0, id=1, **rule)
    return RuleInstance(PreparedRule(r), 1, "camera 1", SERIES)


def _step(inst: RuleInstance, value: float | None, now: float, keys: itertools.count) -> list[Pending]:
    changes: list[Pending] = []
    sample = None if value is None else (now, value)
    step(inst, inst.rule, sample, now, 5.0, changes, restore_until=None, value_since=lambda s: None, keys=keys)
    return changes


def test_pending_then_firing_after_for_seconds_with_one_event():
    inst, keys = _instance(for_seconds=10.0), itertools.count(1)
    assert [c[0] for c in _step(inst, 2.0, T0, keys)] == [ChangeKind.PENDING]
    assert inst.state is AlertState.PENDING
    assert _step(inst, 2.0, T0 + 5, keys) == []
    [(kind, _, notify, msg)] = _step(inst, 2.0, T0 + 10, keys)
    assert kind is ChangeKind.FIRING and notify and msg.startswith("low fps: camera 1 fps = 2")
    assert inst.event is not None and inst.event.state is EventState.FIRING and inst.event_key == 1
    assert inst.dirty


def test_a_condition_that_stops_holding_clears_pending_and_resolves_firing():
    inst, keys = _instance(for_seconds=10.0), itertools.count(1)
    _step(inst, 2.0, T0, keys)
    assert [c[0] for c in _step(inst, 9.0, T0 + 1, keys)] == [ChangeKind.CLEARED]
    assert inst.state is AlertState.INACTIVE
    fired = _instance()
    _step(fired, 2.0, T0, keys)
    assert fired.state is AlertState.FIRING
    [(kind, _, notify, _)] = _step(fired, 9.0, T0 + 1, keys)
    assert kind is ChangeKind.RESOLVED and notify  # its firing was announced
    assert fired.event is not None and fired.event.state is EventState.RESOLVED


def test_keep_firing_for_holds_a_firing_after_the_condition_stops():
    inst, keys = _instance(keep_firing_for=30.0), itertools.count(1)
    _step(inst, 2.0, T0, keys)
    assert _step(inst, 9.0, T0 + 10, keys) == [] and inst.state is AlertState.FIRING
    assert [c[0] for c in _step(inst, 9.0, T0 + 30, keys)] == [ChangeKind.RESOLVED]


def test_a_firing_within_the_cooldown_is_not_announced_and_repeats_wait_for_the_interval():
    inst, keys = _instance(cooldown=300.0, repeat_interval=60.0), itertools.count(1)
    _step(inst, 2.0, T0, keys)
    _step(inst, 9.0, T0 + 1, keys)
    [(kind, _, notify, _)] = _step(inst, 2.0, T0 + 2, keys)[-1:]
    assert kind is ChangeKind.FIRING and not notify  # the last announcement was 2 s ago
    again = _instance(cooldown=100.0, repeat_interval=60.0)
    _step(again, 2.0, T0, keys)
    assert _step(again, 2.0, T0 + 60, keys) == []  # max(repeat_interval, cooldown) = 100 s
    assert [c[0] for c in _step(again, 2.0, T0 + 100, keys)] == [ChangeKind.REPEAT]


def test_no_data_follows_the_rules_policy():
    keep, keys = _instance(), itertools.count(1)
    _step(keep, 2.0, T0, keys)
    assert _step(keep, None, T0 + 1, keys) == [] and keep.state is AlertState.FIRING  # keep_last
    ok = _instance(no_data=NoDataPolicy.OK)
    _step(ok, 2.0, T0, keys)
    assert [c[0] for c in _step(ok, None, T0 + 1, keys)] == [ChangeKind.RESOLVED]
    alerting = _instance(no_data=NoDataPolicy.ALERTING)
    assert [c[0] for c in _step(alerting, None, T0, keys)] == [ChangeKind.PENDING, ChangeKind.FIRING]
    assert alerting.value is None


def test_inhibit_clears_pending_and_leave_resolves_firing():
    inst, keys = _instance(for_seconds=10.0), itertools.count(1)
    _step(inst, 2.0, T0, keys)
    changes: list[Pending] = []
    inhibit(inst, T0 + 1, changes)
    assert inst.inhibited and inst.state is AlertState.INACTIVE
    assert [(c[0], c[3]) for c in changes] == [(ChangeKind.CLEARED, "inhibited: camera offline")]
    fired = _instance()
    _step(fired, 2.0, T0, keys)
    changes = []
    leave(fired, T0 + 1, "outside the rule's schedule", changes)
    assert [c[0] for c in changes] == [ChangeKind.RESOLVED]
    assert fired.event is not None and fired.event.message.endswith("resolved: outside the rule's schedule")
