from datetime import datetime

import pytest

from app.domain import AlertRule, Comparator, Notify, TargetKind, ValidationError, parse_schedule
from app.domain.rules import ScheduleError


def rule(**kw):
    base = dict(name="Low fps", metric="fps", comparator=Comparator.LT, threshold=5.0)
    base.update(kw)
    return AlertRule(**base)


def test_valid_rule_passes():
    r = rule(for_seconds=10, schedule="mon-fri 08:00-18:00").validated()
    assert r.threshold == 5.0 and r.target is TargetKind.ALL_CAMERAS


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "nosuch"}, "metric"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"for_seconds": -1}, "for_seconds"),
        ({"keep_firing_for": -0.5}, "keep_firing_for"),
        ({"schedule": "someday 8-9"}, "schedule"),
        ({"schedule": "mon 18:00-08:00"}, "schedule"),
        ({"notify": Notify(webhook_url="ftp://h/x")}, "notify.webhook_url"),
        ({"target": TargetKind.CAMERA}, "camera_id"),
        ({"target": TargetKind.STATION, "camera_id": 3}, "camera_id"),
        ({"target": TargetKind.STATION}, "metric"),  # fps is a camera metric
        ({"comparator": "~"}, "comparator"),
        ({"severity": "loud"}, "severity"),
    ],
)
def test_bad_rule_names_the_field(changes, field):
    with pytest.raises(ValidationError) as info:
        rule(**changes).validated()
    assert field in [e.field for e in info.value.errors]


def test_schedule_boundaries():
    r = rule(schedule="mon-fri 08:00-18:00; sat 10:00-24:00")
    monday = datetime(2026, 11, 23)  # a Monday
    assert not r.in_schedule(monday.replace(hour=7, minute=59))
    assert r.in_schedule(monday.replace(hour=8, minute=0))
    assert r.in_schedule(monday.replace(hour=17, minute=59))
    assert not r.in_schedule(monday.replace(hour=18, minute=0))
    saturday = datetime(2026, 11, 28)
    assert r.in_schedule(saturday.replace(hour=23, minute=59))
    sunday = datetime(2026, 11, 29)
    assert not r.in_schedule(sunday.replace(hour=12))
    assert rule().in_schedule(sunday)  # no schedule = always


def test_schedule_wraps_over_the_week_end():
    (span,) = parse_schedule("fri-mon 00:00-06:00")
    assert span.days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize("text", ["mon 25:00-26:00", "xyz 08:00-09:00", "mon-fri"])
def test_bad_schedule_raises(text):
    with pytest.raises(ScheduleError):
        parse_schedule(text)


@pytest.mark.parametrize(
    ("cmp", "value", "expected"),
    [(">", 6, True), (">", 5, False), (">=", 5, True), ("<", 4, True), ("<=", 5, True), ("==", 5, True), ("!=", 5, False)],
)
def test_comparators(cmp, value, expected):
    assert Comparator(cmp).holds(value, 5) is expected
