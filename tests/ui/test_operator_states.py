"""What the operator sees is true (defect 1): a dead source is not green anywhere; inactive is grey."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.domain.camera import Camera
from app.domain.operations import CameraRef
from app.ui.common.formatting import VIEW_COLOURS
from app.ui.common.models import CameraTableModel
from tests.support.stream_server import StreamServer
from tests.ui.conftest import START_TIMEOUT_MS, camera_id

pytestmark = pytest.mark.slow

GREEN = QColor(VIEW_COLOURS["live"])
SHOTS = os.environ.get("EDGE_STATION_SHOTS")  # a directory: the test also saves what it saw


def _state_cell(window, cid: int) -> tuple[str, QColor]:
    row = window.model.row_of(cid)
    idx = window.model.index(row, CameraTableModel.COL_STATE)
    return idx.data(), idx.data(Qt.ItemDataRole.BackgroundRole)


def _shot(widget, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(SHOTS) / name))


def test_a_dead_http_camera_is_not_green_in_table_wall_and_tray(qtbot, window, station):
    with StreamServer(fps=15) as server:
        cam = station.parts().admin.add_camera(Camera(name="Gate", source=server.url, stall_timeout=30))
        station.reload_cameras()
        window.refresh()
        cid = cam.id
        window.start_camera(cid)
        qtbot.waitUntil(lambda: _state_cell(window, cid)[0] == "running", timeout=START_TIMEOUT_MS)
        assert _state_cell(window, cid)[1] == GREEN
        tile = window.wall.tile(cid)
        assert tile.view == "live"
        server.stop()  # the camera's stream vanishes; the worker stays up and reports its source down
        qtbot.waitUntil(lambda: _state_cell(window, cid)[0] == "source down", timeout=20_000)
    text, colour = _state_cell(window, cid)
    assert colour != GREEN, f"the table shows {text!r} in green"
    assert "running" not in text
    assert tile.view == "source_down" and tile.badge_text() == "source down"
    assert tile.offline and tile.offline_text().startswith("SOURCE DOWN since ")
    window.refresh()
    assert "no video: Gate (source down)" in window.notifier.tooltip
    assert window.notifier.state == "down"
    window.tabs.setCurrentWidget(window.wall)
    qtbot.wait(50)
    _shot(window, "dead-camera-table-wall.png")
    window.show_page("cameras")
    _shot(window, "dead-camera-table.png")
    window.stop_camera(cid)
    qtbot.waitUntil(lambda: window.model.status(cid).state == "stopped", timeout=15_000)


def test_running_without_frames_yet_is_not_green(window, station):
    from app.domain import CameraState
    from app.domain.operations import CameraStatus
    from app.ui.common.formatting import view_state

    cid = camera_id(station, "Lobby")
    opening = CameraStatus(cid, "Lobby", CameraState.RUNNING, True, pid=1, source="opening")
    window.model.update([opening], {cid: "test://moving"})
    text, colour = _state_cell(window, cid)
    assert view_state(opening) == "no_frames" and text == "no frames yet" and colour != GREEN


def test_a_deactivated_camera_is_grey_inactive_not_offline(qtbot, window, station):
    cid = camera_id(station, "Lobby")
    station.parts().router.deactivate_camera(CameraRef(cid))
    station.reload_cameras()
    window.refresh()
    text, colour = _state_cell(window, cid)
    assert text == "inactive"
    assert colour == QColor(VIEW_COLOURS["inactive"])
    tile = window.wall.tile(cid)
    assert tile.view == "inactive"
    assert tile.offline_text() == "INACTIVE", "an inactive camera is not 'OFFLINE since the window opened'"


def test_a_dead_source_is_not_green_in_the_kiosk_nor_its_pop_up(qtbot, station, ui_settings, tmp_path, monkeypatch):
    from dataclasses import replace

    from app.domain import CameraState
    from app.ui.common.formatting import view_colour
    from tests.ui.test_kiosk import FakeClock, open_kiosk

    w = open_kiosk(qtbot, station, ui_settings, FakeClock(), tmp_path=tmp_path)
    try:
        cid = camera_id(station, "Lobby")
        live = station.live_status

        def with_lobby_down():  # the worker runs and retries; its source is gone
            return [replace(s, state=CameraState.RUNNING, pid=1, source="down", fps=0.0,
                            error="cannot open rtsp://10.0.0.7/cam: Connection refused")
                    if s.camera_id == cid else s for s in live()]

        monkeypatch.setattr(station, "live_status", with_lobby_down)
        w.show_popup(cid, "⚠ CRITICAL · Lobby — Camera offline", "critical")
        w.refresh()
        for tile in (w.wall.tile(cid), w.popup.tile):
            assert tile.view == "source_down" and tile.badge_text() == "source down"
            assert QColor(view_colour(tile.view)) != GREEN
            assert tile.offline and tile.offline_text().startswith("SOURCE DOWN since ")
    finally:
        w.shutdown()
