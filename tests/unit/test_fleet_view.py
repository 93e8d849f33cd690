"""The fleet view (the model under the window's Fleet page), on a real SQLite file: it reads the
registry on a thread of its own only while someone listens, judges the stations as
``edge-station fleet status|stations`` do, and keeps the last stations when a read fails."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.fleet import Liveness, StationReport
from app.fleet.cli import STATION_COLUMNS, format_stations, format_status
from app.fleet.view import FleetSnapshot, FleetView
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.stations import StationRegistry
from tests.support.waiting import wait_for

GONE = 20.0
REPORT = StationReport(cameras_up=1, cameras_total=2, stages={"cameras": {"stage": 1, "percent": 10}},
                       health="degraded", problems=("Yard: stream stalled",))


@pytest.fixture
def store(tmp_path):
    s = open_store(sqlite_url(tmp_path / "fleet.db"))
    try:
        yield s
    finally:
        s.dispose()


class ShiftedNow:
    """The reader's "database time": the real clock plus a shift the test sets (the registry's
    injectable ``now``), so that a station goes gone without waiting for it."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


def claim(registry: StationRegistry, name: str, report: StationReport = REPORT) -> str:
    sid = str(uuid.uuid4())
    registry.claim(sid, name, version="0.1.0", host="box", pid=1, gone_after=GONE, report=report)
    return sid


def test_a_snapshot_agrees_with_the_fleet_commands(store):
    writer = StationRegistry(store, clock=lambda: datetime.now(UTC).timestamp() + 3600)  # dock's clock 1 h fast
    lobby = claim(StationRegistry(store), "lobby", StationReport(cameras_up=1, cameras_total=1, health="ok"))
    claim(writer, "dock")
    now = ShiftedNow()
    view = FleetView(StationRegistry(store, now=now), interval=60, where="fleet.db", station_id=lobby,
                     gone_after=GONE)
    snap = view.refresh()
    assert [s.name for s in snap.stations] == ["dock", "lobby"] and snap.multi and snap.error is None
    assert snap.counts == {"up": 2}
    mine = snap.mine()
    assert mine is not None and mine.name == "lobby" and not snap.stations[0].mine
    dock = snap.station("dock")
    assert dock is not None and dock.up and dock.info.version == "0.1.0" and dock.info.health == "degraded"
    assert dock.info.problems == ("Yard: stream stalled",) and dock.skew_worth_saying
    assert dock.skew_s is not None and abs(dock.skew_s - 3600) < 5
    # the very lines and cells the commands print for the same read
    registry_now, infos = snap.now, [s.info for s in snap.stations]
    assert list(snap.status_lines) == format_status(registry_now, infos, GONE, "fleet.db")
    table = format_stations(registry_now, infos, GONE)
    for s, line in zip(snap.stations, table[1:], strict=True):
        assert dict(zip(STATION_COLUMNS, s.cells, strict=True))["ROLLOUT"] == ("cameras:1(10%)" if s.name == "dock"
                                                                              else "-")
        assert line.split()[:2] == [s.name, s.liveness.value]
    # an hour later by the database's clock, both are gone; a clean exit is stopped
    now.shift = timedelta(hours=1)
    StationRegistry(store).mark_stopped(lobby)
    snap = view.refresh()
    assert {s.name: s.liveness for s in snap.stations} == {"dock": Liveness.GONE, "lobby": Liveness.STOPPED}
    assert snap.counts == {"gone": 1, "stopped": 1}
    assert snap.status_lines[0].startswith("fleet on fleet.db: 2 stations: 1 gone, 1 stopped")


def test_the_view_reads_only_while_someone_listens(store):
    claim(StationRegistry(store), "lobby")
    view = FleetView(StationRegistry(store), interval=0.05, where="fleet.db")
    assert not view.running and view.reads == 0  # a headless station's view costs nothing
    got: list[FleetSnapshot] = []
    threads: set[str] = set()

    def listen(snap: FleetSnapshot) -> None:
        threads.add(threading.current_thread().name)
        got.append(snap)

    leave = view.subscribe(listen)
    try:
        wait_for(lambda: len(got) >= 3, 10, "three reads")
        assert view.running and threads == {"fleet-view"}
        assert not got[0].multi and [s.name for s in got[0].stations] == ["lobby"]
        claim(StationRegistry(store), "dock")  # a second station registers: the next read has it
        wait_for(lambda: got[-1].multi, 10, "the second station in a snapshot")
    finally:
        leave()
    assert not view.running
    reads = view.reads
    leave()  # twice: harmless
    assert view.reads == reads
    view.close()
    view.subscribe(listen)  # a closed view does not start again
    assert not view.running


def test_the_fleet_gone_setting_is_read_at_every_read(store):
    from app.store.stations import SETTING_GONE_AFTER

    claim(StationRegistry(store), "lobby")
    view = FleetView(StationRegistry(store), interval=60, where="fleet.db")  # gone_after: the fleet's setting
    assert view.refresh().gone_after == 20.0
    with store.uow() as uow:
        uow.settings.set(SETTING_GONE_AFTER, 45)
        uow.commit()
    assert view.refresh().gone_after == 45.0


def test_a_failed_read_keeps_the_last_stations_and_says_why(store, caplog):
    claim(StationRegistry(store), "lobby")
    claim(StationRegistry(store), "dock")
    registry = StationRegistry(store)
    view = FleetView(registry, interval=60, where="fleet.db", gone_after=GONE)
    first = view.refresh()
    assert first.error is None and len(first.stations) == 2

    def broken() -> tuple[datetime, list]:
        raise OSError("database is away")

    registry.all = broken  # type: ignore[method-assign]
    snap = view.refresh()
    view.refresh()
    assert snap.error is not None and "cannot read the fleet registry of fleet.db" in snap.error
    assert "database is away" in snap.error
    assert snap.stations == first.stations and snap.now == first.now
    assert caplog.text.count("fleet view: cannot read") == 1  # said once until it works again
    del registry.all
    assert view.refresh().error is None


def test_a_bad_interval_is_refused(store):
    with pytest.raises(ValueError, match="read interval must be above 0 s"):
        FleetView(StationRegistry(store), interval=0, where="fleet.db")
