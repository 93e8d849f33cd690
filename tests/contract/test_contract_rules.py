"""create_rule and update_rule through both implementations on a real store."""

from __future__ import annotations

from app.domain import AlertRule, Comparator, ErrorCode, NoDataPolicy, Severity, TargetKind
from app.domain.operations import CreateRule, RuleResult, StationOperations, UpdateRule
from tests.contract.conftest import Station
from tests.contract.helpers import refused


def low_fps(name: str = "gate low fps", **kw) -> AlertRule:
    return AlertRule(name=name, metric="fps", comparator=Comparator.LT, **{"threshold": 5, **kw})


def test_create_rule_stores_a_validated_rule(ops: StationOperations, station: Station) -> None:
    res = ops.create_rule(CreateRule(low_fps(" gate low fps ", target=TargetKind.CAMERA, camera_id=station.gate.id,
                                             for_seconds=30, severity="critical", schedule="mon-fri 08:00-18:00",
                                             id=99, version=4)))
    assert isinstance(res, RuleResult)
    r = res.rule
    assert r.id is not None and r.id != 99 and r.version == 1 and r.name == "gate low fps"
    assert (r.target, r.camera_id, r.threshold, r.severity) == (TargetKind.CAMERA, station.gate.id, 5.0,
                                                                Severity.CRITICAL)
    assert isinstance(r.threshold, float)
    assert station.admin.get_rule(r.id) == r


def test_create_rule_refusals(ops: StationOperations, station: Station) -> None:
    err = refused(lambda: ops.create_rule(CreateRule(AlertRule(
        name="", metric="fps", comparator="~", threshold=float("inf"), target=TargetKind.STATION,
        cooldown=-1, no_data="maybe"))), ErrorCode.VALIDATION)
    assert {e["field"] for e in err.details["errors"]} == {"name", "metric", "comparator", "threshold",
                                                          "cooldown", "no_data"}
    refused(lambda: ops.create_rule(CreateRule(low_fps(target=TargetKind.CAMERA, camera_id=12345))),
            ErrorCode.VALIDATION, "camera_id", "12345")
    refused(lambda: ops.create_rule(CreateRule(low_fps(target=TargetKind.CAMERA))), ErrorCode.VALIDATION,
            "camera_id")
    ops.create_rule(CreateRule(low_fps("taken")))
    refused(lambda: ops.create_rule(CreateRule(low_fps("taken", threshold=1))), ErrorCode.CONFLICT, "'taken'")
    assert [r.name for r in station.admin.list_rules()] == ["taken"]


def test_update_rule_is_validated_and_versioned(ops: StationOperations, station: Station) -> None:
    r = ops.create_rule(CreateRule(low_fps())).rule
    v2 = ops.update_rule(UpdateRule(r.id, {"threshold": 8, "no_data": "alerting", "target": "camera",
                                           "camera_id": station.gate.id}, expected_version=1)).rule
    assert (v2.version, v2.threshold, v2.no_data, v2.target) == (2, 8.0, NoDataPolicy.ALERTING, TargetKind.CAMERA)
    assert station.admin.get_rule(r.id) == v2
    v3 = ops.update_rule(UpdateRule(r.id, {"enabled": False})).rule  # no expected version: last writer wins
    assert v3.version == 3 and not v3.enabled
    # a client still holding version 2 is told, and nothing changes
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"threshold": 1}, expected_version=2)), ErrorCode.CONFLICT,
            "version 3")
    assert station.admin.get_rule(r.id) == v3


def test_update_rule_refusals(ops: StationOperations, station: Station) -> None:
    r = ops.create_rule(CreateRule(low_fps("one"))).rule
    ops.create_rule(CreateRule(low_fps("two")))
    refused(lambda: ops.update_rule(UpdateRule(4242, {"threshold": 1})), ErrorCode.NOT_FOUND, "4242")
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"speed": 3, "version": 9})), ErrorCode.VALIDATION,
            "speed", "version")
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"metric": "rss_mb", "target": "station"})),
            ErrorCode.VALIDATION, "metric")
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"camera_id": 777, "target": "camera"})),
            ErrorCode.VALIDATION, "camera_id", "777")
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"notify": {"webhook_url": "ftp://x"}})),
            ErrorCode.VALIDATION, "notify.webhook_url")
    refused(lambda: ops.update_rule(UpdateRule(r.id, {"name": "two"})), ErrorCode.CONFLICT, "'two'")
    assert station.admin.get_rule(r.id) == r
