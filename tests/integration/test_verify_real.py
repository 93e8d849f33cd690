"""``edge-station verify`` on a real scratch station: temporary SQLite, real supervisor, real
``test://`` workers decoding with PyAV, the real legacy and domain implementations."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from app.domain.operations import OPERATIONS
from app.rollout.verify import run_verification
from app.station import scratch_station

pytestmark = pytest.mark.slow


class Diverging:
    """Wraps one real implementation and changes one operation's observable result."""

    def __init__(self, inner, op, change):
        self._inner, self._op, self._change = inner, op, change

    def __getattr__(self, name):
        fn = getattr(self._inner, name)
        if name != self._op:
            return fn
        return lambda req: self._change(fn(req))


def test_real_legacy_and_domain_agree_on_all_thirteen_operations():
    report = run_verification(scratch_station, frame_timeout=30)
    assert report.passed, report.table()
    assert {r.op for r in report.rows} == set(OPERATIONS)
    snap = next(r for r in report.rows if r.op == "camera_snapshot" and r.case == "running camera")
    assert snap.legacy["png"] is True and snap.legacy["width"] > 0  # a real frame was compared


def test_a_real_path_made_to_diverge_fails_verify_and_names_the_operation():
    @contextlib.contextmanager
    def factory():
        with scratch_station() as st:
            yield replace(st, domain=Diverging(st.domain, "camera_stats", lambda r: replace(r, running=not r.running)))

    report = run_verification(factory, frame_timeout=30)
    assert not report.passed
    assert {r.op for r in report.mismatches} == {"camera_stats"}
    assert "MISMATCH step" in report.table() and "camera_stats" in report.table()


def test_edge_station_verify_command_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("EDGE_STATION_DB", "USE_DOMAIN_SERVICE", "ROLLOUT_PERCENT")}
    env["EDGE_STATION_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, "-m", "app", "verify", "--json"], capture_output=True, text=True,
                          timeout=180, env=env, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["passed"] and doc["steps"] >= 13 and not doc["mismatches"]
    status = subprocess.run([sys.executable, "-m", "app", "rollout", "status", "--json"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    for track in ("rules", "cameras"):  # the verification is shared by both tracks' gates
        gate = doc["tracks"][track]["gate"]
        assert {c["name"]: c["status"] for c in gate["checks"]}["verification"] == "pass"
    assert doc["health"]["verdict"] == "inconclusive" and "needs" in doc["health"]


class Failing:
    """Wraps one real implementation; one operation raises an unexpected error."""

    def __init__(self, inner, op):
        self._inner, self._op = inner, op

    def __getattr__(self, name):
        fn = getattr(self._inner, name)
        if name != self._op:
            return fn

        def boom(req):
            raise RuntimeError(f"{name} broke on the domain path")
        return boom


def test_a_rehearsal_whose_domain_path_fails_is_failed_recorded_and_holds_decision_point_2(tmp_path):
    from app.rollout.control import RolloutControl
    from app.rollout.health import Status
    from app.rollout.rehearse import rehearse_and_record
    from app.store import open_store

    @contextlib.contextmanager
    def factory():
        with scratch_station() as st:
            yield replace(st, domain=Failing(st.domain, "camera_status"))

    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    try:
        control = RolloutControl(store, env={})
        result = rehearse_and_record(factory, control, actor="test", track="cameras")
        assert not result.passed
        failed = {c.name: c.message for c in result.checks if c.status is not Status.PASS}
        # before the rollback camera_status fell back to legacy: the domain path did not serve it
        assert "domain_served_before" in failed and "camera_status" in failed["domain_served_before"]
        settings = control.load()
        assert settings.last_rehearsal["passed"] is False and settings.last_rehearsal["track"] == "cameras"
        check = control.rehearsal_check(settings, None)
        assert check.status is Status.FAIL and "the last rollback rehearsal of the cameras track failed" in check.message
    finally:
        store.dispose()
