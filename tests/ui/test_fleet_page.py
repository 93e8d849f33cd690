"""The window's Fleet page: absent while the database holds one station, there (without a restart)
once a second one registers, and showing a station whose heartbeat stopped as gone.

The window runs a real station on a real SQLite file; the second station is another identity
registered and heartbeating through the registry (``StationRegistry.claim()`` / ``heartbeat()``)
on the same file. The widget tests feed the page snapshots built from rows and check what it shows.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QLocale, QSettings, Qt
from PySide6.QtGui import QColor

from app.domain.fleet import Liveness, StationInfo, StationReport, StationState
from app.fleet.cli import format_stations
from app.fleet.view import snapshot_of
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions
from app.store import open_store
from app.store.stations import StationRegistry
from app.supervisor import RestartPolicy
from app.ui.fleet.page import GONE_BACKGROUND, GONE_STATE, FleetBridge, FleetPage, FleetTableModel

BEAT = 0.2  # the window's station heartbeats (and its fleet view reads) this often (s)
GONE = 1.0  # and judges a station gone after this long without a heartbeat (s)
T0 = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
M = FleetTableModel


def info(name: str, **changes) -> StationInfo:
    base = StationInfo(id=str(uuid.uuid4()), name=name, host="box", pid=7, version="0.1.0",
                       state=StationState.RUNNING, started_at=T0 - timedelta(hours=1), heartbeat_at=T0,
                       station_clock_at=T0, stopped_at=None, cameras_up=1, cameras_total=2,
                       stages={"cameras": {"stage": 1, "percent": 10}, "rules": {"stage": 0, "percent": 0}},
                       health="ok", problems=(), replaced_by=None)
    return replace(base, **changes)


# ---------------------------------------------------------------- the page over snapshots


@pytest.fixture
def page(qtbot):
    bridge = FleetBridge()
    p = FleetPage(bridge)
    qtbot.addWidget(p)
    return p


def test_the_page_shows_each_station_as_fleet_stations_does(page):
    lobby = info("lobby", health="degraded", problems=("Yard: stream stalled", "rollout rules: rolled back (x)"))
    dock = info("dock", heartbeat_at=T0 - timedelta(seconds=30), station_clock_at=T0 + timedelta(seconds=3570))
    old = info("old", state=StationState.STOPPED, stopped_at=T0)
    stations = [dock, lobby, old]
    page.set_snapshot(snapshot_of(T0, stations, 20.0, where="fleet.db", station_id=lobby.id))
    m = page.model
    assert m.rowCount() == 3
    assert [m.text(r, M.COL_NAME) for r in range(3)] == ["dock", "lobby (this station)", "old"]
    assert [m.text(r, M.COL_STATE) for r in range(3)] == ["gone", "up", "stopped"]
    row = m.row_of("lobby")
    assert m.text(row, M.COL_HEALTH) == "degraded"
    assert m.text(row, M.COL_PROBLEMS) == "Yard: stream stalled; rollout rules: rolled back (x)"
    assert m.text(row, M.COL_CAMERAS) == "1/2" and m.text(row, M.COL_ROLLOUT) == "cameras:1(10%) rules:0(0%)"
    assert m.text(row, M.COL_SINCE) == "2026-12-03 07:00:00" and m.text(row, M.COL_VERSION) == "0.1.0"
    assert m.data(m.index(row, M.COL_NAME), Qt.ItemDataRole.FontRole).bold()  # this station
    # the same cells as the command's lines
    lines = {ln.split()[0]: ln for ln in format_stations(T0, stations, 20.0)[1:]}
    for r in range(3):
        name = m.station(r).name
        for col in (M.COL_VERSION, M.COL_HOST, M.COL_CAMERAS, M.COL_ROLLOUT):
            assert m.text(r, col) in lines[name], (name, col)
    # gone: marked in its state cell and its whole row; its clock skew is said; stopped fades
    g = m.row_of("dock")
    assert m.text(g, M.COL_HEARTBEAT) == "30 s ago" and m.text(g, M.COL_SKEW) == "+3600.0 s"
    assert m.text(g, M.COL_HEALTH) == "–" and m.text(g, M.COL_PROBLEMS).startswith("no heartbeat since 2026-12-03")
    assert m.data(m.index(g, M.COL_STATE), Qt.ItemDataRole.BackgroundRole) == QColor(GONE_STATE)
    assert m.data(m.index(g, M.COL_VERSION), Qt.ItemDataRole.BackgroundRole) == QColor(GONE_BACKGROUND)
    assert m.data(m.index(row, M.COL_VERSION), Qt.ItemDataRole.BackgroundRole) is None
    assert m.data(m.index(m.row_of("old"), M.COL_NAME), Qt.ItemDataRole.ForegroundRole) == QColor("#757575")
    # the summary: the counts of fleet status's first line, and the rest of what it prints
    assert page.summary.text() == ("Fleet on fleet.db: 3 stations: 1 up, 1 gone, 1 stopped (gone after 20 s "
                                   "without a heartbeat; database time 2026-12-03 08:00:00 UTC)")
    assert "gone: dock" in page.details.text() and "cameras: 1/2 running" in page.details.text()
    assert not page.error.isVisibleTo(page)


def test_the_page_follows_the_model_and_keeps_the_last_read_when_one_fails(page):
    lobby, dock = info("lobby"), info("dock")
    page.set_snapshot(snapshot_of(T0, [dock, lobby], 20.0, where="fleet.db", station_id=lobby.id))
    assert page.model.text(0, M.COL_STATE) == "up"
    later = T0 + timedelta(seconds=25)  # dock did not heartbeat since; lobby did
    snap = snapshot_of(later, [dock, replace(lobby, heartbeat_at=later)], 20.0, where="fleet.db",
                       station_id=lobby.id)
    page.set_snapshot(snap)
    assert page.model.text(page.model.row_of("dock"), M.COL_STATE) == "gone"
    assert page.model.text(page.model.row_of("dock"), M.COL_HEARTBEAT) == "25 s ago"
    assert "1 up, 1 gone" in page.summary.text()
    # a third station registers: a new row
    page.set_snapshot(snapshot_of(later, [dock, replace(lobby, heartbeat_at=later), info("yard")], 20.0,
                                  where="fleet.db", station_id=lobby.id))
    assert page.model.rowCount() == 3 and page.model.row_of("yard") == 2
    failed = replace(page.snapshot, error="cannot read the fleet registry of fleet.db: OperationalError: gone")
    page.set_snapshot(failed)
    assert page.error.isVisibleTo(page) and "OperationalError: gone" in page.error.text()
    assert page.model.rowCount() == 3


def test_a_read_that_changes_nothing_redraws_nothing(page):
    lobby, dock = info("lobby"), info("dock")
    snap = snapshot_of(T0, [dock, lobby], 20.0, where="fleet.db", station_id=lobby.id)
    page.set_snapshot(snap)
    spans: list[tuple[int, int]] = []
    page.model.dataChanged.connect(lambda a, b, *_: spans.append((a.row(), b.row())))
    page.set_snapshot(snap)
    assert spans == []
    later = T0 + timedelta(seconds=5)  # lobby heartbeat again, dock did not: only dock's age changed
    lobby_later = replace(lobby, heartbeat_at=later, station_clock_at=later)
    page.set_snapshot(snapshot_of(later, [dock, lobby_later], 20.0, where="fleet.db", station_id=lobby.id))
    assert spans == [(0, 0)]


def test_a_page_built_late_shows_the_bridges_last_snapshot(qtbot):
    bridge = FleetBridge()
    lobby = info("lobby")
    bridge.latest = snapshot_of(T0, [lobby, info("dock")], 20.0, where="fleet.db", station_id=lobby.id)
    p = FleetPage(bridge)
    qtbot.addWidget(p)
    assert p.model.rowCount() == 2 and "2 stations: 2 up" in p.summary.text()


# ---------------------------------------------------------------- the window on a real fleet


@pytest.fixture
def fleet_window(qtbot, data_dir, tmp_path):
    from app.ui.window.main_window import MainWindow

    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=False, autostart=False,
                                     policy=RestartPolicy(stop_timeout=3.0), station_name="lobby",
                                     heartbeat_interval=BEAT, gone_after=GONE))
    w = MainWindow(station, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    w.open_station()
    try:
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        yield w
    finally:
        w.shutdown()
        w.close()
        station.close()


@pytest.fixture
def other_registry(fleet_window):
    """A registry on the window's database file, for a second station of another identity."""
    store = open_store(fleet_window.station.paths.db_url)
    try:
        yield StationRegistry(store)
    finally:
        store.dispose()


