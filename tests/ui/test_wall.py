"""The camera wall with real workers: frames from the preview slot, the offline overlay, fullscreen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from app.domain import CameraState
from tests.ui.conftest import START_TIMEOUT_MS, camera_id

pytestmark = pytest.mark.slow

BACKGROUND = QColor("#111418")


def _background_share(img: QImage, step: int = 7) -> float:
    """The share of a sparse grid of pixels (below the title bar) that is the empty tile colour."""
    bg = BACKGROUND.rgb()
    total = hits = 0
    for y in range(img.height() // 6, img.height() - 2, step):
        for x in range(2, img.width() - 2, step):
            total += 1
            hits += img.pixel(x, y) == bg
    return hits / total


def test_wall_shows_live_frames_then_offline_after_stop(qtbot, window, station):
    cid = camera_id(station, "Lobby")
    window.tabs.setCurrentWidget(window.wall)
    tile = window.wall.tile(cid)
    assert tile is not None and tile.offline
    assert tile.offline_text().startswith("OFFLINE since ")

    window.start_camera(cid)
    qtbot.waitUntil(lambda: tile.frames_shown >= 2 and not tile.offline, timeout=START_TIMEOUT_MS)
    assert tile.image is not None and tile.image.width() > 0
    grabbed = tile.grab().toImage()
    assert _background_share(grabbed) < 0.5, "the tile paints no picture"
    # Only new frames are turned into images: polling again without a new seq does nothing.
    seq = tile.seq
    shown = tile.frames_shown
    if tile._reader is not None and tile._reader.seq == seq:
        assert tile.poll_frame() is False and tile.frames_shown == shown

    window.stop_camera(cid)
    qtbot.waitUntil(lambda: window.model.status(cid).state == CameraState.STOPPED, timeout=15_000)
    qtbot.waitUntil(lambda: tile.offline, timeout=5_000)
    assert tile.image is None, "a stale frame is still shown"
    assert tile.offline_text().startswith("OFFLINE since ")
    grabbed = tile.grab().toImage()
    assert _background_share(grabbed) > 0.8  # no picture left, just the overlay text


def test_double_click_goes_fullscreen_and_escape_comes_back(qtbot, window, station):
    cid = camera_id(station, "Server room")
    window.tabs.setCurrentWidget(window.wall)
    tile = window.wall.tile(cid)
    qtbot.mouseDClick(tile, Qt.MouseButton.LeftButton)
    fs = window.wall.fullscreen
    assert fs is not None and fs.tile.camera_id == cid
    qtbot.waitUntil(lambda: fs.isVisible(), timeout=2_000)
    assert fs.isFullScreen()
    with qtbot.waitSignal(window.wall.fullscreenChanged, timeout=2_000) as sig:
        qtbot.keyClick(fs, Qt.Key.Key_Escape)
    assert sig.args == [None]
    assert window.wall.fullscreen is None


def test_layouts_and_pages(qtbot, window, station):
    window.tabs.setCurrentWidget(window.wall)
    n = len(station.cameras())
    for grid in (1, 2, 3, 4):
        window.wall.set_grid(grid)
        assert len(window.wall.visible_tiles()) == min(n, grid * grid)
    window.wall.set_grid(1)
    assert window.wall.page_count() == n
    first = window.wall.visible_tiles()[0].camera_id
    window.wall.next_page()
    assert window.wall.visible_tiles()[0].camera_id != first
    with pytest.raises(ValueError, match="layout"):
        window.wall.set_grid(5)


def test_a_long_tile_name_is_elided_before_the_badge_with_the_whole_name_in_the_tooltip(qtbot):
    from app.domain.operations import CameraStatus
    from app.ui.common.formatting import VIEW_COLOURS
    from app.ui.wall.camera_wall import CameraTile

    name = "Front entrance north camera by the loading bay"
    tile = CameraTile(1, name, lambda _cid: None)
    qtbot.addWidget(tile)
    tile.resize(240, 135)
    tile.set_status(CameraStatus(1, name, CameraState.RUNNING, True, pid=1, source="down", fps=0.0))
    img = tile.grab().toImage()
    badge = QColor(VIEW_COLOURS["source_down"])
    y = 8  # inside the title bar, through the badge and the name
    left = next(x for x in range(img.width()) if QColor(img.pixel(x, y)) == badge)
    assert left > img.width() // 3, "the badge sits at the right of the title bar"
    near = [QColor(img.pixel(x, yy)) for x in range(left - 6, left) for yy in range(2, 20)]
    assert not [c for c in near if min(c.red(), c.green(), c.blue()) > 160], \
        "the name stops before the badge (elided), it does not run under it"
    assert tile.toolTip() == name
