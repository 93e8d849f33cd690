"""Rule validation (bad input names its field, nothing is stored), templates and the default rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.alerts import AlertEngine, default_rules, templates
from app.domain import METRICS, AlertRule, Comparator, Notify, TargetKind, ValidationError
from app.domain.operations import CreateRule
from app.domain.rules import NoDataPolicy, Severity
from app.metrics import MetricsRegistry
from app.services.operations import DomainOperations
from app.store import open_store

GOOD = dict(name="low fps", metric="fps", comparator=Comparator.LT, threshold=5.0, target=TargetKind.ALL_CAMERAS)

BAD = [
    ("metric", {"metric": "frames_per_fortnight"}),
    ("threshold", {"threshold": "five"}),
    ("threshold", {"threshold": True}),
    ("threshold", {"threshold": float("nan")}),
    ("for_seconds", {"for_seconds": -1.0}),
    ("keep_firing_for", {"keep_firing_for": -0.5}),
    ("schedule", {"schedule": "someday 25:00-26:00"}),
    ("schedule", {"schedule": "mon 18:00-08:00"}),
    ("notify.webhook_url", {"notify": Notify(webhook_url="ftp://example.org/hook")}),
    ("notify.webhook_url", {"notify": Notify(webhook_url="file:///etc/passwd")}),
    ("notify.command", {"notify": Notify(command=("notify-send", ""))}),
]


@pytest.mark.parametrize(("field", "change"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_rule_is_rejected_with_the_field_named_and_nothing_stored(tmp_path: Path, field: str, change: dict) -> None:
    rule = AlertRule(**{**GOOD, **change})
    with pytest.raises(ValidationError) as e:
        rule.validated()
    assert field in [err.field for err in e.value.errors]
    assert field in str(e.value)
    # Through the domain path into a real database: refused, and no row written.
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    try:
        ops = DomainOperations(store, None, None, None)  # create_rule needs only the store
        with pytest.raises(ValidationError) as e2:
            ops.create_rule(CreateRule(rule))
        assert field in [err.field for err in e2.value.errors]
        with store.uow() as uow:
            assert uow.rules.list() == []
    finally:
        store.dispose()


def test_an_engine_skips_an_invalid_rule_but_keeps_the_others() -> None:
    bad = AlertRule(**{**GOOD, "name": "bad", "for_seconds": -3})
    engine = AlertEngine(MetricsRegistry(), rules=[bad, AlertRule(**GOOD)])
    assert [r.name for r in engine.rules()] == ["low fps"]


def test_every_template_builds_a_valid_rule_for_each_target() -> None:
    t = templates()
    assert set(t) >= {"camera_offline", "low_fps", "stall_rate", "no_motion", "motion", "cpu_high",
                      "memory_high", "disk_low", "temperature_high", "rollout_error_rate",
                      "rollout_success_rate", "rollout_latency"}
    for name, factory in t.items():
        rule = factory()
        assert rule.template == name
        assert rule.validated() == rule
        assert rule.metric in METRICS
        if rule.target is TargetKind.ALL_CAMERAS:
            one = factory(camera_id=4)
            assert (one.target, one.camera_id) == (TargetKind.CAMERA, 4)
            assert one.name != rule.name  # both can be stored side by side (names are unique)
    assert t["no_motion"](minutes=5).threshold == 300
    assert t["low_fps"](threshold=12).threshold == 12
    assert t["camera_offline"]().no_data is NoDataPolicy.OK  # a camera stopped on purpose is not offline
    with pytest.raises(ValidationError):
        t["low_fps"](for_seconds=-1)


def test_default_rules_are_camera_offline_and_the_four_rollout_health_rules_enabled(tmp_path: Path) -> None:
    offline, *rules = default_rules()
    assert (offline.metric, offline.target, offline.severity, offline.enabled) == (
        "offline", TargetKind.ALL_CAMERAS, Severity.CRITICAL, True)
    assert {(r.metric, r.comparator, r.threshold) for r in rules} == {
        ("domain_error_rate", Comparator.GT, 0.05),
        ("success_rate", Comparator.LT, 0.95),
        ("p95_ratio", Comparator.GT, 1.5),
        ("health_inconclusive", Comparator.GE, 1.0),
    }
    assert {r.metric: r.severity for r in rules}["health_inconclusive"] is Severity.WARNING
    assert all(r.enabled and r.target is TargetKind.ROLLOUT for r in rules)
    # Inconclusive (no value written) holds the state rather than passing.
    assert all(r.no_data is NoDataPolicy.KEEP_LAST for r in rules)
    # They can be seeded into a real database and loaded by the engine.
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    try:
        with store.uow() as uow:
            for r in (offline, *rules):
                uow.rules.add(r)
            uow.commit()
        engine = AlertEngine(MetricsRegistry(), store=store)
        assert engine.load_rules() == 5
    finally:
        store.dispose()
