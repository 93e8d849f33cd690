"""What a wall tile repaints: only a new frame or a changed status, from caches it rebuilds when what
they show changed. Frames come through a real preview slot (the worker's writer, the tile's reader)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from app.domain import CameraState
from app.domain.operations import CameraStatus
from app.ui.wall.camera_wall import CameraTile, CameraWall, wanted_preview_size
from app.worker.preview import PreviewWriter
from app.workerlink.protocol import PREVIEW_MAX_HEIGHT, PREVIEW_MAX_WIDTH


class ProbeTile(CameraTile):
    """Counts the repaints the tile asks for (every call of ``update`` the tile makes)."""

    def __init__(self, *args, **kwargs):
        self.update_calls = 0
        super().__init__(*args, **kwargs)

    def update(self, *args):  # the tile's own calls come through here
        self.update_calls += 1
        super().update(*args)


def live(camera_id: int = 1, name: str = "Gate", **changes) -> CameraStatus:
    base = CameraStatus(camera_id, name, CameraState.RUNNING, True, pid=4242, uptime=12.0, source="up",
                        fps=10.0, last_frame_age=0.1)
    return dataclasses.replace(base, **changes)


class Slot:
    """A real preview slot and its writer, with frames of one flat colour."""

    def __init__(self, path: Path):
        self.path = path
        self.writer = PreviewWriter(path)

    def write(self, rgb: tuple[int, int, int], width: int = 320, height: int = 180) -> None:
        image = np.empty((height, width, 3), np.uint8)
        image[:] = rgb
        self.writer.write_rgb(image)

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def slots(tmp_path: Path):
    made: dict[int, Slot] = {}

    def slot(camera_id: int) -> Slot:
        if camera_id not in made:
            made[camera_id] = Slot(tmp_path / f"preview-{camera_id}.bin")
        return made[camera_id]

    yield slot
    for s in made.values():
        s.close()


def shown_tile(qtbot, slots, status: CameraStatus) -> ProbeTile:
    slot = slots(status.camera_id)
    tile = ProbeTile(status.camera_id, status.name, lambda cid: slots(cid).path)
    qtbot.addWidget(tile)
    tile.resize(320, 180)
    tile.set_status(status)
    tile.show()
    qtbot.waitExposed(tile)
    slot.write((200, 30, 30))
    assert tile.poll_frame()
    qtbot.waitUntil(lambda: tile.paints >= 1, timeout=5_000)
    return tile


def test_a_tile_asks_for_no_repaint_when_nothing_changed(qtbot, slots):
    tile = shown_tile(qtbot, slots, live())
    calls, shown = tile.update_calls, tile.frames_shown
    for _ in range(5):  # the wall's 10 Hz polls between two frames of the worker
        assert tile.poll_frame() is False
    tile.set_status(live(uptime=13.0, pid=4242))  # a new snapshot that shows nothing else
    tile.set_status(live(uptime=14.0))
    assert tile.update_calls == calls and tile.frames_shown == shown

    # A new frame asks for one repaint and is painted (converted once, to what the paint copies).
    paints = tile.paints
    slots(1).write((30, 200, 30))
    assert tile.poll_frame() is True
    assert tile.update_calls == calls + 1
    assert tile.image is not None and tile.image.format() == QImage.Format.Format_RGB32
    qtbot.waitUntil(lambda: tile.paints > paints, timeout=5_000)
    centre = tile.grab().toImage().pixelColor(160, 120)
    assert (centre.red(), centre.green(), centre.blue()) == (30, 200, 30)
    assert tile.drawn_as_is and tile.frames_scaled == 0  # the size it draws at: painted as it came


def test_a_tile_asks_for_the_size_it_draws_and_scales_only_what_is_not(qtbot, slots):
    tile = shown_tile(qtbot, slots, live())  # 320 x 180: a 16:9 frame fills it
    assert tile.drawn_as_is and (slots(1).writer.wanted_width(), slots(1).writer.wanted_height()) == (320, 180)
    tile.resize(400, 150)  # wider than 16:9: the frame is as tall as the tile, 267 px wide
    tile.poll_frame()
    assert (slots(1).writer.wanted_width(), slots(1).writer.wanted_height()) == (400, 150)  # the box
    assert not tile.drawn_as_is and tile.frames_scaled == 1  # the old frame, scaled until the next
    slots(1).write((30, 30, 200), width=266, height=150)  # what the worker fits in it (even sizes)
    assert tile.poll_frame() and tile.drawn_as_is and tile.frames_scaled == 1
    img = tile.grab().toImage()
    mid = img.pixelColor(200, 100)
    assert (mid.red(), mid.green(), mid.blue()) == (30, 30, 200)
    assert QColor(img.pixel(3, 100)) == QColor("#111418")  # the bars beside it
    assert wanted_preview_size(400, 150, 2.0) == (800, 300)  # device pixels on a HiDPI screen
    assert wanted_preview_size(5000, 3000, 1.0) == (PREVIEW_MAX_WIDTH, PREVIEW_MAX_HEIGHT)


def test_a_tile_looks_its_slot_up_once_per_worker(qtbot, slots):
    """The path of a camera's slot is the station's to give (under the supervisor's lock): a tile
    asks once while the same worker runs, and again for a restarted worker (another pid)."""
    lookups: list[int] = []
    slot = slots(1)

    def path_for(cid: int) -> Path:
        lookups.append(cid)
        return slot.path

    tile = ProbeTile(1, "Gate", path_for)
    qtbot.addWidget(tile)
    tile.resize(320, 180)
    tile.set_status(live(pid=4242))
    tile.show()
    qtbot.waitExposed(tile)
    for rgb in ((200, 30, 30), (30, 200, 30)):
        slot.write(rgb)
        assert tile.poll_frame()
        assert tile.poll_frame() is False
    assert lookups == [1]
    tile.set_status(live(pid=4343, uptime=1.0))  # restarted: a new worker writes the slot
    slot.write((30, 30, 200))
    assert tile.poll_frame() and lookups == [1, 1]
    centre = tile.grab().toImage().pixelColor(160, 120)
    assert (centre.red(), centre.green(), centre.blue()) == (30, 30, 200)
    tile.set_status(live(state=CameraState.STOPPED, source=None, fps=None, pid=None))  # offline: no reads
    assert tile.poll_frame() is False and lookups == [1, 1]


def test_the_title_bar_cache_is_rebuilt_on_a_status_change_only(qtbot, slots):
    tile = shown_tile(qtbot, slots, live(fps=10.0))
    tile.grab()
    builds = tile.overlay_builds
    assert builds >= 1
    for _ in range(3):  # more paints of an unchanged tile draw the cached title bar
        tile.grab()
    assert tile.overlay_builds == builds

    calls = tile.update_calls
    tile.set_status(live(fps=7.5))  # the badge says another fps
    assert tile.update_calls == calls + 1
    before = tile.grab().toImage()
    assert tile.overlay_builds == builds + 1
    assert "7.5 fps" in tile.title_badge()

    tile.set_status(live(fps=7.5, motion_active=True, motion=0.4))  # the motion dot appears
    after = tile.grab().toImage()
    assert tile.overlay_builds == builds + 2
    bar = [(x, y) for x in range(tile.width()) for y in range(2, 20)]
    assert any(before.pixel(x, y) != after.pixel(x, y) for x, y in bar), "the title bar shows the dot"
    tile.grab()
    assert tile.overlay_builds == builds + 2


def test_the_offline_text_is_drawn_once_per_change(qtbot, slots):
    tile = shown_tile(qtbot, slots, live())
    tile.set_status(live(state=CameraState.STOPPED, source=None, fps=None, pid=None))
    assert tile.offline and tile.image is None
    tile.grab()
    builds = tile.body_builds
    tile.grab()
    tile.set_status(live(state=CameraState.STOPPED, source=None, fps=None, pid=None, uptime=99.0))
    tile.grab()
    assert tile.body_builds == builds
    tile.set_status(live(state=CameraState.FAILED, source=None, fps=None, pid=None, error="no such file"))
    img = tile.grab().toImage()
    assert tile.body_builds == builds + 1
    assert QColor(img.pixel(5, tile.height() - 5)) == QColor("#111418")


def test_the_wall_reads_and_repaints_only_the_tiles_on_its_page(qtbot, slots):
    wall = CameraWall(lambda cid: slots(cid).path, grid=1)
    qtbot.addWidget(wall)
    wall.timer.stop()  # the test polls by hand
    wall.resize(400, 300)
    wall.set_statuses([live(1, "Gate"), live(2, "Yard")])
    wall.show()
    qtbot.waitExposed(wall)
    wall.timer.stop()
    for cid in (1, 2):
        slots(cid).write((10 * cid, 100, 100))
    assert wall.poll_frames() == 1
    shown, hidden = wall.tile(1), wall.tile(2)
    assert shown is not None and hidden is not None
    assert shown.frames_shown == 1 and hidden.frames_shown == 0 and not hidden.isVisible()
    assert hidden.paints == 0

    wall.next_page()
    assert wall.poll_frames() == 1
    assert hidden.frames_shown == 1 and shown.frames_shown == 1


def test_only_shown_tiles_ask_their_workers_for_previews(qtbot, slots):
    """A worker converts previews only while a reader wants them: the tile on the page marks its
    slot, the tile on the next page does not, and once the wall is hidden the mark lapses."""
    from app.workerlink.protocol import INTEREST_HOLD

    wall = CameraWall(lambda cid: slots(cid).path, grid=1)
    qtbot.addWidget(wall)
    wall.resize(400, 300)
    wall.set_statuses([live(1, "Gate"), live(2, "Yard")])
    for cid in (1, 2):
        assert not slots(cid).writer.wanted()
    wall.show()
    qtbot.waitExposed(wall)
    wall.timer.stop()  # the test polls by hand
    wall.poll_frames()
    assert slots(1).writer.wanted() and not slots(2).writer.wanted()
    wall.next_page()
    wall.poll_frames()
    assert slots(2).writer.wanted()
    wall.hide()
    assert wall.poll_frames() == 0  # a hidden wall reads nothing, so it renews nothing
    later = time.monotonic_ns() + int(INTEREST_HOLD * 1e9) + 1
    assert not slots(1).writer.wanted(now_ns=later) and not slots(2).writer.wanted(now_ns=later)
