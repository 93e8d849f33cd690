"""What belongs to a station, for real: two stations on one database (a SQLite file and PostgreSQL),
each with real workers, each seeing and running only its own cameras, rules, settings, events and
audit; a camera moved from one to the other while its worker runs; a database from before fleets
taken over by its first station, losing nothing (docs/fleet.md, "What belongs to a station")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.domain import AlertRule, Camera, Comparator, Severity, TargetKind
from app.domain.operations import CameraRef, CreateRule, ListStatus
from app.domain.worker import WorkerState
from app.platform.identity import station_id
from app.platform.paths import sqlite_url
from app.station import Station
from app.store import open_store
from tests.integration.test_fleet import fleet_url, station  # noqa: F401 - the fleet fixtures
from tests.integration.test_store_pg import pg_db, pg_server_url  # noqa: F401 - the PostgreSQL fixtures
from tests.support.dbdump import content
from tests.support.waiting import wait_for

SOURCE = "test://moving?size=160x90&rate=5"


def _state(st: Station, cid: int) -> WorkerState:
    return st.parts().supervisor.status(cid).state


def _names(st: Station) -> set[str]:
    return {c.name for c in st.cameras()}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_two_stations_each_see_and_run_only_their_own(fleet_url, tmp_path, capsys):  # noqa: F811
    lobby = station(fleet_url, tmp_path, "lobby", autostart=True).open()
    dock = station(fleet_url, tmp_path, "dock", autostart=True).open()
    try:
        yard = lobby.parts().admin.add_camera(Camera(name="Yard", source=SOURCE))
        door = dock.parts().admin.add_camera(Camera(name="Dock door", source=SOURCE))
        lobby.reload_cameras()
        dock.reload_cameras()
        assert (_names(lobby), _names(dock)) == ({"Yard"}, {"Dock door"})
        wait_for(lambda: _state(lobby, yard.id) is WorkerState.RUNNING, 60, "lobby runs Yard")
        wait_for(lambda: _state(dock, door.id) is WorkerState.RUNNING, 60, "dock runs Dock door")
        assert set(lobby.parts().supervisor.statuses()) == {yard.id}
        assert set(dock.parts().supervisor.statuses()) == {door.id}
        # both implementations of the operations see the station's own cameras only
        for st, mine, theirs in ((lobby, yard.id, door.id), (dock, door.id, yard.id)):
            for via in ("legacy", "domain"):
                listed = st.call("list_status", ListStatus(), actor="test", force=via)
                assert [s.camera_id for s in listed.items] == [mine], via
                with pytest.raises(Exception, match="does not exist"):
                    st.call("camera_status", CameraRef(theirs), actor="test", force=via)
        # a name is the fleet's: the other station cannot take it
        with pytest.raises(Exception, match="already exists"):
            dock.parts().admin.add_camera(Camera(name="yard", source=SOURCE))

        # rules: the station's own, plus the fleet-wide default rules both evaluate
        rule = lobby.parts().router.create_rule(CreateRule(AlertRule(
            name="Yard slow", metric="fps", comparator=Comparator.LT, threshold=1, target=TargetKind.CAMERA,
            camera_id=yard.id, severity=Severity.WARNING))).rule
        lobby_rules = {r.name for r in lobby.list_rules()}
        dock_rules = {r.name for r in dock.list_rules()}
        assert "Yard slow" in lobby_rules and "Yard slow" not in dock_rules
        assert "Camera offline" in lobby_rules & dock_rules, "the default rules are the fleet's"
        assert {r.name for r in lobby.list_rules(via="legacy")} == lobby_rules
        assert {r.name for r in dock.list_rules(via="legacy")} == dock_rules
        assert rule.id is not None

        # settings: the station's own, the fleet's shared
        lobby.set_settings({"rollout.cameras.percent": 25, "fleet.gone_after": 30.0}, actor="test")
        assert lobby.get_settings()["rollout.cameras.percent"] == 25
        assert dock.get_settings().get("rollout.cameras.percent") != 25
        assert dock.get_settings()["fleet.gone_after"] == 30.0

        # the audit: each station's own
        lobby_audit = lobby.audit_page(200)
        assert any(e.key == "rollout.cameras.percent" for e in lobby_audit)
        assert not any(e.key == "rollout.cameras.percent" for e in dock.audit_page(200))

        # the command line acts for the station of its data dir, or the one --station names
        code, out, _ = _run(capsys, "cameras", "list", "--db", fleet_url, "--data-dir", str(tmp_path / "dock"))
        assert code == 0 and "Dock door" in out and "Yard" not in out
        code, out, _ = _run(capsys, "cameras", "list", "--db", fleet_url, "--data-dir", str(tmp_path / "x"),
                            "--station", "lobby")
        assert code == 0 and "Yard" in out and "Dock door" not in out
    finally:
        dock.close()
        lobby.close()


def test_a_camera_moved_while_its_worker_runs_stops_here_and_starts_there(fleet_url, tmp_path, capsys):  # noqa: F811
    lobby = station(fleet_url, tmp_path, "lobby", autostart=True).open()
    dock = station(fleet_url, tmp_path, "dock", autostart=True).open()
    try:
        yard = lobby.parts().admin.add_camera(Camera(name="Yard", source=SOURCE, location="north fence",
                                                     tags=("outdoor",)))
        lobby.reload_cameras()
        lobby.parts().router.create_rule(CreateRule(AlertRule(
            name="Yard slow", metric="fps", comparator=Comparator.LT, threshold=1, target=TargetKind.CAMERA,
            camera_id=yard.id, severity=Severity.WARNING)))
        wait_for(lambda: _state(lobby, yard.id) is WorkerState.RUNNING, 60, "lobby runs Yard")

        code, out, err = _run(capsys, "fleet", "move-camera", "Yard", "--to", "dock", "--db", fleet_url,
                              "--reason", "dock has the spare cores")
        assert code == 0, err
        assert "moved from lobby to dock" in out and "1 camera rule went with it" in out
        assert "lobby stops its worker" in out

        wait_for(lambda: _state(lobby, yard.id) is WorkerState.STOPPED and "Yard" not in _names(lobby), 30,
                 "lobby to stop Yard's worker")
        wait_for(lambda: _state(dock, yard.id) is WorkerState.RUNNING, 60, "dock to run Yard")
        moved = dock.camera(yard.id)
        assert moved is not None and (moved.name, moved.source, moved.location, moved.tags) == \
            ("Yard", SOURCE, "north fence", ("outdoor",)), "nothing of the camera is lost"
        assert "Yard slow" in {r.name for r in dock.list_rules()}
        assert "Yard slow" not in {r.name for r in lobby.list_rules()}
        for st in (lobby, dock):
            moves = [e for e in st.audit_page(200) if e.op == "camera.move"]
            assert [(m.key, m.detail.get("from"), m.detail.get("to")) for m in moves] == [("Yard", "lobby", "dock")]
    finally:
        dock.close()
        lobby.close()


def test_moves_that_cannot_be_done_say_why_and_change_nothing(tmp_path, capsys):
    url = sqlite_url(tmp_path / "fleet.db")
    lobby = station(url, tmp_path, "lobby").open()
    try:
        lobby.parts().admin.add_camera(Camera(name="Yard", source=SOURCE))
    finally:
        lobby.close()
    before = content(tmp_path / "fleet.db")
    cases = [
        (("Yard", "--to", "attic"), 2, "no station named 'attic' in this fleet (stations: lobby)"),
        (("Porch", "--to", "lobby"), 1, "no camera 'Porch' in this database"),
        (("Yard", "--to", "LOBBY"), 1, "already on that station"),
    ]
    for argv, want_code, want in cases:
        code, _out, err = _run(capsys, "fleet", "move-camera", *argv, "--db", url)
        assert (code, want in err) == (want_code, True), (argv, code, err)
    assert content(tmp_path / "fleet.db") == before

    # a move to a station that is not running is done, and says when it takes effect
    dock = station(url, tmp_path, "dock").open()
    dock.close()
    code, out, err = _run(capsys, "fleet", "move-camera", "Yard", "--to", "dock", "--db", url, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["from"], doc["to"]) == ("lobby", "dock")
    assert any("dock is stopped now: the camera runs there when it starts again" in n for n in doc["notes"])


def test_a_database_from_before_fleets_is_taken_over_by_its_first_station_losing_nothing(tmp_path):
    """Schema 0010 (stations but no owners): the first station to open owns every camera, setting,
    event and audit entry; a second station sees none of it; the default rules stay the fleet's."""
    from alembic import command

    from app.store.db import _alembic_config, make_engine

    db = tmp_path / "station.db"
    url = sqlite_url(db)
    engine = make_engine(url)
    command.upgrade(_alembic_config(engine), "0010_stations")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO cameras (name, source, active, loop, motion_enabled, motion_threshold, "
                          "motion_warmup, stall_timeout, location, tags, created_at, updated_at) VALUES "
                          "('Old cam', 'test://still', 0, 0, 1, 0.02, 10, 10.0, 'hall', '[]', "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        c.exec_driver_sql("INSERT INTO settings (key, value, updated_at) VALUES "
                          "('rollout.cameras.percent', '40', '2026-01-01 00:00:00'), "
                          "('fleet.gone_after', '25.0', '2026-01-01 00:00:00')")
        c.exec_driver_sql("INSERT INTO audit_log (at, op, key, path, outcome, fallback, actor, reason, detail) "
                          "VALUES ('2026-01-01 00:00:00', 'camera.add', 'Old cam', '', 'ok', 0, 'cli', '', '{}')")
    engine.dispose()

    first = station(url, tmp_path, "hall").open()
    try:
        assert _names(first) == {"Old cam"}
        assert first.get_settings()["rollout.cameras.percent"] == 40
        assert any(e.key == "Old cam" and e.op == "camera.add" for e in first.audit_page(500))
    finally:
        first.close()
    second = station(url, tmp_path, "annex").open()
    try:
        assert _names(second) == set()
        assert second.get_settings().get("rollout.cameras.percent") != 40
        assert second.get_settings()["fleet.gone_after"] == 25.0, "the fleet's settings stay shared"
        assert not any(e.key == "Old cam" for e in second.audit_page(500))
        assert "Camera offline" in {r.name for r in second.list_rules()}
    finally:
        second.close()
    hall = station_id(tmp_path / "hall")
    store = open_store(url)  # naming no station: every row
    try:
        with store.uow() as uow:
            (cam,) = uow.cameras.list()
            assert (cam.name, cam.location, cam.active) == ("Old cam", "hall", False)
        with store.engine.connect() as c:
            assert c.exec_driver_sql("SELECT station_id FROM cameras").scalar() == hall
            assert c.exec_driver_sql("SELECT value FROM station_settings WHERE key = "
                                     "'rollout.cameras.percent'").scalar() in (40, "40")
    finally:
        store.dispose()


def test_a_store_for_one_station_writes_its_rows_and_reads_its_own(tmp_path: Path):
    """The store's scope with no station process at all: two scoped stores and an unscoped one."""
    url = sqlite_url(tmp_path / "s.db")
    a = open_store(url, station_id="00000000-0000-4000-8000-00000000000a")
    b = a.for_station("00000000-0000-4000-8000-00000000000b")
    every = a.for_station(None)
    try:
        with a.uow() as uow:
            uow.cameras.add(Camera(name="A1", source=SOURCE))
            uow.settings.set("kiosk.grid", 3)
            uow.commit()
        with every.uow() as uow:
            uow.cameras.add(Camera(name="Nobody's", source=SOURCE))
            uow.commit()
        with b.uow() as uow:
            assert [c.name for c in uow.cameras.list()] == ["Nobody's"], "b sees no station's rows, not a's"
            assert uow.cameras.get_by_name("A1") is None and uow.settings.get("kiosk.grid") is None
            a1 = every.camera_snapshot()[0]
            assert a1.id is not None and uow.cameras.get(a1.id) is None and not uow.cameras.remove(a1.id)
        assert {c.name for c in every.camera_snapshot()} == {"A1", "Nobody's"}
        assert {c.name for c in a.camera_snapshot()} == {"A1", "Nobody's"}
    finally:
        a.dispose()
