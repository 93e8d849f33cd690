"""``edge-station rollout status|set|advance|rollback|resume|options|report``: per track, audited,
invalid values refused clearly (the gate itself: test_rollout_gate.py)."""

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
    code, out, err = run(parser, store, "set", "--track", "rules", "--domain", "on", "--percent", "25")
    assert code == 1 and "verify" in err and "override" in err  # raising goes through the gate
    code, out, _ = run(parser, store, "set", "--track", "rules", "--domain", "on", "--percent", "25",
                       "--override-reason", "lab station")
    assert code == 0 and "rules track domain path on, 25 %" in out and "override recorded" in out
    code, out, _ = run(parser, store, "status")
    assert code == 0 and "track rules" in out and "track cameras" in out and "stage gate" in out
    code, out, _ = run(parser, store, "status", "--json")
    doc = json.loads(out)
    rules, cams = doc["tracks"]["rules"], doc["tracks"]["cameras"]
    assert rules["settings"]["percent"] == 25 and rules["gate"]["next"] == 50
    assert cams["settings"]["percent"] == 0 and cams["gate"]["next"] == 10  # the tracks are independent
    with store.uow() as uow:
        e = {x.key: x for x in uow.audit.recent(20, op_prefix="settings.set")}
        (o,) = uow.audit.recent(5, op_prefix="rollout.override")
    assert e["rollout.rules.percent"].actor == "cli" and e["rollout.rules.percent"].detail["new"] == 25
    assert "rollout.cameras.percent" not in e
    assert o.reason == "lab station" and o.key == "rules" and o.detail["to"] == 25