def test_one_station_shows_no_fleet_page(qtbot, fleet_window):
    w = fleet_window
    view = w.station.fleet_view()
    assert view is not None and view.running  # the window listens
    reads = view.reads
    qtbot.waitUntil(lambda: view.reads >= reads + 3 and w.fleet_bridge.latest is not None, timeout=10_000)
    assert [s.name for s in w.fleet_bridge.latest.stations] == ["lobby"]
    assert not w.fleet_page_shown
    assert not w.window_actions["page_fleet"].isVisible() and not w.window_actions["page_fleet"].isEnabled()
    assert w.pages["fleet"].page is None  # never built


def test_the_page_appears_when_a_second_station_registers_and_marks_it_gone(qtbot, fleet_window, other_registry):
    w = fleet_window
    assert not w.fleet_page_shown
    dock = str(uuid.uuid4())
    other_registry.claim(dock, "dock", version="0.0.9", host="dock-box", pid=42, gone_after=GONE,
                         report=StationReport(cameras_up=2, cameras_total=3, health="ok",
                                              stages={"cameras": {"stage": 2, "percent": 25}}))
    qtbot.waitUntil(lambda: w.fleet_page_shown, timeout=10_000)  # no restart of the window
    assert w.window_actions["page_fleet"].isVisible()
    page = w.show_page("fleet")
    assert isinstance(page, FleetPage)
    m = page.model
    qtbot.waitUntil(lambda: m.rowCount() == 2, timeout=10_000)
    assert m.text(m.row_of("lobby"), M.COL_NAME) == "lobby (this station)"
    d = m.row_of("dock")
    assert (m.text(d, M.COL_STATE), m.text(d, M.COL_VERSION), m.text(d, M.COL_CAMERAS)) == ("up", "0.0.9", "2/3")
    assert m.text(d, M.COL_ROLLOUT) == "cameras:2(25%)" and m.text(d, M.COL_HEALTH) == "ok"
    # dock heartbeats a while: it stays up
    for _ in range(3):
        assert other_registry.heartbeat(dock, StationReport(cameras_up=3, cameras_total=3, health="ok")).ok
        qtbot.waitUntil(lambda: m.text(m.row_of("dock"), M.COL_CAMERAS) == "3/3", timeout=10_000)
        assert m.text(m.row_of("dock"), M.COL_STATE) == "up"
    # its heartbeat stops: gone after GONE s by the database's clock; lobby, heartbeating, stays up
    qtbot.waitUntil(lambda: m.text(m.row_of("dock"), M.COL_STATE) == "gone", timeout=10_000)
    snap = page.snapshot
    assert snap is not None and snap.station("dock").liveness is Liveness.GONE
    assert snap.station("lobby").liveness is Liveness.UP
    assert m.data(m.index(m.row_of("dock"), M.COL_STATE), Qt.ItemDataRole.BackgroundRole) == QColor(GONE_STATE)
    assert "1 up, 1 gone" in page.summary.text() and "gone: dock" in page.details.text()
    # the window stops the reading when it shuts down
    view = w.station.fleet_view()
    w.shutdown()
    assert view is not None and not view.running


