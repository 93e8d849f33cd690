"""Two tracks: per-track routing properties and the migration from a one-track database."""

from __future__ import annotations

import sqlite3

from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from app.domain.operations import (
    OPERATIONS,
    TRACKS,
    CameraRef,
    CreateRule,
    ListStatus,
    UpdateRule,
    track_of,
)
from app.platform.paths import sqlite_url
from app.rollout import RolloutControl, RolloutSettings
from app.rollout.bucketing import Population, domain_count
from app.rollout.decision import decide, routing_key
from app.store import open_store
from app.store.db import _alembic_config
from tests.unit.test_rollout_fakes import sample_rule

pct = st.integers(0, 100)
ids = st.lists(st.integers(1, 5000), min_size=1, max_size=40, unique=True)


def settings(p_rules: int, p_cams: int, salt: str) -> RolloutSettings:
    s = RolloutSettings(salt=salt)
    s = s.with_track("rules", use_domain=True, percent=p_rules)
    return s.with_track("cameras", use_domain=True, percent=p_cams)


def route(s: RolloutSettings, pops: dict[str, Population], op: str, req) -> str:
    pop_name, key = routing_key(op, req)
    return decide(s.track(track_of(op)), pops[pop_name], key).path


def pops_for(salt, cams, rules):
    return {"camera": Population(salt, [f"camera:{i}" for i in cams]),
            "rule": Population(salt, [f"rule:{i}" for i in rules]),
            "station": Population(salt, ["station:list_status"])}


@given(pct, pct, ids, ids, st.text(min_size=1, max_size=6))
def test_each_track_routes_an_exact_sticky_share_of_its_own_keys(p_rules, p_cams, cams, rules, salt):
    s = settings(p_rules, p_cams, salt)
    pops = pops_for(salt, cams, rules)
    on_cams = {c for c in cams if route(s, pops, "camera_status", CameraRef(c)) == "domain"}
    on_rules = {r for r in rules if route(s, pops, "update_rule", UpdateRule(r, {})) == "domain"}
    assert len(on_cams) == domain_count(p_cams, len(cams))
    assert len(on_rules) == domain_count(p_rules, len(rules))
    # sticky: every camera operation of one camera takes the same path, and so do a restart's decisions
    again = pops_for(salt, list(reversed(cams)), rules)
    for c in cams:
        paths = {route(s, again, op, CameraRef(c)) for op in ("camera_status", "start_camera", "camera_snapshot")}
        assert paths == {"domain" if c in on_cams else "legacy"}


@given(pct, pct, pct, ids, ids, st.text(min_size=1, max_size=6))
def test_the_tracks_are_independent(p_rules, p_rules2, p_cams, cams, rules, salt):
    pops = pops_for(salt, cams, rules)
    a, b = settings(p_rules, p_cams, salt), settings(p_rules2, p_cams, salt)
    b = b.with_track("rules", latched=p_rules2 % 2 == 0)  # even a latch on the rules track changes no camera
    for c in cams:
        assert route(a, pops, "camera_status", CameraRef(c)) == route(b, pops, "camera_status", CameraRef(c))
    assert route(a, pops, "list_status", ListStatus()) == route(b, pops, "list_status", ListStatus())
    c = settings(p_rules, 0, salt)  # cameras at 0: the rules still route by their own percent
    for r in rules:
        assert route(a, pops, "update_rule", UpdateRule(r, {})) == route(c, pops, "update_rule", UpdateRule(r, {}))
    assert {route(c, pops, "camera_status", CameraRef(x)) for x in cams} == {"legacy"}


@given(pct, st.text(min_size=1, max_size=6), st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=20,
                                                        unique=True))
def test_a_new_rule_name_is_sticky_and_monotonic_as_the_rules_percent_rises(p, salt, names):
    pops = pops_for(salt, [1], [1, 2, 3])
    for name in names:
        req = CreateRule(sample_rule(name))
        at_p = route(settings(p, 0, salt), pops, "create_rule", req)
        assert at_p == route(settings(p, 0, salt), pops, "create_rule", req)
        if at_p == "domain":
            assert route(settings(min(p + 15, 100), 0, salt), pops, "create_rule", req) == "domain"


def test_every_operation_is_on_exactly_one_track():
    assert sorted(op for ops in TRACKS.values() for op in ops) == sorted(OPERATIONS)
    assert TRACKS["rules"] == ("create_rule", "update_rule") and len(TRACKS["cameras"]) == 11


# ---------------------------------------------------------------- migration


def one_track_database(tmp_path, values: dict) -> str:
    """A database as the station left it before the tracks: schema 0001, one-track keys."""
    url = sqlite_url(tmp_path / "old.db")
    engine = create_engine(url)
    cfg = _alembic_config(engine)
    command.upgrade(cfg, "0001")
    engine.dispose()
    import json

    conn = sqlite3.connect(tmp_path / "old.db")
    for k, v in values.items():
        conn.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, '2026-11-30 10:00:00')",
                     (k, json.dumps(v)))
    conn.commit()
    conn.close()
    return url


def test_a_one_track_database_migrates_with_its_settings_on_both_tracks(tmp_path):
    url = one_track_database(tmp_path, {"rollout.use_domain": True, "rollout.percent": 25,
                                        "rollout.stage_entered_at": 1_700_000_000.0, "rollout.salt": "abc",
                                        "rollout.thresholds.window_s": 120})
    store = open_store(url)
    try:
        with store.uow() as uow:
            stored = uow.settings.all()
        assert "rollout.percent" not in stored and "rollout.use_domain" not in stored
        s = RolloutControl(store, env={}).load()
        for t in ("rules", "cameras"):
            ts = s.track(t)
            assert (ts.use_domain, ts.percent, ts.stage, ts.latched) == (True, 25, 25, False)
            assert ts.stage_entered_at == 1_700_000_000.0
        assert s.salt == "abc" and s.thresholds.window_s == 120  # shared settings untouched
    finally:
        store.dispose()


def test_a_latched_one_track_database_stays_rolled_back_on_both_tracks(tmp_path):
    url = one_track_database(tmp_path, {"rollout.use_domain": False, "rollout.percent": 0, "rollout.latched": True,
                                        "rollout.latch_reason": "auto-rollback: errors",
                                        "rollout.latched_at": 1_700_000_100.0})
    store = open_store(url)
    try:
        s = RolloutControl(store, env={}).load()
        for t in s.tracks.values():
            assert t.latched and t.latch_reason == "auto-rollback: errors" and t.target_percent == 0
        with store.uow() as uow:
            assert uow.reports.list() == []  # the reports table exists and is empty
    finally:
        store.dispose()
