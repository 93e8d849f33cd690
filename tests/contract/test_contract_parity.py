"""Both implementations on ONE station: same answers, and either may continue what the other began.

The rollout router sends each call to either path, so a rule created by one
is updated by the other, a worker started by one is stopped by the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from app.domain import AlertRule, CameraState, Comparator, ErrorCode, OperationError, TargetKind
from app.domain.operations import (
    CameraRef,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    StationOperations,
    StatsRequest,
    StopCamera,
    UpdateRule,
)
from tests.contract.conftest import Station
from tests.contract.helpers import refused, wait_for

#: fields that change from one moment to the next (cleaned like `edge-station verify` does)
VOLATILE = {"uptime", "fps", "last_frame_age", "motion", "motion_active", "elapsed", "cpu_percent", "rss_bytes",
            "threads", "decoded", "dropped", "fps_avg", "fps_min", "motion_avg", "samples", "source", "ts"}


def normalized(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: normalized(getattr(value, f.name))
                                       for f in dataclasses.fields(value) if f.name not in VOLATILE})
    if isinstance(value, tuple | list):
        return [normalized(v) for v in value]
    return value


def answer(call: Callable[[StationOperations], Any], ops: StationOperations) -> Any:
    try:
        return ("ok", normalized(call(ops)))
    except OperationError as e:
        return ("error", str(e.code), e.message, e.details)


@pytest.fixture
def both(station: Station) -> tuple[StationOperations, StationOperations]:
    return station.build("legacy"), station.build("domain")


def test_reads_and_refusals_are_identical(station: Station, both) -> None:
    legacy, domain = both
    gid, yid, did = station.gate.id, station.yard.id, station.dock.id
    rule = legacy.create_rule(CreateRule(AlertRule("slow", "fps", Comparator.LT, 3))).rule
    legacy.start_camera(CameraRef(gid))
    wait_for(lambda: legacy.camera_status(CameraRef(gid)).state is CameraState.RUNNING, 15.0, "gate running")
    calls: list[Callable[[StationOperations], Any]] = [
        lambda o: o.camera_status(CameraRef(gid)),
        lambda o: o.camera_status(CameraRef(yid)),
        lambda o: o.list_status(ListStatus()),
        lambda o: o.list_status(ListStatus(active_only=True)),
        lambda o: o.camera_stats(StatsRequest(gid, 10)),
        lambda o: o.camera_stats(StatsRequest(yid)),
        lambda o: o.camera_logs(LogsRequest(yid)),
        lambda o: o.probe_camera(ProbeRequest(yid, 5)),
        lambda o: o.probe_camera(ProbeRequest(did, 5)),
        lambda o: o.camera_snapshot(CameraRef(yid)),
        lambda o: o.start_camera(CameraRef(gid)),
        lambda o: o.start_camera(CameraRef(yid)),
        lambda o: o.restart_camera(CameraRef(yid)),
        lambda o: o.stop_camera(StopCamera(yid)),
        lambda o: o.stop_camera(StopCamera(gid, timeout=99)),
        lambda o: o.camera_logs(LogsRequest(gid, limit=0)),
        lambda o: o.camera_stats(StatsRequest(gid, window_s=-1)),
        lambda o: o.probe_camera(ProbeRequest(gid, timeout=0)),
        lambda o: o.create_rule(CreateRule(AlertRule("slow", "fps", Comparator.LT, 1))),
        lambda o: o.create_rule(CreateRule(AlertRule("", "heat", "=>", "x", target="desk"))),
        lambda o: o.create_rule(CreateRule(AlertRule("cam", "fps", Comparator.LT, 1, target=TargetKind.CAMERA,
                                                     camera_id=31337))),
        lambda o: o.update_rule(UpdateRule(rule.id, {"threshold": 2}, expected_version=7)),
        lambda o: o.update_rule(UpdateRule(rule.id, {"colour": "red"})),
        lambda o: o.update_rule(UpdateRule(rule.id, {"schedule": "mon 18:00-08:00"})),
        lambda o: o.update_rule(UpdateRule(31337, {"threshold": 2})),
        lambda o: o.update_rule(UpdateRule(rule.id, {"notify": {"command": "reboot", "pager": 1}})),
        lambda o: o.update_rule(UpdateRule(rule.id, {"notify": ["loud"]})),
        lambda o: o.update_rule(UpdateRule(rule.id, {})),
    ] + [lambda o, op=op: getattr(o, op)(CameraRef(31337)) for op in (
        "start_camera", "restart_camera", "camera_status", "activate_camera", "deactivate_camera",
        "camera_snapshot")]
    for i, call in enumerate(calls):
        assert answer(call, legacy) == answer(call, domain), f"call #{i} differs"


def test_either_path_continues_what_the_other_began(station: Station, both) -> None:
    legacy, domain = both
    gid = station.gate.id
    v1 = domain.create_rule(CreateRule(AlertRule("motion at night", "motion", Comparator.GT, 0.2))).rule
    v2 = legacy.update_rule(UpdateRule(v1.id, {"threshold": 0.3}, expected_version=v1.version)).rule
    v3 = domain.update_rule(UpdateRule(v1.id, {"severity": "critical"}, expected_version=v2.version)).rule
    assert (v1.version, v2.version, v3.version) == (1, 2, 3) and v3.threshold == 0.3
    refused(lambda: legacy.update_rule(UpdateRule(v1.id, {"threshold": 1}, expected_version=2)), ErrorCode.CONFLICT)

    started = legacy.start_camera(CameraRef(gid))
    refused(lambda: domain.start_camera(CameraRef(gid)), ErrorCode.INVALID_STATE, "already")
    assert domain.camera_status(CameraRef(gid)).pid == started.pid
    off = domain.deactivate_camera(CameraRef(gid))
    assert off.state is CameraState.INACTIVE
    assert legacy.camera_status(CameraRef(gid)) == off
    refused(lambda: legacy.start_camera(CameraRef(gid)), ErrorCode.INVALID_STATE, "inactive")
    assert legacy.activate_camera(CameraRef(gid)) == domain.camera_status(CameraRef(gid))
