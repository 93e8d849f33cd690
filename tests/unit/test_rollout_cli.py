"""``edge-station rollout status|set|advance|rollback``: audited, invalid values refused clearly."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from app.rollout import RolloutControl
from app.rollout.cli import add_cli, cmd_rollout
from app.store import open_store


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield s
    s.dispose()


@pytest.fixture
def parser():
    p = argparse.ArgumentParser(prog="edge-station")
    add_cli(p.add_subparsers(dest="command"))
    return p


def run(parser, store, *argv, env=None):
    out, err = io.StringIO(), io.StringIO()
    args = parser.parse_args(["rollout", *argv])
    assert args.handler is cmd_rollout
    code = args.handler(args, store, out=out, err=err, env=env or {})
    return code, out.getvalue(), err.getvalue()


def test_set_then_status(parser, store):
    code, out, _ = run(parser, store, "set", "--domain", "on", "--percent", "25")
    assert code == 0 and "25 %" in out
    code, out, _ = run(parser, store, "status")
    assert code == 0 and "domain path      on" in out and "stage gate" in out
    code, out, _ = run(parser, store, "status", "--json")
    doc = json.loads(out)
    assert doc["settings"]["percent"] == 25 and doc["gate"]["next"] == 50
    with store.uow() as uow:
        e = {x.key: x for x in uow.audit.recent(20, op_prefix="settings.set")}
    assert e["rollout.percent"].actor == "cli" and e["rollout.percent"].detail["new"] == 25


@pytest.mark.parametrize(("argv", "needle"), [
    (["set", "--percent", "150"], "out of range"),
    (["set", "--percent", "ten"], "not a percentage"),
    (["set", "--percent", "12.5"], "not a percentage"),
    (["set", "--domain", "maybe"], "not a boolean"),
    (["set"], "give --domain"),
])
def test_invalid_values_are_refused_with_one_clear_line(parser, store, argv, needle):
    code, out, err = run(parser, store, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and err.startswith("edge-station: rollout set")
    assert RolloutControl(store, env={}).load().percent == 0


def test_a_field_locked_by_the_environment_is_refused(parser, store):
    code, _, err = run(parser, store, "set", "--percent", "50", env={"ROLLOUT_PERCENT": "10"})
    assert code == 2 and "ROLLOUT_PERCENT=10" in err
    code, out, _ = run(parser, store, "status", env={"ROLLOUT_PERCENT": "10"})
    assert "locked by ROLLOUT_PERCENT" in out


def test_advance_is_refused_until_verified_then_goes_to_10(parser, store):
    code, out, err = run(parser, store, "advance")
    assert code == 1 and "verify" in out and "refused" in err
    RolloutControl(store, env={}).record_verification(True, 0, 0, actor="test")
    code, out, _ = run(parser, store, "advance")
    assert code == 0 and "0 % -> 10 %" in out
    s = RolloutControl(store, env={}).load()
    assert (s.use_domain, s.percent) == (True, 10)
    code, out, _ = run(parser, store, "advance")  # at 10 %: time and calls hold it
    assert code == 1 and "time_at_stage" in out and "domain_calls" in out
    with store.uow() as uow:
        assert [e.reason for e in uow.audit.recent(5, op_prefix="rollout.advance")] == ["0 -> 10"]


def test_rollback_is_one_step_audited_and_shows_the_checklist(parser, store):
    run(parser, store, "set", "--domain", "on", "--percent", "50")
    code, out, _ = run(parser, store, "rollback", "--reason", "errors seen on camera 3")
    assert code == 0 and "rolled back" in out and "rollback checklist" in out
    assert "[x] target_share_zero" in out and "[ ] no_domain_calls" in out
    s = RolloutControl(store, env={}).load()
    assert (s.use_domain, s.percent, s.latched) == (False, 0, True)
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="rollout.rollback")
    assert e.reason == "errors seen on camera 3" and e.detail["from_percent"] == 50
    code, out, _ = run(parser, store, "status")
    assert "ROLLED BACK" in out and "rollback checklist" in out
    code, _, _ = run(parser, store, "set", "--domain", "on", "--percent", "10")  # clears the latch
    assert code == 0 and not RolloutControl(store, env={}).load().latched


def test_rollback_wins_even_with_the_environment_forcing_domain(parser, store):
    env = {"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "100"}
    code, out, _ = run(parser, store, "rollback", env=env)
    assert code == 0
    s = RolloutControl(store, env=env).load()
    assert s.use_domain and s.percent == 100 and s.target_percent == 0
