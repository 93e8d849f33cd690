"""Nothing fails silently (defect 11): a taken API port shows in the status bar and the settings
dialog, and the operator picks another port there; the API then serves on it at once."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from app.api import start_for_station
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions
from app.store import open_store
from app.supervisor import RestartPolicy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def taken_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def test_a_taken_api_port_is_shown_and_another_one_can_be_picked(qtbot, tmp_path, ui_settings, taken_port):
    from app.ui.window.main_window import MainWindow

    paths = resolve_paths(tmp_path / "data")
    paths.ensure()
    store = open_store(paths.db_url)
    with store.uow() as uow:
        uow.settings.set("api.port", taken_port)
        uow.commit()
    store.dispose()
    station = Station(StationOptions(paths=paths, seed_demo=False, autostart=False, api=start_for_station,
                                     policy=RestartPolicy(stop_timeout=3.0)))
    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    w.show()
    try:
        w.open_station()
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        w.refresh_status()
        qtbot.waitUntil(lambda: w.api_label.isVisible(), timeout=5_000)
        assert str(taken_port) in w.api_label.text() and "in use" in w.api_label.toolTip()
        assert station.api_status.failed and station.api is None

        dlg = w.settings_dialog()
        qtbot.waitUntil(lambda: "Not running" in dlg.api_state.text(), timeout=5_000)
        assert str(taken_port) in dlg.api_state.text()
        new_port = free_port()
        dlg.api_port.setValue(new_port)
        dlg.apply()
        qtbot.waitUntil(lambda: station.api_status.running, timeout=10_000)
        qtbot.waitUntil(lambda: f"Running on 127.0.0.1:{new_port}" in dlg.api_state.text(), timeout=5_000)
        w.refresh_status()
        qtbot.waitUntil(lambda: not w.api_label.isVisible(), timeout=5_000)
        try:  # a real answer on the new port (any HTTP status: the server is there)
            urllib.request.urlopen(f"http://127.0.0.1:{new_port}/api/v1/monitoring/health", timeout=5)
        except urllib.error.HTTPError as e:
            assert e.code in (401, 403, 404)
        dlg.close()
    finally:
        w.shutdown()
        w.close()
        station.close()
