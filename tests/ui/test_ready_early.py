"""Ready to use early: the camera table shows the station's live states as soon as the station has
loaded its cameras, while the rest of its open (the local API, the autostart) still runs."""

from __future__ import annotations

import threading

from PySide6.QtCore import QSettings

from app.platform.paths import resolve_paths
from app.station import Station, StationOptions
from app.supervisor import RestartPolicy
from app.ui.window.main_window import MainWindow


def test_the_table_fills_before_the_open_ends_and_operations_wait_for_it(qtbot, data_dir, ui_settings: QSettings):
    release = threading.Event()
    api_asked = threading.Event()

    def slow_api(_station, _port):  # the open's last steps, held here until the test lets them go
        api_asked.set()
        release.wait(30)
        return None

    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True, autostart=False,
                                     policy=RestartPolicy(stop_timeout=3.0), api=slow_api))
    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    shown: list[int] = []
    w.camerasShown.connect(shown.append)
    try:
        w.show()
        w.open_station()
        qtbot.waitUntil(lambda: w.model.rowCount() > 0, timeout=20_000)
        assert not w.ready, "the open is still held in its API start"
        names = {c.name for c in station.cameras()}
        assert {s.name for s in w.model.statuses()} == names and len(shown) == 1 and shown[0] == len(names)
        # The states are the supervisor's, and the wall has its tiles.
        assert {s.camera_id: s.state for s in w.model.statuses()} == \
            {s.camera_id: s.state for s in station.live_status()}
        assert {t.camera_id for t in w.wall.tiles().values()} == {c.id for c in station.cameras()}
        # Operations are offered once the open is done.
        assert not w.window_actions["start_all"].isEnabled()
        release.set()
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        assert w.window_actions["start_all"].isEnabled()
        assert len(shown) == 1, "the table went live once"
    finally:
        release.set()
        w.shutdown()
        w.close()
        station.close()


def test_the_table_fills_before_the_store_opens(qtbot, data_dir, ui_settings: QSettings, monkeypatch):
    """A database already at this app's schema: its cameras (read with sqlite3) and the supervisor's
    idle states of them show while the store, SQLAlchemy and the other parts still load."""
    first = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True, autostart=False, fleet=False))
    first.open()
    expected = {c.id: c for c in first.cameras()}
    first.close()
    assert expected

    import app.store

    real_open_store = app.store.open_store
    release = threading.Event()
    store_asked = threading.Event()

    def held_open_store(url):
        store_asked.set()
        release.wait(30)
        return real_open_store(url)

    monkeypatch.setattr(app.store, "open_store", held_open_store)
    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True, autostart=False,
                                     policy=RestartPolicy(stop_timeout=3.0)))
    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    shown: list[int] = []
    w.camerasShown.connect(shown.append)
    try:
        w.show()
        w.open_station()
        qtbot.waitUntil(lambda: w.model.rowCount() > 0, timeout=20_000)
        assert store_asked.wait(20) and not release.is_set() and not w.ready
        assert {c.id: c for c in station.cameras()} == expected, "the early read is the store's read"
        states = {s.camera_id: s.state.value for s in w.model.statuses()}
        assert states == {cid: ("stopped" if c.active else "inactive") for cid, c in expected.items()}
        assert shown == [len(expected)]
        assert not w.window_actions["start_all"].isEnabled()
        release.set()
        qtbot.waitUntil(lambda: w.ready, timeout=30_000)
        assert {c.id: c for c in station.cameras()} == expected
        assert station.parts().supervisor.running and shown == [len(expected)]
    finally:
        release.set()
        w.shutdown()
        w.close()
        station.close()
