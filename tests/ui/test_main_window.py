"""The main window against a real station: demo cameras, start/stop through the actions."""

from __future__ import annotations

import threading

import psutil
import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from app.domain import CameraState
from app.station import StationEvent
from app.ui.common.models import CameraTableModel
from tests.ui.conftest import START_TIMEOUT_MS, camera_id, make_station

pytestmark = pytest.mark.slow


def _cell(window, cid: int, col: int) -> str:
    return window.model.index(window.model.row_of(cid), col).data()


def test_window_lists_the_demo_cameras(window, station):
    names = [window.model.index(r, CameraTableModel.COL_NAME).data() for r in range(window.model.rowCount())]
    assert sorted(names) == sorted(c.name for c in station.cameras())
    assert {"Lobby", "Loading dock", "Server room", "Front gate"} <= set(names)
    gate = camera_id(station, "Front gate")
    assert _cell(window, gate, CameraTableModel.COL_STATE) == "inactive"


def test_start_then_stop_through_the_actions(qtbot, window, station):
    cid = camera_id(station, "Lobby")
    window.select_camera(cid)
    assert window.window_actions["start"].isEnabled()
    assert not window.window_actions["stop"].isEnabled()
    window.window_actions["start"].trigger()

    def running_with_frames() -> bool:
        st = window.model.status(cid)
        return st is not None and st.state == CameraState.RUNNING and (st.fps or 0) > 0

    qtbot.waitUntil(running_with_frames, timeout=START_TIMEOUT_MS)
    assert float(_cell(window, cid, CameraTableModel.COL_FPS)) > 0
    pid = window.model.status(cid).pid
    assert pid is not None and psutil.pid_exists(pid)

    window.select_camera(cid)
    assert window.window_actions["stop"].isEnabled()
    window.window_actions["stop"].trigger()
    qtbot.waitUntil(lambda: window.model.status(cid).state == CameraState.STOPPED, timeout=15_000)
    assert _cell(window, cid, CameraTableModel.COL_STATE) == "stopped"

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    qtbot.waitUntil(gone, timeout=5_000)


def test_an_operation_error_shows_in_the_status_bar(qtbot, window, station):
    gate = camera_id(station, "Front gate")  # inactive: the station refuses to start it
    with qtbot.waitSignal(window.operationFinished, timeout=10_000) as sig:
        window.start_camera(gate)
    label, ok, message = sig.args
    assert not ok and "Front gate" in label
    assert "[" in message  # the stable error code
    assert "failed" in window.statusBar().currentMessage()
    assert window.model.status(gate).state == CameraState.INACTIVE


def test_operations_run_off_the_gui_thread(qtbot, window, station):
    seen: list[bool] = []
    gui = QThread.currentThread()

    def probe() -> str:
        seen.append(QThread.currentThread() is gui)
        return "ok"

    with qtbot.waitSignal(window.operationFinished, timeout=5_000):
        window.run_operation("probe thread", probe)
    assert seen == [False]


def test_bridge_delivers_station_events_on_the_gui_thread(qtbot, window, station):
    threads: list[bool] = []
    window.bridge.camerasChanged.connect(
        lambda: threads.append(QThread.currentThread() is QApplication.instance().thread()))
    t = threading.Thread(target=lambda: station.emit(StationEvent("cameras")))
    with qtbot.waitSignal(window.bridge.camerasChanged, timeout=5_000):
        t.start()
    t.join()
    assert threads == [True]


def test_run_window_opens_autostarts_and_stops_everything_on_close(qtbot, data_dir):
    from PySide6.QtCore import QTimer

    from app.ui.app import run_window
    from app.ui.window.main_window import MainWindow

    station = make_station(data_dir, autostart=True)
    seen: dict[str, object] = {}
    deadline = {"ticks": 0}

    def poll() -> None:
        deadline["ticks"] += 1
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.station is station]
        if wins:
            w = wins[0]
            seen["visible_before_ready"] = seen.get("visible_before_ready", w.isVisible() and not w.ready)
            running = [s for s in w.model.statuses() if s.state == CameraState.RUNNING and (s.fps or 0) > 0]
            if w.ready and running:
                seen["running"] = [s.name for s in running]
                seen["pids"] = [s.pid for s in w.model.statuses() if s.pid]
                w.close()
                return
            if deadline["ticks"] > 300:  # 30 s: give up, the assertions below fail
                w.close()
                return
        QTimer.singleShot(100, poll)

    QTimer.singleShot(0, poll)
    try:
        code = run_window(station)
    finally:
        station.close()
    assert code == 0
    assert seen.get("visible_before_ready") is True
    assert seen.get("running"), "no camera reached running with frames"
    for pid in seen["pids"]:  # type: ignore[union-attr]
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_window_operations_are_audited_as_the_operator(qtbot, window, station):
    gate = camera_id(station, "Front gate")
    with qtbot.waitSignal(window.operationFinished, timeout=10_000):
        window.start_camera(gate)  # refused (inactive), and still an audited operation

    def audited() -> list:
        flush = getattr(getattr(station.parts().router, "audit", None), "flush", None)
        if flush is not None:
            flush()
        with station.parts().store.uow() as uow:
            return [e for e in uow.audit.recent(50) if e.op == "start_camera"]

    qtbot.waitUntil(lambda: bool(audited()), timeout=10_000)
    entry = audited()[0]
    assert entry.actor == "operator" and entry.key.endswith(str(gate))


def test_sigterm_closes_the_window_and_stops_the_workers(qtbot, data_dir):
    import os
    import signal

    from PySide6.QtCore import QTimer

    from app.ui.app import run_window
    from app.ui.window.main_window import MainWindow

    station = make_station(data_dir, autostart=True)
    pids: list[int] = []
    ticks = {"n": 0}

    def poll() -> None:
        ticks["n"] += 1
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.station is station]
        if wins and wins[0].ready and any((s.fps or 0) > 0 for s in wins[0].model.statuses()):
            pids.extend(s.pid for s in wins[0].model.statuses() if s.pid)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if ticks["n"] > 300:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        QTimer.singleShot(100, poll)

    before = signal.getsignal(signal.SIGTERM)
    QTimer.singleShot(0, poll)
    try:
        code = run_window(station)
    finally:
        station.close()
    assert code == 0
    assert signal.getsignal(signal.SIGTERM) is before
    assert pids, "no worker was running before the signal"
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
