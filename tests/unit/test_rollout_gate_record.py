"""verify_and_record: run a verification, show it, record it for the stage gate; nothing when it raises."""

from __future__ import annotations

from typing import Any

import pytest

from app.rollout.errors import VerificationCancelled
from app.rollout.gate_record import StoreRecorder, verify_and_record
from app.rollout.health import Check, Status
from app.rollout.rehearse import RehearsalResult
from app.rollout.verify import Row, VerifyReport


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def record_verification(self, *a: Any, **kw: Any) -> None:
        self.calls.append(("verification", a, kw))

    def record_rehearsal(self, *a: Any, **kw: Any) -> None:
        self.calls.append(("rehearsal", a, kw))


def _report(match: bool) -> VerifyReport:
    return VerifyReport(rows=[Row(1, "camera_status", "a case", {"state": "stopped"},
                                  {"state": "stopped" if match else "running"}, match)])


def test_a_verification_is_shown_then_recorded_with_its_counts():
    rec, order = Recorder(), []
    rec_calls = rec.calls
    assert not verify_and_record(lambda: _report(False), rec, actor="cli",
                               show=lambda r: order.append(("shown", len(rec_calls)))).passed
    assert order == [("shown", 0)]  # shown before it is recorded
    [(kind, args, kw)] = rec.calls
    assert kind == "verification" and args == (False, 1, 0) and kw["actor"] == "cli"
    assert kw["detail"]["mismatches"] == ["1:camera_status (a case)"]
    assert verify_and_record(lambda: _report(True), rec, actor="cli").passed
    assert rec.calls[-1][1] == (True, 0, 0)


def test_a_rehearsal_is_recorded_as_a_rehearsal_of_its_track():
    rec = Recorder()
    result = RehearsalResult("cameras", [Check("no_domain_code_after", Status.PASS, 0, 0, "fine")])
    verify_and_record(lambda: result, rec, actor="operator")
    [(kind, args, kw)] = rec.calls
    assert kind == "rehearsal" and args[:2] == ("cameras", True) and kw == {"actor": "operator"}
    assert args[2][0]["name"] == "no_domain_code_after"


def test_a_cancelled_verification_records_nothing():
    rec = Recorder()

    def cancelled() -> VerifyReport:
        raise VerificationCancelled("verification cancelled before step 3 of 70; nothing was recorded")

    with pytest.raises(VerificationCancelled):
        verify_and_record(cancelled, rec, actor="operator")
    assert rec.calls == []


def test_without_a_recorder_nothing_is_recorded():
    assert not verify_and_record(lambda: _report(False), None, actor="cli").passed


def test_a_store_that_cannot_be_opened_is_reported_and_the_record_skipped():
    problems: list[Exception] = []

    def no_store() -> Any:
        raise OSError("no database here")

    rec = StoreRecorder(no_store, unavailable=problems.append)
    report = verify_and_record(lambda: _report(True), rec, actor="verify --live")
    assert report.passed and [str(p) for p in problems] == ["no database here"]


def test_a_store_recorder_opens_the_store_once_and_records_for_the_gate(tmp_path):
    from app.store import open_store

    url = f"sqlite:///{tmp_path / 'station.db'}"
    opened: list[Any] = []

    def opener() -> Any:
        opened.append(open_store(url))
        return opened[-1]

    verify_and_record(lambda: _report(True), StoreRecorder(opener, unavailable=pytest.fail), actor="verify --live")
    from app.rollout.control import RolloutControl

    check = open_store(url)
    try:
        assert RolloutControl(check, env={}).load().last_verify["passed"] is True
    finally:
        check.dispose()
    assert len(opened) == 1