@pytest.mark.parametrize(("argv", "needle"), [
    (["set", "--percent", "150"], "out of range"),
    (["set", "--percent", "ten"], "not a percentage"),
    (["set", "--percent", "12.5"], "not a percentage"),
    (["set", "--domain", "maybe"], "not a boolean"),
    (["set"], "give --domain"),
    (["set", "--track", "camera", "--percent", "10"], "unknown rollout track 'camera' (tracks: rules, cameras)"),
])
def test_invalid_values_are_refused_with_one_clear_line(parser, store, argv, needle):
    code, out, err = run(parser, store, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and err.startswith("edge-station: rollout set")
    s = RolloutControl(store, env={}).load()
    assert [t.percent for t in s.tracks.values()] == [0, 0]


def test_a_field_locked_by_the_environment_is_refused(parser, store):
    code, _, err = run(parser, store, "set", "--percent", "50", env={"ROLLOUT_PERCENT": "10"})
    assert code == 2 and "ROLLOUT_PERCENT=10" in err
    code, out, _ = run(parser, store, "status", env={"ROLLOUT_PERCENT": "10"})
    assert out.count("locked by ROLLOUT_PERCENT") == 2  # both tracks
    code, _, err = run(parser, store, "set", "--track", "cameras", "--percent", "0",
                       env={"ROLLOUT_PERCENT_CAMERAS": "10"})
    assert code == 2 and "ROLLOUT_PERCENT_CAMERAS=10" in err and "cameras track" in err
    code, _, err = run(parser, store, "set", "--track", "rules", "--percent", "0",
                       env={"ROLLOUT_PERCENT_CAMERAS": "10"})
    assert code == 0  # the per-track variable locks only its track


def test_an_environment_variable_naming_an_unknown_track_is_refused(parser, store):
    code, out, err = run(parser, store, "status", env={"ROLLOUT_PERCENT_CAMERA": "10"})
    assert code == 2 and out == ""
    assert "ROLLOUT_PERCENT_CAMERA names an unknown rollout track 'CAMERA'" in err
    assert "ROLLOUT_PERCENT_RULES, ROLLOUT_PERCENT_CAMERAS" in err


def test_advance_is_refused_until_verified_then_goes_to_10(parser, store):
    code, out, err = run(parser, store, "advance", "--track", "rules")
    assert code == 1 and "verify" in out and "refused" in err
    RolloutControl(store, env={}).record_verification(True, 0, 0, actor="test")
    code, out, _ = run(parser, store, "advance", "--track", "rules")
    assert code == 0 and "rules track 0 % -> 10 %" in out
    s = RolloutControl(store, env={}).load()
    assert (s.track("rules").use_domain, s.track("rules").percent) == (True, 10)
    assert (s.track("cameras").use_domain, s.track("cameras").percent) == (False, 0)
    code, out, _ = run(parser, store, "advance", "--track", "rules")  # at 10 %: time and coverage hold it
    assert code == 1 and "time_at_stage" in out and "coverage" in out and "unseen on the domain path" in out
    code, out, err = run(parser, store, "advance", "--track", "cameras")  # decision point 2
    assert code == 1 and "dp2_rules_complete" in out and "dp2_rollback_rehearsed" in out
    with store.uow() as uow:
        assert [e.reason for e in uow.audit.recent(5, op_prefix="rollout.advance")] == ["rules 0 -> 10"]


def test_rollback_is_one_step_audited_and_shows_the_checklist(parser, store):
    run(parser, store, "set", "--domain", "on", "--percent", "50", "--override-reason", "test setup")
    code, out, _ = run(parser, store, "rollback", "--track", "all", "--reason", "errors seen on camera 3")
    assert code == 0 and "rolled back the rules track" in out and "rolled back the cameras track" in out
    for t in ("rules", "cameras"):  # each item printed once, named by its track, as verified so far
        assert out.count(f"[x] {t}: target_share_zero") == 1 and out.count(f"[ ] {t}: no_domain_calls") == 1
        assert out.count(f"[ ] {t}: no_shadow_on_domain") == 1
    s = RolloutControl(store, env={}).load()
    for t in s.tracks.values():
        assert (t.use_domain, t.percent, t.latched) == (False, 0, True)
    with store.uow() as uow:
        got = {e.key: e for e in uow.audit.recent(5, op_prefix="rollout.rollback")}
    assert set(got) == {"rules", "cameras"}
    assert got["cameras"].reason == "errors seen on camera 3" and got["cameras"].detail["from_percent"] == 50
    code, out, _ = run(parser, store, "status")
    assert out.count("ROLLED BACK") == 2 and "rollback checklist of the cameras track" in out
    # no back door: set does not clear a latch, even with an override reason
    code, _, err = run(parser, store, "set", "--domain", "on", "--percent", "10", "--override-reason", "x")
    assert code == 1 and "latched" in err and "rollout resume" in err
    assert RolloutControl(store, env={}).load().latched
    code, _, err = run(parser, store, "resume", "--track", "rules", "--reason", "")
    assert code == 2 and "needs a reason" in err
    code, out, _ = run(parser, store, "resume", "--track", "rules", "--reason", "fixed the rule writer")
    assert code == 0 and "latch cleared" in out
    s = RolloutControl(store, env={}).load()
    assert not s.track("rules").latched and s.track("rules").target_percent == 0 and s.track("cameras").latched
    with store.uow() as uow:
        (e,) = uow.audit.recent(5, op_prefix="rollout.resume")
    assert (e.key, e.actor, e.reason) == ("rules", "cli", "fixed the rule writer")


def test_options_and_reports_from_the_command_line(parser, store):
    code, out, _ = run(parser, store, "options", "hold_10_s=60", "canary_rate=6")
    assert code == 0 and "hold_10_s                60" in out and "canary_rate      6 calls/min" in out
    code, _, err = run(parser, store, "options", "hold_10_s=-1")
    assert code == 2 and "hold_10_s" in err
    code, _, err = run(parser, store, "options", "no_such=1", "hold_25_s=5")
    assert code == 2 and "unknown rollout threshold 'no_such'" in err
    assert RolloutControl(store, env={}).load().thresholds.hold_25_s == 3 * 86400  # nothing half-applied
    code, out, _ = run(parser, store, "report", "file", "--track", "cameras", "--text", "snapshot is black")
    assert code == 0 and "report #1 filed against the cameras track" in out
    code, out, _ = run(parser, store, "report", "list", "--open")
    assert "#1 cameras at 0 % by cli [open] snapshot is black" in out
    code, out, _ = run(parser, store, "report", "resolve", "1", "--note", "lens cap")
    assert code == 0 and "0 open report(s) left" in out
    code, _, err = run(parser, store, "report", "resolve", "1", "--note", "again")
    assert code == 2 and "already resolved" in err


def test_rollback_wins_even_with_the_environment_forcing_domain(parser, store):
    env = {"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "100"}
    code, out, _ = run(parser, store, "rollback", env=env)
    assert code == 0
    s = RolloutControl(store, env=env).load()
    for t in s.tracks.values():
        assert t.use_domain and t.percent == 100 and t.target_percent == 0
