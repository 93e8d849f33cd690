"""``run_verification`` and ``edge-station verify`` on a scratch station made of in-memory fakes."""

from __future__ import annotations

import argparse
import io
import json
from contextlib import contextmanager
from dataclasses import replace

from app.domain.operations import OPERATIONS
from app.rollout.cli import add_cli, cmd_verify
from app.rollout.control import RolloutControl
from app.rollout.verify import SCENARIO, ScratchStation, iter_ops, run_verification
from app.store import open_store
from tests.unit.test_rollout_fakes import FakeOps, FakeState


def make_factory(tamper: dict | None = None, fail: dict | None = None, builds: list | None = None):
    @contextmanager
    def factory():
        st = FakeState.with_cameras(2, inactive=(2,))
        legacy, domain = FakeOps(st, "legacy"), FakeOps(st, "domain")
        domain.tamper.update(tamper or {})
        domain.fail.update(fail or {})
        if builds is not None:
            builds.append((legacy, domain))
        yield ScratchStation(legacy, domain, active_camera=1, inactive_camera=2)

    return factory


def test_scenario_covers_all_thirteen_operations_valid_and_invalid():
    assert {s.op for s in SCENARIO} == set(OPERATIONS)
    report = run_verification(make_factory())
    assert set(iter_ops(report)) == set(OPERATIONS)
    codes = {r.legacy.get("error") for r in report.rows if isinstance(r.legacy, dict)} - {None}
    assert {"not_found", "invalid_state", "validation", "conflict", "unavailable"} <= codes


def test_identical_paths_pass_and_each_run_uses_its_own_path_only():
    builds: list = []
    report = run_verification(make_factory(builds=builds))
    assert report.passed, report.table()
    assert len(report.rows) == len(SCENARIO)
    (leg_run_l, leg_run_d), (dom_run_l, dom_run_d) = builds
    assert leg_run_l.calls and not leg_run_d.calls  # the legacy run never touched domain
    assert dom_run_d.calls and not dom_run_l.calls
    assert "verify PASSED" in report.table()


def test_a_diverging_result_fails_and_names_the_operation():
    # the domain path reports a different codec from a probe: a real observable difference
    report = run_verification(make_factory(tamper={"probe_camera": lambda r: replace(r, codec="hevc")}))
    assert not report.passed
    bad = report.mismatches
    assert [r.op for r in bad] == ["probe_camera"]
    assert bad[0].diff == ("codec",)
    assert "MISMATCH step" in report.table() and "probe_camera" in report.table()


def test_volatile_fields_do_not_count_as_a_difference():
    report = run_verification(make_factory(tamper={
        "camera_stats": lambda r: replace(r, pid=1, cpu_percent=99.0, rss_bytes=5),
        "camera_status": lambda r: replace(r, uptime=123.0, pid=77),
    }))
    assert report.passed, report.table()


def test_a_domain_failure_is_a_failure_not_a_silent_fallback():
    report = run_verification(make_factory(fail={"camera_logs": lambda: RuntimeError("db gone")}))
    assert not report.passed
    assert {r.op for r in report.failures} == {"camera_logs"}
    assert all("RuntimeError" in r.domain["failure"] for r in report.failures)


def test_cli_verify_prints_a_table_exits_nonzero_on_mismatch_and_records_for_the_gate(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    args = parser.parse_args(["verify"])
    assert args.handler is cmd_verify
    assert cmd_verify(args, make_factory(), store, out=out, err=err) == 0
    assert "operation" in out.getvalue() and "legacy" in out.getvalue() and "match" in out.getvalue()
    assert RolloutControl(store, env={}).load().last_verify["passed"] is True

    out = io.StringIO()
    args = parser.parse_args(["verify", "--json"])
    code = cmd_verify(args, make_factory(tamper={"list_status": lambda r: replace(r, items=r.items[:1])}),
                      store, out=out, err=err)
    assert code == 1
    doc = json.loads(out.getvalue())
    assert doc["passed"] is False and any("list_status" in m for m in doc["mismatches"])
    assert RolloutControl(store, env={}).load().last_verify["passed"] is False
    with store.uow() as uow:
        assert [e.outcome for e in uow.audit.recent(10, op_prefix="rollout.verify")] == ["failed", "ok"]
    store.dispose()


def test_cli_verify_refuses_a_bad_timeout(tmp_path):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    err = io.StringIO()
    assert cmd_verify(parser.parse_args(["verify", "--frame-timeout", "-1"]), make_factory(),
                      out=io.StringIO(), err=err) == 2
    assert err.getvalue().count("\n") == 1 and "frame-timeout" in err.getvalue()
