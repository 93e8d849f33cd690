"""Stations as a rollout population, for real: two Station objects on one database (a SQLite file,
and PostgreSQL when ``EDGE_STATION_TEST_PG_URL`` is set, as the other fleet tests).

A fleet rollback is applied by both stations within a bound, each verifying its checklist and
reporting it in its heartbeat; a station closed during the rollback applies it when it opens
again and says so (log, report, audit), and only once; a station new to the fleet does not apply a
rollback issued before it joined. A fleet percent puts exactly its share of the stations on the
track's domain path (the others route as at 0 %), the fleet gate refuses to widen while a station
on the stage does not pass its own gate, and every command validates before it writes.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from app.cli import main
from app.domain.fleet_rollout import (
    OP_FLEET_ROLLBACK,
    OP_FLEET_ROLLBACK_APPLIED,
    OP_FLEET_ROLLOUT,
    share_ids,
)
from app.domain.operations import CameraRef
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.stations import SETTING_GONE_AFTER
from tests.integration.test_fleet import GONE, fleet_json, station
from tests.integration.test_store_pg import pg_db, pg_server_url  # noqa: F401 - the PostgreSQL fixtures
from tests.support.waiting import wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_db(request, tmp_path) -> str:
    """One database for the fleet (as test_fleet's ``fleet_db``: the fleet's gone threshold set)."""
    url = sqlite_url(tmp_path / "fleet.db") if request.param == "sqlite" else request.getfixturevalue("pg_db").url
    store = open_store(url)
    try:
        with store.uow() as uow:
            uow.settings.set(SETTING_GONE_AFTER, GONE)
            uow.commit()
    finally:
        store.dispose()
    return url


#: a fleet rollback reaches a station within this (its heartbeat runs every 0.1 s in these tests)
APPLY_BOUND = 5.0


def by_name(url: str, capsys) -> dict[str, dict]:
    return {s["name"]: s for s in fleet_json(url, capsys)["stations"]}


def applied(url: str, capsys, name: str, track: str = "cameras") -> dict | None:
    st = by_name(url, capsys).get(name) or {}
    return (((st.get("rollout") or {}).get(track) or {}).get("fleet") or {}).get("rollback")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def audit(url: str, op: str) -> list:
    store = open_store(url)
    try:
        with store.uow() as uow:
            return [e for e in uow.audit.recent(limit=1000) if e.op == op]
    finally:
        store.dispose()


def test_a_fleet_rollback_is_applied_by_both_stations_within_seconds(fleet_db, tmp_path, capsys):
    a = station(fleet_db, tmp_path, "alpha").open()
    b = station(fleet_db, tmp_path, "beta").open()
    try:
        t0 = time.monotonic()
        code, out, err = cli(capsys, "fleet", "rollback", "cameras", "--db", fleet_db, "--reason", "drill")
        assert code == 0, err
        assert "fleet rollback of the cameras track" in out and "generation 1 issued at" in out
        wait_for(lambda: all((applied(fleet_db, capsys, n) or {}).get("generation") == 1 for n in ("alpha", "beta")),
                 APPLY_BOUND, "both stations reporting the fleet rollback applied")
        took = time.monotonic() - t0
        assert took < APPLY_BOUND
        for s in (a, b):
            t = s.rollout_settings().track("cameras")
            assert t.latched and t.target_percent == 0 and "fleet rollback 1: drill" in t.latch_reason
            assert not s.rollout_settings().track("rules").latched  # one track only
        for n in ("alpha", "beta"):
            rb = applied(fleet_db, capsys, n)
            assert rb["on_return"] is False and isinstance(rb["checklist"], dict)
            assert rb["checklist"]["failed"] is False  # verified: nothing on the domain path since
        code, out, _ = cli(capsys, "fleet", "status", "--db", fleet_db)
        assert "fleet rollback: generation 1 issued at" in out and "applied by 2, not yet 0" in out
        assert "applied by alpha" in out and "applied by beta" in out
        doc = json.loads(cli(capsys, "fleet", "status", "--db", fleet_db, "--json")[1])
        assert {x["name"] for x in doc["fleet_rollout"]["cameras"]["rollback"]["applied"]} == {"alpha", "beta"}
        assert [e.reason for e in audit(fleet_db, OP_FLEET_ROLLBACK)] == ["drill"]
        assert sorted(e.reason for e in audit(fleet_db, OP_FLEET_ROLLBACK_APPLIED)) == ["generation 1"] * 2
        # a second generation is applied again (the stations resume first, as after any rollback)
        a.rollout_resume(track="cameras", reason="fixed")
        assert cli(capsys, "fleet", "rollback", "cameras", "--db", fleet_db)[0] == 0
        wait_for(lambda: all((applied(fleet_db, capsys, n) or {}).get("generation") == 2 for n in ("alpha", "beta")),
                 APPLY_BOUND, "both stations applying generation 2")
        assert a.rollout_settings().track("cameras").latched
    finally:
        a.close()
        b.close()


def test_a_station_closed_during_the_rollback_applies_it_on_return_and_says_so(fleet_db, tmp_path, capsys, caplog):
    a = station(fleet_db, tmp_path, "alpha").open()
    b = station(fleet_db, tmp_path, "beta").open()
    try:
        b.close()
        assert cli(capsys, "fleet", "rollback", "rules", "--db", fleet_db, "--reason", "bad rule writes")[0] == 0
        wait_for(lambda: applied(fleet_db, capsys, "alpha", "rules"), APPLY_BOUND, "alpha applying it")
        out = cli(capsys, "fleet", "status", "--db", fleet_db)[1]
        assert "not yet: beta (stopped: applies it when it returns)" in out
        assert applied(fleet_db, capsys, "beta", "rules") is None
        with caplog.at_level(logging.INFO, logger="edge_station.fleet"):
            b = station(fleet_db, tmp_path, "beta").open()
        rb = wait_for(lambda: applied(fleet_db, capsys, "beta", "rules"), APPLY_BOUND, "beta reporting it")
        assert rb["generation"] == 1 and rb["on_return"] is True
        said = [r.getMessage() for r in caplog.records if "applied on return" in r.getMessage()]
        assert len(said) == 1 and "fleet rollback of the rules track applied on return, generation 1 issued at" \
            in said[0] and "(bad rule writes)" in said[0]
        assert b.rollout_settings().track("rules").latched
        entries = [e for e in audit(fleet_db, OP_FLEET_ROLLBACK_APPLIED) if e.reason.startswith("on return")]
        assert len(entries) == 1 and entries[0].key == "rules"
        assert entries[0].detail["message"].startswith("fleet rollback of the rules track applied on return, "
                                                       "generation 1 issued at ")
        out = cli(capsys, "fleet", "status", "--db", fleet_db)[1]
        assert "applied by beta" in out and "(on return)" in out and "not yet 0" in out
        # closed and opened again: the row kept what it applied, so it is not applied a second time
        b.close()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edge_station.fleet"):
            b = station(fleet_db, tmp_path, "beta").open()
        assert not [r for r in caplog.records if "applied" in r.getMessage() and "fleet rollback" in r.getMessage()]
        assert len(audit(fleet_db, OP_FLEET_ROLLBACK_APPLIED)) == 2  # alpha's and beta's, once each
        # a station new to the fleet: the rollback predates it, not applied there
        c = station(fleet_db, tmp_path, "gamma").open()
        try:
            rb = wait_for(lambda: applied(fleet_db, capsys, "gamma", "rules"), APPLY_BOUND, "gamma's baseline")
            assert rb.get("baseline") is True
            assert len(audit(fleet_db, OP_FLEET_ROLLBACK_APPLIED)) == 2
        finally:
            c.close()
    finally:
        a.close()
        b.close()


def test_a_fleet_percent_puts_exactly_its_share_of_stations_on_the_track(fleet_db, tmp_path, capsys):
    a = station(fleet_db, tmp_path, "alpha").open()
    b = station(fleet_db, tmp_path, "beta").open()
    try:
        # every station's own percent at 100 (its own setting: docs/fleet.md, "What belongs to a station")
        for s in (a, b):
            s.rollout_set(track="cameras", use_domain=True, percent=100, override_reason="fleet share test")
        ref = CameraRef(camera_id=1)
        wait_for(lambda: {s.parts().router.decide("camera_status", ref).path for s in (a, b)} == {"domain"}, 5,
                 "both stations on the domain path")
        code, out, err = cli(capsys, "fleet", "rollout", "cameras", "--percent", "50", "--db", fleet_db,
                             "--reason", "half the fleet")
        assert code == 0, err
        ids = {s.fleet.station_id: s for s in (a, b)}
        doc = fleet_json(fleet_db, capsys)
        inside = share_ids(_salt(fleet_db), [x["id"] for x in doc["stations"]], 50)
        assert len(inside) == 1
        (inner,) = [ids[i] for i in inside]
        (outer,) = [s for s in (a, b) if s is not inner]
        assert f"inside (1): {inner.fleet.name}" in out
        # within the router's settings time-to-live the outer station routes as at 0 %
        wait_for(lambda: outer.parts().router.decide("camera_status", ref).path == "legacy", 5, "outer on legacy")
        d = outer.parts().router.decide("camera_status", ref)
        assert d.reason == "percent_out" and d.percent == 0
        assert inner.parts().router.decide("camera_status", ref).path == "domain"
        st = wait_for(lambda: (x := by_name(fleet_db, capsys)[outer.fleet.name]["rollout"]["cameras"])
                      .get("fleet", {}).get("in") is False and x, 5, "the outer station reporting it")
        assert st["fleet"] == {"in": False, "percent": 50, "effective_percent": 0}
        assert isinstance(st["gate"], dict)
        # the inner station's own gate does not pass (no evidence at its stage): widening is refused
        code, out, err = cli(capsys, "fleet", "rollout", "cameras", "--percent", "100", "--db", fleet_db)
        assert code == 1 and "fleet rollout refused" in err and f"station {inner.fleet.name}: its gate" in err
        # ... unless overridden (audited); narrowing never needs the gate
        code, out, err = cli(capsys, "fleet", "rollout", "cameras", "--percent", "100", "--db", fleet_db,
                             "--override", "lab fleet")
        assert code == 0, err
        wait_for(lambda: outer.parts().router.decide("camera_status", ref).path == "domain", 5, "outer back on")
        assert cli(capsys, "fleet", "rollout", "cameras", "--percent", "0", "--db", fleet_db)[0] == 0
        wait_for(lambda: {s.parts().router.decide("camera_status", ref).path for s in (a, b)} == {"legacy"}, 5,
                 "both on legacy at a fleet percent of 0")
        entries = audit(fleet_db, OP_FLEET_ROLLOUT)
        assert [(e.detail["old"], e.detail["new"]) for e in reversed(entries)] == [(None, 50), (50, 100), (100, 0)]
        assert [e.detail.get("override_reason") for e in reversed(entries)] == [None, "lab fleet", None]
        out = cli(capsys, "fleet", "status", "--db", fleet_db)[1]
        assert "fleet rollout cameras: 0 % of 2 stations = 0 inside: none" in out
    finally:
        a.close()
        b.close()


def _salt(url: str) -> str:
    store = open_store(url)
    try:
        with store.uow() as uow:
            return str(uow.settings.get("fleet.rollout.salt"))
    finally:
        store.dispose()


@pytest.mark.parametrize("argv, code, said", [
    (["fleet", "rollout", "camera", "--percent", "10"], 2, "unknown rollout track 'camera' (tracks: rules, cameras)"),
    (["fleet", "rollout", "cameras", "--percent", "101"], 2, "--percent='101' is out of range (an integer 0-100)"),
    (["fleet", "rollout", "cameras", "--percent", "ten"], 2, "--percent='ten' is not a percentage"),
    (["fleet", "rollout", "cameras", "--percent", "10", "--override", " "], 2, "--override needs a reason"),
    (["fleet", "rollback", "everything"], 2, "unknown rollout track 'everything'"),
    (["fleet", "rollback", "rules", "--wait", "-1"], 2, "--wait -1.0 must be 0-3600 seconds"),
])
def test_bad_fleet_rollout_input_is_refused_before_anything_is_written(tmp_path, capsys, argv, code, said):
    url = sqlite_url(tmp_path / "fleet.db")
    open_store(url).dispose()  # a migrated, empty fleet
    got, _out, err = cli(capsys, *argv, "--db", url)
    assert got == code and said in err, err
    store = open_store(url)
    try:
        with store.uow() as uow:
            assert not [k for k in uow.settings.all() if k.startswith("fleet.")]
            assert not [e for e in uow.audit.recent(limit=100) if e.op.startswith("fleet.")]
    finally:
        store.dispose()
