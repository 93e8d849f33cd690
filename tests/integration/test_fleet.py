"""A fleet on one database, for real: on a SQLite file and on PostgreSQL.

Two stations (two Station objects with data dirs of their own, or a station and a headless
process) share one database; both register and heartbeat; one stops heartbeating (its thread
stopped, or its process killed) and ``edge-station fleet`` shows it gone while the other stays up;
a clean exit shows as stopped. The PostgreSQL cases use test_store_pg's server fixture: with
``EDGE_STATION_TEST_PG_URL`` set (CI) an unreachable server fails them, it never skips them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main
from app.domain import Camera
from app.domain.fleet import StationNameTaken
from app.platform.paths import StationPaths, sqlite_url
from app.station import Station, StationOptions
from app.store import open_store
from app.store.stations import SETTING_GONE_AFTER
from tests.integration.test_store_pg import pg_db, pg_server_url  # noqa: F401 - the PostgreSQL fixtures
from tests.support.dbdump import content
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
BEAT = 0.1  # heartbeat interval of the test stations (s)
GONE = 1.0  # their gone threshold (s)


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "fleet.db")
    else:
        url = request.getfixturevalue("pg_db").url
    store = open_store(url)
    try:
        with store.uow() as uow:
            uow.settings.set(SETTING_GONE_AFTER, GONE)  # what `fleet` reads as the fleet's threshold
            uow.commit()
    finally:
        store.dispose()
    return url


def station(url: str, root: Path, name: str, **kw) -> Station:
    options = dict(paths=StationPaths(root / name, url), seed_demo=False, autostart=False, station_name=name,
                   heartbeat_interval=BEAT, gone_after=GONE, watch_interval=0.2)
    options.update(kw)
    return Station(StationOptions(**options))  # type: ignore[arg-type]


def fleet_json(url: str, capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["fleet", "stations", "--db", url, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def states(url: str, capsys) -> dict[str, str]:
    return {s["name"]: s["state"] for s in fleet_json(url, capsys)["stations"]}


def test_two_stations_register_and_one_that_stops_heartbeating_is_shown_gone(fleet_url, tmp_path, capsys):
    store = open_store(fleet_url)
    with store.uow() as uow:
        uow.cameras.add(Camera(name="Yard", source="test://moving?size=160x90&rate=5"))
        uow.commit()
    store.dispose()
    a = station(fleet_url, tmp_path, "alpha", autostart=True).open()
    b = station(fleet_url, tmp_path, "beta").open()
    try:
        assert a.fleet is not None and b.fleet is not None and a.fleet.station_id != b.fleet.station_id
        # alpha runs the camera (a real worker decoding a lavfi source); both heartbeat
        doc = wait_for(lambda: (d := fleet_json(fleet_url, capsys)) and
                       {s["name"]: s["cameras_up"] for s in d["stations"]} == {"alpha": 1, "beta": 0} and d,
                       30, "alpha's camera up in the fleet")
        by_name = {s["name"]: s for s in doc["stations"]}
        assert by_name["alpha"]["state"] == by_name["beta"]["state"] == "up"
        assert by_name["alpha"]["cameras_total"] == 1 and by_name["alpha"]["health"] == "ok"
        assert set(by_name["alpha"]["rollout"]) == {"rules", "cameras"}
        assert abs(by_name["alpha"]["clock_skew_s"]) < 2
        # beta stops heartbeating (what a crash or a lost network looks like), without marking itself stopped
        b.fleet.stop_heartbeat()
        wait_for(lambda: states(fleet_url, capsys) == {"alpha": "up", "beta": "gone"}, 10, "beta shown gone")
        capsys.readouterr()
        assert main(["fleet", "status", "--db", fleet_url]) == 0
        out = capsys.readouterr().out
        assert "2 stations: 1 up, 1 gone" in out and "gone: beta" in out and "cameras: 1/1 running" in out
        a.close()  # a clean exit
        assert states(fleet_url, capsys) == {"alpha": "stopped", "beta": "gone"}
    finally:
        a.close()
        b.close()
    assert states(fleet_url, capsys) == {"alpha": "stopped", "beta": "stopped"}


def test_a_second_station_under_a_live_name_is_refused_before_it_starts_anything(fleet_url, tmp_path, capsys):
    a = station(fleet_url, tmp_path, "Lobby").open()
    try:
        intruder = station(fleet_url, tmp_path, "lobby", seed_demo=True, autostart=True)
        with pytest.raises(StationNameTaken) as ei:
            intruder.open()
        assert a.fleet is not None and a.fleet.station_id in str(ei.value) and "last heartbeat" in str(ei.value)
        assert intruder.instance_lock is None and intruder.fleet is None  # closed again; nothing seeded
        store = open_store(fleet_url)
        with store.uow() as uow:
            assert uow.cameras.count() == 0
        store.dispose()
        assert states(fleet_url, capsys) == {"Lobby": "up"}
    finally:
        a.close()


def test_a_station_with_a_skewed_clock_is_judged_by_the_database_clock(fleet_url, tmp_path, capsys):
    s = station(fleet_url, tmp_path, "skewed", fleet_clock=lambda: time.time() + 3600).open()
    try:
        doc = wait_for(lambda: (d := fleet_json(fleet_url, capsys)) and d["stations"][0]["heartbeat_age_s"] < GONE
                       and d, 10, "a fresh heartbeat")
        st = doc["stations"][0]
        assert st["state"] == "up" and 3590 < st["clock_skew_s"] < 3610
        capsys.readouterr()
        assert main(["fleet", "status", "--db", fleet_url]) == 0
        assert "skewed clock +3600" in capsys.readouterr().out
    finally:
        s.close()


def test_a_renamed_station_keeps_its_id(fleet_url, tmp_path, capsys):
    first = station(fleet_url, tmp_path, "old").open()
    sid = first.fleet.station_id
    first.close()
    second = station(fleet_url, tmp_path, "new", paths=StationPaths(tmp_path / "old", fleet_url)).open()
    try:
        assert second.fleet.station_id == sid and second.fleet.claim.renamed_from == "old"
        doc = fleet_json(fleet_url, capsys)
        assert [(s["id"], s["name"], s["state"]) for s in doc["stations"]] == [(sid, "new", "up")]
    finally:
        second.close()


def _headless(url: str, data_dir: Path, name: str) -> subprocess.Popen:
    env = dict(os.environ, EDGE_STATION_HEARTBEAT_INTERVAL=str(BEAT), PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "app", "headless", "--db", url, "--data-dir", str(data_dir),
                             "--station", name, "--no-demo", "--api-port", "0", "--status-interval", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_a_killed_station_process_is_shown_gone_and_its_name_taken_over(fleet_url, tmp_path, capsys):
    proc = _headless(fleet_url, tmp_path / "proc", "far-away")
    b = None
    try:
        wait_for(lambda: states(fleet_url, capsys).get("far-away") == "up", 60, "the headless station registered")
        b = station(fleet_url, tmp_path, "nearby").open()
        os.killpg(proc.pid, signal.SIGKILL)  # no clean exit: its row still says running
        proc.wait(timeout=10)
        wait_for(lambda: states(fleet_url, capsys) == {"far-away": "gone", "nearby": "up"}, 10, "far-away gone")
        heir = station(fleet_url, tmp_path, "far-away").open()  # a new box under the gone one's name
        try:
            assert heir.fleet.claim.took_over is not None
            got = states(fleet_url, capsys)
            old = next(n for n in got if n.startswith("far-away~"))
            assert got == {"far-away": "up", old: "replaced", "nearby": "up"}
        finally:
            heir.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        if b is not None:
            b.close()


def test_the_headless_command_refuses_a_taken_name_in_one_line(fleet_url, tmp_path):
    a = station(fleet_url, tmp_path, "taken").open()
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-m", "app", "headless", "--db", fleet_url, "--data-dir",
                              str(tmp_path / "other"), "--station", "taken", "--no-demo", "--duration", "5"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 6, (out.stdout, out.stderr)
        assert out.stderr.startswith("edge-station: error: station name 'taken' is in use by station "
                                     f"{a.fleet.station_id}") and "Traceback" not in out.stderr
    finally:
        a.close()


def test_fleet_commands_give_clear_errors(tmp_path, capsys):
    assert main(["fleet", "status", "--data-dir", str(tmp_path / "none")]) == 3
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "none" / "station.db").exists()  # nothing created
    old = tmp_path / "old.db"
    import sqlite3

    with sqlite3.connect(old) as c:
        c.execute("CREATE TABLE t (x)")
    c.close()
    assert main(["fleet", "stations", "--db", sqlite_url(old)]) == 3
    assert "has no fleet registry yet: run 'edge-station migrate'" in capsys.readouterr().err
    assert main(["fleet", "status", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"]) == 3
    assert "cannot open database" in capsys.readouterr().err
    assert main(["headless", "--station", "bad\nname", "--data-dir", str(tmp_path / "d")]) == 2
    assert "control characters" in capsys.readouterr().err


def test_an_existing_database_migrates_losing_nothing(tmp_path):
    """A station database of an earlier schema (0009) gains the registry and the owners' columns;
    every row it held stays, every column of it unchanged."""
    import sqlite3

    from alembic import command

    from app.store.db import _alembic_config, head_revision, make_engine

    db = tmp_path / "station.db"
    engine = make_engine(sqlite_url(db))
    command.upgrade(_alembic_config(engine), "0009")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO cameras (name, source, active, loop, motion_enabled, motion_threshold, "
                          "motion_warmup, stall_timeout, location, tags, created_at, updated_at) VALUES "
                          "('Old cam', 'test://still', 1, 0, 1, 0.02, 10, 10.0, '', '[]', "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        c.exec_driver_sql("INSERT INTO settings (key, value, updated_at) VALUES ('x', '1', '2026-01-01 00:00:00')")
    engine.dispose()

    def rows(columns: dict[str, list[str]] | None = None) -> tuple[dict[str, list[str]], dict[str, list[tuple]]]:
        conn = sqlite3.connect(db)
        try:
            tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "AND name NOT IN ('alembic_version', 'sqlite_sequence')")]
            cols = columns or {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
            data = {t: sorted(conn.execute(f"SELECT {', '.join(c)} FROM {t}").fetchall()) for t, c in cols.items()}
            return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}, data
        finally:
            conn.close()

    before_cols, before = rows()
    open_store(sqlite_url(db)).dispose()
    after_cols, after = rows(before_cols)
    assert after == before and before["cameras"] and before["settings"]
    assert {"stations", "station_settings"} <= set(after_cols)
    assert all(set(before_cols[t]) <= set(after_cols[t]) for t in before_cols)
    assert any(f"INSERT INTO \"alembic_version\" VALUES('{head_revision()}')" in line for line in content(db))


def test_fleet_settings_are_shared_and_read_by_the_next_station(tmp_path, capsys):
    url = sqlite_url(tmp_path / "fleet.db")
    open_store(url).dispose()
    assert main(["fleet", "settings", "--db", url, "heartbeat_interval=0.2", "gone_after=0.5"]) == 0
    assert "heartbeat_interval=0.2 s, gone_after=0.5 s" in capsys.readouterr().out
    s = Station(StationOptions(paths=StationPaths(tmp_path / "s", url), seed_demo=False, autostart=False,
                               station_name="timed")).open()
    try:
        assert (s.fleet.interval, s.fleet.gone_after) == (0.2, 0.5)
        first = s.fleet.beats
        wait_for(lambda: s.fleet.beats >= first + 3, 10, "three heartbeats at 0.2 s")
    finally:
        s.close()
    assert main(["fleet", "settings", "--db", url, "gone_after=0.3"]) == 2
    assert "at least twice" in capsys.readouterr().err
    store = open_store(url)
    with store.uow() as uow:
        audit = [e for e in uow.audit.recent(10) if e.key.startswith("fleet.")]
    store.dispose()
    assert {e.key for e in audit} == {"fleet.heartbeat_interval", "fleet.gone_after"}
