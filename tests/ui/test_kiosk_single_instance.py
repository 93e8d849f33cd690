"""One station per data dir: a second launch raises the running window instead of starting a supervisor."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from app.kiosk.instance import EXIT_ALREADY_RUNNING, InstanceLock, hand_off
from app.station import StationAlreadyRunning, Unopened
from app.ui.common.single_instance import InstanceServer, socket_path
from app.ui.kiosk.screensaver import ScreenSaverInhibitor
from tests.conftest import OFFSCREEN_NOISE, REPO_ROOT
from tests.ui.conftest import make_station

SECOND_LAUNCH = textwrap.dedent("""
    import json, sys
    from app.kiosk.instance import hand_off
    answer = hand_off(sys.argv[1])
    print(json.dumps(None if answer is None else answer.__dict__), flush=True)
""")


def second_launch(qtbot, data_dir) -> dict | None:
    """Another process asks, as ``edge-station`` does before building a window; the GUI keeps running."""
    proc = subprocess.Popen([sys.executable, "-c", SECOND_LAUNCH, str(data_dir)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=15_000)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.fixture
def kiosk_on(qtbot, station, ui_settings, tmp_path):
    from app.ui.kiosk.window import KioskWindow

    w = KioskWindow(station, settings=ui_settings, autostart=False,
                    inhibitor=ScreenSaverInhibitor(bus_address=f"unix:path={tmp_path / 'no-bus'}"))
    qtbot.addWidget(w)
    w.showFullScreen()
    w.open_station()
    qtbot.waitUntil(lambda: w.ready, timeout=20_000)
    yield w
    w.shutdown()


@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)", *OFFSCREEN_NOISE)  # offscreen: no stacking
def test_second_launch_raises_the_running_kiosk(qtbot, kiosk_on, station):
    import os

    assert kiosk_on.instance_server is not None
    holder = InstanceLock.probe(station.paths.data_dir)
    assert holder["pid"] == os.getpid() and holder["socket"] == socket_path(station.paths.data_dir)
    kiosk_on.showMinimized()
    answer = second_launch(qtbot, station.paths.data_dir)
    assert answer["raised"] is True and answer["pid"] == os.getpid() and answer["exit_code"] == 0
    assert "already running" in answer["message"] and "brought forward" in answer["message"]
    assert kiosk_on.instance_server.requests == 1
    qtbot.waitUntil(kiosk_on.isFullScreen, timeout=5_000)


def test_second_station_on_the_same_data_dir_is_refused(kiosk_on, station, data_dir):
    second = make_station(data_dir)
    with pytest.raises(StationAlreadyRunning) as info:
        second.open()
    assert info.value.holder["socket"].endswith(".sock")
    with pytest.raises(Unopened):  # the second launch started no supervisor: it has no parts at all
        second.parts()
    second.close()


def test_nothing_running_means_no_hand_off(data_dir):
    assert InstanceLock.probe(data_dir) is None
    assert hand_off(data_dir) is None


def test_a_station_without_a_window_gets_a_clear_message(data_dir):
    lock = InstanceLock.for_data_dir(data_dir)
    lock.acquire()  # a headless station: no socket recorded
    try:
        answer = hand_off(data_dir)
    finally:
        lock.release()
    assert answer is not None and not answer.raised and answer.exit_code == EXIT_ALREADY_RUNNING
    assert "already running" in answer.message and "without a window" in answer.message


def test_a_dead_socket_gets_a_clear_message(data_dir, tmp_path):
    lock = InstanceLock.for_data_dir(data_dir)
    lock.acquire({"socket": str(tmp_path / "gone.sock")})
    try:
        answer = hand_off(data_dir, timeout=1.0)
    finally:
        lock.release()
    assert answer is not None and not answer.raised and answer.exit_code == EXIT_ALREADY_RUNNING
    assert "did not answer" in answer.message


def test_a_long_data_dir_gets_a_short_socket_path(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = socket_path(deep)
    assert len(path) <= 100 and path.endswith(".sock")
    w = QWidget()
    qtbot.addWidget(w)
    server = InstanceServer(w)
    deep.mkdir(parents=True)
    lock = InstanceLock.for_data_dir(deep)
    lock.acquire()
    try:
        assert server.listen(deep, lock) == path
        assert InstanceLock.probe(deep)["socket"] == path
    finally:
        server.close()
        lock.release()


@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)", *OFFSCREEN_NOISE)
def test_the_main_window_answers_second_launches_too(qtbot, station, ui_settings):
    import os

    from app.ui.common.single_instance import install_instance_server
    from app.ui.window.main_window import MainWindow

    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    server = install_instance_server(w, station)
    w.show()
    w.open_station()
    qtbot.waitUntil(lambda: w.ready and bool(server.path), timeout=20_000)
    try:
        w.showMinimized()
        answer = second_launch(qtbot, station.paths.data_dir)
        assert answer["raised"] and answer["pid"] == os.getpid()
        assert server.requests == 1
        assert not w.isMinimized()
    finally:
        w.shutdown()


@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)", *OFFSCREEN_NOISE)
def test_a_kiosk_that_loses_the_race_raises_the_winner_and_closes(qtbot, kiosk_on, station, ui_settings, tmp_path,
                                                                   caplog):
    """Two launches at once: both passed the hand-off check; the one whose station cannot lock leaves."""
    from app.ui.kiosk.window import KioskWindow

    loser_station = make_station(station.paths.data_dir)
    loser = KioskWindow(loser_station, settings=ui_settings, autostart=False,
                        inhibitor=ScreenSaverInhibitor(bus_address=f"unix:path={tmp_path / 'no-bus'}"))
    qtbot.addWidget(loser)
    loser.showFullScreen()
    try:
        loser.open_station()
        qtbot.waitUntil(lambda: loser.open_error is not None, timeout=20_000)
        assert isinstance(loser.open_error, StationAlreadyRunning)
        qtbot.waitUntil(lambda: not loser.isVisible(), timeout=5_000)
        qtbot.waitUntil(lambda: kiosk_on.instance_server.requests == 1, timeout=5_000)
        with pytest.raises(Unopened):  # it started no supervisor: it has no parts at all
            loser_station.parts()
        assert "its window was brought forward" in caplog.text
        assert kiosk_on.isVisible() and kiosk_on.ready
    finally:
        loser.shutdown()
        loser_station.close()
