"""The rules of "the same answer" (app.rollout.normalize), for in-process results and API answers alike."""

from __future__ import annotations

import pytest

from app.api.serialize import to_json
from app.domain import AlertRule, CameraState, Comparator, NotFound
from app.domain.operations import (
    CameraLogs,
    CameraStats,
    CameraStatus,
    ExitRecord,
    LogEntry,
    ProbeResult,
    RuleResult,
    Snapshot,
    StatusList,
)
from app.rollout.normalize import (
    RESULT_TYPES,
    differences,
    is_failure,
    normalize,
    normalize_answer,
    same_answer,
    summarize,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff" + b"\x00" * 16


def _status(**kw: object) -> CameraStatus:
    base: dict = dict(camera_id=1, name="Gate", state=CameraState.RUNNING, active=True)
    return CameraStatus(**(base | kw))


def _rule(**kw: object) -> AlertRule:
    return AlertRule(name="low fps", metric="fps", comparator=Comparator.LT, threshold=5.0, id=3, **kw)


SAMPLES = {
    "camera_status": _status(pid=10, uptime=2.5, fps=9.87654, restarts=1,
                             last_exit=ExitRecord(code=1, signal=None, reason="crashed", at=12.0)),
    "list_status": StatusList((_status(camera_id=2, name="B"), _status(pid=4))),
    "camera_logs": CameraLogs(1, (LogEntry(1.0, "worker", "info", "hello"),)),
    "camera_snapshot": Snapshot(1, 320, 180, 5.0, 7, PNG),
    "probe_camera": ProbeResult(1, True, "h264", 320, 180, 10.0, "yuv420p", None, 0.123),
    "camera_stats": CameraStats(1, 5.0, True, pid=3, cpu_percent=12.5, samples=4),
    "create_rule": RuleResult(_rule()),
}


def test_volatile_fields_are_not_compared():
    a = _status(pid=1, uptime=1.0, fps=3.0, last_frame_age=0.1, codec="h264")
    b = _status(pid=2, uptime=9.0, fps=30.0, last_frame_age=None, codec=None)
    assert same_answer(normalize(a), normalize(b))
    assert "pid" not in normalize(a) and "uptime" not in normalize(a)
    stats = normalize(CameraStats(1, 5.0, True, pid=3, cpu_percent=12.5, samples=4))
    assert stats == {"camera_id": 1, "window_s": 5.0, "running": True}
    exit_ = normalize(ExitRecord(code=1, signal=None, reason="crashed", at=12.0))
    assert exit_ == {"code": 1, "signal": None, "reason": "crashed"}


def test_starting_and_running_are_the_same_state():
    assert normalize(_status(state=CameraState.STARTING)) == normalize(_status(state=CameraState.RUNNING))
    assert normalize(_status(state=CameraState.STOPPED))["state"] == "stopped"


def test_an_observable_difference_is_not_the_same_answer_and_is_named():
    a, b = normalize(_status(restarts=0)), normalize(_status(restarts=2))
    assert not same_answer(a, b)
    assert differences(a, b) == ["restarts"]


def test_floats_are_rounded_to_two_places():
    a = normalize(ProbeResult(1, True, fps=10.001))
    b = normalize(ProbeResult(1, True, fps=10.004))
    assert same_answer(a, b) and a["fps"] == 10.0


def test_errors_are_compared_by_code_not_message():
    a, b = normalize(NotFound("camera 9 does not exist")), normalize(NotFound("no such camera"))
    assert a == {"error": "not_found"} and same_answer(a, b)
    assert summarize(a) == "error:not_found"


def test_a_failure_is_never_the_same_answer():
    f = {"failure": "RuntimeError: db gone"}
    assert is_failure(f) and not is_failure({"error": "not_found"})
    assert not same_answer(f, dict(f))


def test_a_snapshot_is_compared_by_a_valid_image_not_by_its_bytes():
    a = normalize(Snapshot(1, 320, 180, 1.0, 1, PNG))
    b = normalize(Snapshot(1, 320, 180, 9.0, 99, PNG + b"more"))
    assert same_answer(a, b) and a["png"] is True and "seq" not in a
    jpeg = normalize(Snapshot(1, 320, 180, 1.0, 1, format="jpeg", jpeg=JPEG))
    assert jpeg["png"] is True
    broken = normalize(Snapshot(1, 320, 180, 1.0, 1, b"not an image"))
    assert broken["png"] is False and not same_answer(a, broken)


def test_log_lines_are_compared_as_a_list_not_by_text():
    a = normalize(CameraLogs(1, (LogEntry(1.0, "worker", "info", "a"),)))
    b = normalize(CameraLogs(1, ()))
    assert same_answer(a, b) and a == {"camera_id": 1, "lines": True}


def test_status_lists_are_sorted_by_camera_id():
    a = normalize(StatusList((_status(camera_id=2, name="B"), _status(camera_id=1))))
    b = normalize(StatusList((_status(camera_id=1), _status(camera_id=2, name="B"))))
    assert same_answer(a, b) and [i["camera_id"] for i in a["items"]] == [1, 2]


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_an_api_answer_normalizes_like_the_result_it_carries(op):
    result = SAMPLES[op]
    assert normalize_answer(op, to_json(result), live=False) == normalize(result)
    assert normalize_answer(op, to_json(result), live=True) == normalize(result, live=True)


def test_every_operation_has_a_result_type():
    from app.domain.operations import OPERATIONS

    assert set(RESULT_TYPES) == set(OPERATIONS)
    with pytest.raises(KeyError, match="unknown operation 'nope'"):
        normalize_answer("nope", {})


def test_the_live_profile_drops_what_two_runs_on_one_station_differ_in():
    first = _status(restarts=0)
    second = _status(restarts=1, state=CameraState.STOPPED,
                     last_exit=ExitRecord(code=0, signal=None, reason="stopped", at=1.0))
    assert not same_answer(normalize(first), normalize(second))
    assert normalize(second, live=True) == {"camera_id": 1, "name": "Gate", "active": True}
    assert same_answer(normalize(first, live=True), normalize(second, live=True))
    # each live run names its rule after its path; ids differ; the rest must agree
    a = normalize_answer("create_rule", to_json(RuleResult(_rule())))
    b = normalize_answer("create_rule", to_json(RuleResult(_rule().with_changes(name="other", id=9))))
    assert same_answer(a, b)
    c = normalize_answer("create_rule", to_json(RuleResult(_rule().with_changes(threshold=6.0))))
    assert differences(a, c) == ["rule.threshold"]
    assert normalize_answer("probe_camera", to_json(SAMPLES["probe_camera"])) == {
        "camera_id": 1, "ok": True, "codec": "h264", "width": 320, "height": 180}
    assert normalize_answer("camera_snapshot", to_json(SAMPLES["camera_snapshot"])) == {"camera_id": 1, "png": True}
    assert normalize_answer("camera_stats", to_json(SAMPLES["camera_stats"])) == {"camera_id": 1, "running": True}
