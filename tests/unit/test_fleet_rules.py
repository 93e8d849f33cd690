"""The fleet's rules with an injected clock: when a station is gone, who may take a name, the
station's identity, and the registry's name clash on a real SQLite file."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.fleet import (
    Liveness,
    StationInfo,
    StationNameError,
    StationNameTaken,
    StationReport,
    StationState,
    check_interval,
    check_station_name,
    liveness,
    may_take_over,
)
from app.platform.identity import (
    ENV_STATION_NAME,
    IdentityError,
    host_name,
    station_id,
    station_name,
)
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.stations import StationRegistry, server_now

T0 = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


def info(**changes) -> StationInfo:
    base = StationInfo(id=str(uuid.uuid4()), name="lobby", host="box-1", pid=1, version="0.1.0",
                       state=StationState.RUNNING, started_at=T0, heartbeat_at=T0, station_clock_at=T0,
                       stopped_at=None, cameras_up=1, cameras_total=2, stages={}, health="ok", problems=(),
                       replaced_by=None)
    return replace(base, **changes)


# ---------------------------------------------------------------- the gone decision


def test_a_running_station_is_gone_only_after_the_threshold():
    s = info()
    assert liveness(s, T0, 20) is Liveness.UP
    assert liveness(s, T0 + timedelta(seconds=20), 20) is Liveness.UP  # exactly the threshold: still up
    assert liveness(s, T0 + timedelta(seconds=20, microseconds=1), 20) is Liveness.GONE
    assert liveness(s, T0 + timedelta(days=3), 20) is Liveness.GONE


def test_stopped_and_replaced_stations_are_never_up_nor_gone():
    late = T0 + timedelta(hours=1)
    assert liveness(info(state=StationState.STOPPED), T0, 20) is Liveness.STOPPED
    assert liveness(info(state=StationState.STOPPED), late, 20) is Liveness.STOPPED
    assert liveness(info(state=StationState.REPLACED), T0, 20) is Liveness.REPLACED


def test_a_skewed_station_clock_changes_neither_liveness_nor_takeover():
    ahead = info(station_clock_at=T0 + timedelta(hours=1))  # its own clock an hour fast
    behind = info(station_clock_at=T0 - timedelta(hours=1))
    for s in (ahead, behind):
        assert liveness(s, T0 + timedelta(seconds=5), 20) is Liveness.UP
        assert not may_take_over(s, T0 + timedelta(seconds=5), 20)
        assert liveness(s, T0 + timedelta(seconds=25), 20) is Liveness.GONE
    assert ahead.skew == 3600.0 and behind.skew == -3600.0
    assert info(station_clock_at=None).skew is None


def test_a_name_may_be_taken_from_a_gone_or_stopped_station_only():
    assert not may_take_over(info(), T0 + timedelta(seconds=19), 20)
    assert may_take_over(info(), T0 + timedelta(seconds=21), 20)
    assert may_take_over(info(state=StationState.STOPPED), T0, 20)
    assert may_take_over(info(state=StationState.REPLACED), T0, 20)


@pytest.mark.parametrize("interval, gone, problem", [
    (5, 9.99, "at least twice"), (0, 20, "above 0"), (5, float("nan"), "above 0"), (-1, 20, "above 0"),
    (float("inf"), 20, "above 0"),
])
def test_timings_under_which_a_healthy_station_looks_gone_are_refused(interval, gone, problem):
    with pytest.raises(ValueError, match=problem):
        check_interval(interval, gone)
    check_interval(5, 10)


# ---------------------------------------------------------------- identity


def test_station_names_are_checked():
    assert check_station_name("  Lobby 2 ") == "Lobby 2"
    for bad, why in (("", "empty"), ("   ", "empty"), ("x" * 65, "at most 64"), ("a\nb", "control")):
        with pytest.raises(StationNameError, match=why):
            check_station_name(bad)


def test_the_name_comes_from_the_option_then_the_environment_then_the_host(monkeypatch):
    monkeypatch.delenv(ENV_STATION_NAME, raising=False)
    assert station_name(None) == host_name()
    monkeypatch.setenv(ENV_STATION_NAME, "from-env")
    assert station_name(None) == "from-env"
    assert station_name("from-option") == "from-option"
    with pytest.raises(IdentityError, match=r"empty \(from --station\)"):
        station_name("  ")
    monkeypatch.setenv(ENV_STATION_NAME, "bad\tname")
    with pytest.raises(IdentityError, match=ENV_STATION_NAME):
        station_name(None)


def test_the_station_id_is_made_once_and_kept_private(tmp_path):
    first = station_id(tmp_path)
    assert str(uuid.UUID(first)) == first
    assert station_id(tmp_path) == first
    f = tmp_path / "station-id"
    assert f.read_text().strip() == first and (f.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["station-id"]  # no temporary file left


def test_a_damaged_station_id_is_an_error_not_a_new_identity(tmp_path):
    (tmp_path / "station-id").write_text("not a uuid\n")
    with pytest.raises(IdentityError, match="does not hold a station id"):
        station_id(tmp_path)
    assert (tmp_path / "station-id").read_text() == "not a uuid\n"


# ---------------------------------------------------------------- the name clash on a real SQLite file


class FakeNow:
    """The gone decision's clock: the database server's time plus an offset the test moves."""

    def __init__(self, store):
        self.store = store
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        with self.store.engine.connect() as conn:
            return server_now(conn) + self.offset


@pytest.fixture
def registry(tmp_path):
    store = open_store(sqlite_url(tmp_path / "fleet.db"))
    now = FakeNow(store)
    reg = StationRegistry(store, now=now)
    reg.fake_now = now  # type: ignore[attr-defined]
    yield reg
    store.dispose()


def claim(reg, sid, name, **kw):
    return reg.claim(sid, name, version="0.1.0", host="box", pid=1, gone_after=20.0, **kw)


def test_a_second_station_claiming_a_live_name_is_refused_naming_the_other(registry):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = claim(registry, a, "Lobby", report=StationReport(cameras_up=1, cameras_total=2))
    assert first.took_over is None and first.message is None and first.station.cameras_total == 2
    with pytest.raises(StationNameTaken) as ei:
        claim(registry, b, "lobby")  # names are one name case-insensitively
    msg = str(ei.value)
    assert a in msg and "last heartbeat" in msg and "--station NAME" in msg and ei.value.other.id == a
    _now, rows = registry.all()
    assert [(r.id, r.name, r.state) for r in rows] == [(a, "Lobby", StationState.RUNNING)]


def test_a_gone_stations_name_is_taken_over_and_its_row_kept(registry):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    claim(registry, a, "Lobby")
    registry.fake_now.offset = timedelta(seconds=21)  # a's heartbeat is 21 s old now
    got = claim(registry, b, "Lobby")
    assert got.took_over is not None and got.took_over.id == a
    assert "took over the name 'Lobby'" in got.message and a in got.message
    rows = {r.id: r for r in registry.all()[1]}
    assert rows[b].name == "Lobby" and rows[b].state is StationState.RUNNING
    assert rows[a].name == f"Lobby~{a[:8]}" and rows[a].state is StationState.REPLACED and rows[a].replaced_by == b
    # a comes back: its heartbeat lands (it is alive) and says its name was taken
    beat = registry.heartbeat(a, StationReport())
    assert not beat.ok and "taken over by station " + b in beat.problem
    assert registry.get(a).state is StationState.REPLACED
    # ... and restarting it under the old name is refused, b being alive
    registry.fake_now.offset = timedelta(0)
    with pytest.raises(StationNameTaken, match=b):
        claim(registry, a, "Lobby")


def test_a_cleanly_stopped_stations_name_is_free_at_once(registry):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    claim(registry, a, "Gate")
    registry.mark_stopped(a)
    assert registry.get(a).state is StationState.STOPPED
    got = claim(registry, b, "Gate")
    assert got.took_over is not None and "it stopped" in got.message


def test_a_rename_keeps_the_id_and_a_restart_keeps_the_row(registry):
    a = str(uuid.uuid4())
    first = claim(registry, a, "Old name")
    registry.mark_stopped(a)
    again = claim(registry, a, "Old name")
    assert again.renamed_from is None and again.station.state is StationState.RUNNING
    assert again.station.started_at >= first.station.started_at
    renamed = claim(registry, a, "New name")
    assert renamed.renamed_from == "Old name" and "renamed from 'Old name'" in renamed.message
    assert [(r.id, r.name) for r in registry.all()[1]] == [(a, "New name")]


def test_a_heartbeat_writes_server_time_and_the_status(registry):
    a = str(uuid.uuid4())
    c = claim(registry, a, "Dock")
    beat = registry.heartbeat(a, StationReport(cameras_up=3, cameras_total=4, stages={"rules": {"stage": 2}},
                                               health="degraded", problems=("Dock 1: stream stalled",)))
    assert beat.ok
    s = registry.get(a)
    assert (s.cameras_up, s.cameras_total, s.stages, s.health, s.problems) == (
        3, 4, {"rules": {"stage": 2}}, "degraded", ("Dock 1: stream stalled",))
    assert s.heartbeat_at >= c.station.heartbeat_at and s.heartbeat_at.tzinfo is not None
    assert not registry.heartbeat(str(uuid.uuid4()), StationReport()).ok  # an unknown station: said, not raised


# ---------------------------------------------------------------- the heartbeat when the database is away


def test_a_heartbeat_that_cannot_be_written_is_reported_not_raised(caplog):
    from app.fleet.member import FleetMember
    from app.store.db import make_engine
    from app.store.uow import Store

    store = Store(make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))  # nothing listens on port 1
    try:
        member = FleetMember(StationRegistry(store), station_id=str(uuid.uuid4()), name="away",
                             report=lambda: StationReport(), interval=0.1, gone_after=1.0)
        assert member.beat_now() is None and member.beat_now() is None
        assert member.problem is not None and member.problem.startswith("heartbeat failed")
        assert sum("heartbeat failed" in r.getMessage() for r in caplog.records) == 1  # said once, not per beat
        member.close()  # never registered: nothing to mark, no error
    finally:
        store.dispose()


def test_a_status_that_cannot_be_read_is_heartbeated_as_unknown(registry):
    from app.fleet.member import FleetMember

    def broken() -> StationReport:
        raise RuntimeError("no parts")

    member = FleetMember(registry, station_id=str(uuid.uuid4()), name="odd", report=broken, interval=0.1,
                         gone_after=1.0)
    member.register()
    assert member.beat_now().ok
    s = member.info()
    assert s.health == "unknown" and s.problems == ("status unavailable: RuntimeError",)
    member.close()
    assert member.info().state is StationState.STOPPED


def test_fleet_timing_changes_are_checked_together():
    from app.cli_common import CliError
    from app.fleet.cli import parse_timing

    assert parse_timing(["gone_after=30"], (5.0, 20.0)) == {"fleet.gone_after": 30.0}
    assert parse_timing([], (5.0, 20.0)) == {}
    for bad, why in ((["gone_after=9"], "at least twice"), (["heartbeat_interval=11"], "at least twice"),
                     (["gone_after=-1"], "above 0"), (["gone_after=nan"], "above 0"), (["beat=1"], "KEY=SECONDS"),
                     (["gone_after"], "KEY=SECONDS"), (["gone_after=soon"], "not a number")):
        with pytest.raises(CliError, match=why):
            parse_timing(bad, (5.0, 20.0))