def test_the_fleet_page_shown_last_time_comes_back_with_the_second_station(qtbot, data_dir, tmp_path):
    from app.ui.window.main_window import MainWindow

    settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=False, autostart=False,
                                     station_name="lobby", heartbeat_interval=BEAT, gone_after=GONE))
    first = MainWindow(station, settings=settings)
    qtbot.addWidget(first)
    first._show_fleet_page(True)
    first.show_page("fleet")
    first.state.save(first)
    first.close()
    w = MainWindow(station, settings=settings)
    qtbot.addWidget(w)
    assert w.tabs.currentWidget() is w.cameras_page and not w.fleet_page_shown  # one station so far
    w.show()
    w.open_station()
    store = None
    try:
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        store = open_store(station.paths.db_url)
        StationRegistry(store).claim(str(uuid.uuid4()), "dock", version="0.1.0", host="h", pid=1, gone_after=GONE)
        qtbot.waitUntil(lambda: w.fleet_page_shown, timeout=10_000)
        assert w.tabs.currentWidget() is w.pages["fleet"]
    finally:
        if store is not None:
            store.dispose()
        w.shutdown()
        w.close()
        station.close()


def test_the_page_speaks_the_windows_language(qtbot, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from app.ui.common.i18n import install_translation, ts_path

    lrelease = Path(sys.executable).parent / "pyside6-lrelease"
    subprocess.run([str(lrelease), "-silent", str(ts_path("zh_CN")), "-qm", str(tmp_path / "edge_station_zh_CN.qm")],
                   check=True, timeout=60)
    before = QLocale()
    t = install_translation("zh_CN", directory=tmp_path)
    try:
        bridge = FleetBridge()
        p = FleetPage(bridge)
        qtbot.addWidget(p)
        lobby = info("lobby")
        p.set_snapshot(snapshot_of(T0, [info("dock", heartbeat_at=T0 - timedelta(seconds=30)), lobby], 20.0,
                                   where="fleet.db", station_id=lobby.id))
        m = p.model
        assert m.headerData(M.COL_NAME, Qt.Orientation.Horizontal) == "工作站"
        assert [m.text(r, M.COL_STATE) for r in range(2)] == ["失联", "在线"]
        assert m.text(1, M.COL_NAME) == "lobby（本工作站）" and m.text(0, M.COL_HEARTBEAT) == "30 秒前"
        assert p.summary.text().startswith("fleet.db 上的工作站集群：2 个工作站：1 个在线，1 个失联（")
    finally:
        t.remove()
        QLocale.setDefault(before)
