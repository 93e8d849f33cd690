"""The preview a tile shows follows the tile's size, capped (defect 7): sharp at 1x1 and fullscreen."""

from __future__ import annotations

import pytest

from app.domain.camera import Camera
from app.workerlink.protocol import PREVIEW_MAX_WIDTH
from tests.ui.conftest import START_TIMEOUT_MS

pytestmark = pytest.mark.slow


def test_a_tile_gets_a_preview_as_wide_as_it_draws(qtbot, window, station):
    cam = station.parts().admin.add_camera(Camera(name="Wide", source="test://testsrc?size=1280x720&rate=10", active=True))
    station.reload_cameras()
    window.refresh()
    window.resize(1500, 950)
    window.tabs.setCurrentWidget(window.wall)
    window.wall.set_grid(1)
    window.wall.set_page(window.wall._order.index(cam.id))
    window.start_camera(cam.id)
    tile = window.wall.tile(cam.id)
    qtbot.waitUntil(lambda: tile.image is not None and tile.image.width() >= 1024, timeout=START_TIMEOUT_MS)
    assert tile.image.width() <= PREVIEW_MAX_WIDTH
    assert tile.image.width() >= min(PREVIEW_MAX_WIDTH, tile.width()) - 32, (tile.image.width(), tile.width())

    window.wall.set_grid(4)  # a small tile asks for a small (cheap) preview
    qtbot.waitUntil(lambda: tile.image is not None and tile.image.width() <= tile.width() + 32, timeout=10_000)
    assert tile.image.width() < 640
    # ... of the size it draws the frame at, which it then paints as it arrives (no scaling on the
    # GUI thread): the tile's width, or less when the tile is wider than the frame's aspect
    qtbot.waitUntil(lambda: tile.drawn_as_is, timeout=10_000)
    fits = min(tile.width(), round(tile.height() * 16 / 9))
    assert fits - 2 <= tile.image.width() <= fits, (tile.image.width(), tile.size())

    small = tile.image.width()
    fs = window.wall.show_fullscreen(cam.id)  # the fullscreen tile asks for its (screen's) width
    qtbot.waitUntil(lambda: fs.tile.width() > 2 * small, timeout=5_000)
    want = min(PREVIEW_MAX_WIDTH, fs.tile.width())
    qtbot.waitUntil(lambda: fs.tile.image is not None and fs.tile.image.width() >= want - 32, timeout=10_000)
    fs.close()
    window.stop_camera(cam.id)
    qtbot.waitUntil(lambda: window.model.status(cam.id).state == "stopped", timeout=15_000)
