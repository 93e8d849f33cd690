"""The shared-memory preview slot: layout, seqlock, re-creation, space check."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time

import av
import numpy as np
import pytest

from app.worker import preview as preview_mod
from app.worker.preview import PreviewSpaceError, PreviewWriter, preview_size
from app.workerlink.preview import PreviewReader
from app.workerlink.protocol import (
    HEADER_FORMAT,
    HEADER_SIZE,
    INTEREST_HOLD,
    PAYLOAD_OFFSET,
    PREVIEW_MAX_HEIGHT,
    PREVIEW_MAX_WIDTH,
    SEQ_OFFSET,
    SLOT_SIZE,
    WANT_HEIGHT_OFFSET,
    WANTED_UNTIL_OFFSET,
)


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    """BGRX rows (the slot's format) of one RGB colour."""
    img = np.full((h, w, 4), 255, np.uint8)
    img[..., 2::-1] = rgb
    return img.reshape(h, w * 4)


def test_layout_matches_the_contract(tmp_path):
    path = tmp_path / "cam.preview"
    writer = PreviewWriter(path)
    try:
        assert HEADER_SIZE == 48 and WANTED_UNTIL_OFFSET == 40
        assert path.stat().st_size == SLOT_SIZE == HEADER_SIZE + 1280 * 720 * 4
        raw = path.read_bytes()
        magic, version, want, seq, ts, w, h, stride, want_h, pad, until = struct.unpack_from(HEADER_FORMAT, raw)
        assert (magic, version, want, seq, w, h, stride, want_h, pad, until) == (b"ESPV", 3, 0, 0, 0, 0, 0, 0, 0, 0)
        assert WANT_HEIGHT_OFFSET == 36
        writer.write_rows(solid(4, 6, (1, 2, 3)), 6, 4, ts=123.5)
        raw = path.read_bytes()
        magic, version, want, seq, ts, w, h, stride, want_h, pad, until = struct.unpack_from(HEADER_FORMAT, raw)
        assert (seq, ts, w, h, stride, until) == (2, 123.5, 6, 4, 24, 0)
        # BGRX: Qt's RGB32 on little-endian (a 0xffRRGGBB word)
        assert raw[PAYLOAD_OFFSET : PAYLOAD_OFFSET + 8] == bytes([3, 2, 1, 255, 3, 2, 1, 255])
        # an RGB image goes through write_rgb; RGB rows given as BGRX are refused, not half-written
        writer.write_rgb(np.full((4, 6, 3), (10, 20, 30), np.uint8), ts=124.0)
        assert path.read_bytes()[PAYLOAD_OFFSET : PAYLOAD_OFFSET + 4] == bytes([30, 20, 10, 255])
        with pytest.raises(preview_mod.PreviewError, match="an RGB image goes through write_rgb"):
            writer.write_rows(np.zeros((4, 18), np.uint8), 6, 4)
        assert writer.seq == 4 and struct.unpack_from("<Q", path.read_bytes(), SEQ_OFFSET)[0] == 4
    finally:
        writer.close()


def test_reader_sees_nothing_before_the_first_frame_then_each_frame(tmp_path):
    path = tmp_path / "cam.preview"
    reader = PreviewReader(path)
    assert reader.read() is None  # no file yet
    writer = PreviewWriter(path)
    try:
        assert reader.read() is None  # file, but no frame
        writer.write_rows(solid(10, 20, (200, 100, 50)), 20, 10, ts=1.0)
        got = reader.read()
        assert got is not None
        assert (got.seq, got.ts, got.width, got.height) == (2, 1.0, 20, 10)
        assert got.image.shape == (10, 20, 4) and got.image[5, 5].tolist() == [50, 100, 200, 255]
        assert got.rgb()[5, 5].tolist() == [200, 100, 50]
        writer.write_rows(solid(10, 20, (0, 0, 255)), 20, 10)
        again = reader.read()
        assert again is not None and again.seq == 4
        assert got.rgb()[5, 5].tolist() == [200, 100, 50]  # a copy: not overwritten
    finally:
        writer.close()
        reader.close()


def test_reader_follows_a_new_slot_file_at_the_same_path(tmp_path):
    path = tmp_path / "cam.preview"
    first = PreviewWriter(path)
    first.write_rows(solid(2, 2, (9, 9, 9)), 2, 2)
    first.write_rows(solid(2, 2, (9, 9, 9)), 2, 2)
    reader = PreviewReader(path)
    assert reader.read().seq == 4
    first.close()
    os.unlink(path)
    assert reader.read() is None
    second = PreviewWriter(path)  # a restarted worker
    second.write_rows(solid(2, 2, (7, 7, 7)), 2, 2)
    got = reader.read()
    assert got is not None and got.seq == 2 and got.rgb()[0, 0].tolist() == [7, 7, 7]
    second.close()
    reader.close()


def test_reader_never_returns_a_torn_frame(tmp_path):
    """A writer thread fills every frame with one value; every read must be uniform."""
    path = tmp_path / "cam.preview"
    writer = PreviewWriter(path)
    reader = PreviewReader(path)
    stop = threading.Event()
    frames = [solid(PREVIEW_MAX_HEIGHT, PREVIEW_MAX_WIDTH, (v, v, v)) for v in range(0, 256, 15)]

    def write() -> None:
        i = 0
        while not stop.is_set():
            writer.write_rows(frames[i % len(frames)], PREVIEW_MAX_WIDTH, PREVIEW_MAX_HEIGHT)
            i += 1
            stop.wait(0.001)  # a real writer publishes at most ~30 frames/s

    thread = threading.Thread(target=write)
    thread.start()
    try:
        seen, last_seq = 0, 0
        deadline = time.monotonic() + 30
        while seen < 200 and time.monotonic() < deadline:
            got = reader.read()
            if got is None:
                continue
            assert got.seq % 2 == 0 and got.seq >= last_seq
            lo, hi = int(got.rgb().min()), int(got.rgb().max())
            assert lo == hi, f"torn frame at seq {got.seq}: values {lo}..{hi}"
            last_seq = got.seq
            seen += 1
        assert seen == 200, f"only {seen} consistent frames read in 30 s"
    finally:
        stop.set()
        thread.join(10)
        writer.close()
        reader.close()


_WRITER_PROCESS = """
import os, select, sys, time
import numpy as np
from app.worker.preview import PreviewWriter
from app.workerlink.protocol import PREVIEW_MAX_HEIGHT as H, PREVIEW_MAX_WIDTH as W
writer = PreviewWriter(sys.argv[1])
frames = [np.full((H, W * 4), v, np.uint8) for v in range(0, 256, 15)]
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])  # a bound only: the reader ends it by closing stdin
i = 0
while time.monotonic() < end:
    for _ in range(8):  # a burst of frames back to back: the reader's copies overlap these writes
        writer.write_rows(frames[i % len(frames)], W, H)
        i += 1
    # then wait until the reader says it read a whole frame (a byte), or is done (end of file)
    if not select.select([sys.stdin], [], [], max(0.0, end - time.monotonic()))[0] or not os.read(0, 1):
        break
writer.close()
"""

#: frames the reader must see whole, each a different one, while the writer writes in bursts
TORN_CHECK_FRAMES = 200


def test_reader_never_returns_a_torn_frame_from_another_process(tmp_path):
    """The real setting: the writer runs in another process, on another core, in bursts of frames
    written back to back (a copy mostly overlaps a write), each burst after the reader said it
    read a whole frame, until the reader has seen enough different frames whole (it closes the
    writer's stdin), however slow the box. A writer that never pauses starves the reader (every
    copy overlaps a write and is retried), which is why a worker writes at most
    ``--preview-fps`` frames a second."""
    path = tmp_path / "cam.preview"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER_PROCESS, str(path), "60"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        assert writer.stdin is not None
        reader = PreviewReader(path)
        seen: set[int] = set()
        while writer.poll() is None and len(seen) < TORN_CHECK_FRAMES:
            got = reader.read()
            if got is None or got.seq in seen:
                continue
            lo, hi = int(got.image.min()), int(got.image.max())
            assert lo == hi, f"torn frame at seq {got.seq}: values {lo}..{hi}"
            seen.add(got.seq)
            writer.stdin.write(".")  # one whole frame read: the writer's next burst
            writer.stdin.flush()
        reader.close()
        assert len(seen) >= TORN_CHECK_FRAMES, f"the writer ended after {len(seen)} frames were read"
        writer.stdin.close()  # done: the writer stops
        assert writer.wait(10) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(5)
        for stream in (writer.stdin, writer.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def test_write_frame_downscales_to_rgb_keeping_aspect(tmp_path):
    rgb = np.zeros((720, 1280, 3), np.uint8)
    rgb[:, :640] = (255, 0, 0)
    rgb[:, 640:] = (0, 0, 255)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    path = tmp_path / "cam.preview"
    with PreviewReader(path) as reader:
        writer = PreviewWriter(path, max_width=320, max_fps=100)
        writer.write_frame(frame, ts=5.0)
        got = reader.read()
        writer.close()
    assert (got.width, got.height) == (320, 180)
    assert (got.image[..., 3] == 255).all()  # X is 255, as Qt's RGB32 wants
    left, right = got.rgb()[90, 40].astype(int), got.rgb()[90, 280].astype(int)
    assert left[0] > 200 and left[2] < 60  # red stays red (no channel swap)
    assert right[2] > 200 and right[0] < 60


def test_a_reader_asks_for_the_width_it_draws_at(tmp_path):
    """A 1x1 or fullscreen tile asks for a wide preview, a 4x4 tile for a small one (defect 7)."""
    frame = av.VideoFrame.from_ndarray(np.zeros((720, 1280, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    path = tmp_path / "cam.preview"
    writer = PreviewWriter(path, max_width=320, max_fps=100)
    try:
        with PreviewReader(path) as reader:
            writer.write_frame(frame)
            assert reader.read().width == 320  # nobody asked: the worker's --preview-width
            assert reader.request_width(1280) and reader.requested_width() == 1280
            writer.write_frame(frame)
            assert (reader.read().width, reader.read().height) == (1280, 720)
            reader.request_width(400)
            writer.write_frame(frame)
            assert reader.read().width == 400
            reader.request_width(99_999)  # capped
            assert reader.requested_width() == PREVIEW_MAX_WIDTH
        small = av.VideoFrame.from_ndarray(np.zeros((180, 320, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
        with PreviewReader(path) as reader:
            reader.request_width(0)
            writer.write_frame(small)
            assert reader.read().width == 320  # nobody asked: never above the source
            reader.request_width(340)  # a tile draws this 320 x 180 source 340 px wide
            writer.write_frame(small)
            assert (reader.read().width, reader.read().height) == (340, 190)  # scaled here, not in the window
            reader.request_width(345, 187)  # ... in a box of 345 x 187: fits its height
            assert (reader.requested_width(), reader.requested_height(), writer.wanted_height()) == (345, 187, 187)
            writer.write_frame(small)
            assert (reader.read().width, reader.read().height) == (332, 186)
    finally:
        writer.close()


def test_a_polling_reader_asks_again_only_for_a_new_box_or_a_new_slot(tmp_path):
    """A tile polls ten times a second with the same box: the fields are written when the box
    changes or a restarted worker made a new slot (a new file at the same path), else left alone."""
    path = tmp_path / "cam.preview"

    def asked() -> tuple[int, int]:  # the slot's fields as they are in the file now
        with PreviewReader(path) as other:
            return other.requested_width(), other.requested_height()

    first = PreviewWriter(path)
    with PreviewReader(path) as reader:
        reader.poll(0, 400, 200)
        assert asked() == (400, 200)
        reader.poll(0, 300, 0)  # the tile got smaller
        assert asked() == (300, 0)
        reader.request_width(640)  # asked outright: the next poll puts the tile's box back
        assert asked() == (640, 0)
        reader.poll(0, 300, 0)
        assert asked() == (300, 0)
        first.close()
        path.unlink()
        second = PreviewWriter(path)  # the restarted worker's slot: nobody asked it anything yet
        try:
            assert asked() == (0, 0)
            reader.poll(0, 300, 0)
            assert asked() == (300, 0) and second.wanted_width() == 300
        finally:
            second.close()


def test_offer_respects_the_preview_rate(tmp_path):
    frame = av.VideoFrame(64, 36, "yuv420p")
    writer = PreviewWriter(tmp_path / "p", max_fps=5)
    try:
        with PreviewReader(tmp_path / "p") as reader:
            assert reader.mark_interest()
            written = sum(writer.offer(frame) for _ in range(50))  # all within a few ms
        assert written == 1
        off = PreviewWriter(tmp_path / "q", max_fps=0)
        with PreviewReader(tmp_path / "q") as reader:
            reader.mark_interest()
            assert not off.offer(frame)
        off.close()
    finally:
        writer.close()


def test_without_interest_offer_converts_nothing(tmp_path):
    frame = av.VideoFrame(64, 36, "yuv420p")
    writer = PreviewWriter(tmp_path / "p", max_fps=1000)
    try:
        assert not writer.wanted()
        assert not any(writer.offer(frame) for _ in range(20))
        assert (writer.seq, writer.frames_written, writer.frames_unwanted) == (0, 0, 20)
        with PreviewReader(tmp_path / "p") as reader:
            assert reader.read() is None  # nothing written yet, but reading marks interest
            assert writer.wanted()
            assert writer.offer(frame)  # the next frame after a reader came back is published
            assert reader.read().seq == 2
    finally:
        writer.close()


def test_interest_is_a_deadline_on_the_monotonic_clock(tmp_path):
    path = tmp_path / "p"
    writer = PreviewWriter(path)
    try:
        with PreviewReader(path) as reader, PreviewReader(path) as other:
            now = time.monotonic_ns()
            assert reader.mark_interest(hold=1.0, now_ns=now)
            until = reader.interested_until()
            assert until == now + 1_000_000_000
            raw = path.read_bytes()[:HEADER_SIZE]
            assert struct.unpack_from("<Q", raw, WANTED_UNTIL_OFFSET)[0] == until
            assert writer.wanted(now_ns=until - 1) and not writer.wanted(now_ns=until)
            # never moved back: a shorter hold from another reader keeps the longer deadline
            assert other.mark_interest(hold=0.1, now_ns=now)
            assert reader.interested_until() == until
            # renewed only when it would move by more than a quarter of the hold (no write per poll)
            reader.mark_interest(hold=1.0, now_ns=now + 200_000_000)
            assert reader.interested_until() == until
            reader.mark_interest(hold=1.0, now_ns=now + 300_000_000)
            assert reader.interested_until() == now + 1_300_000_000
            # read() holds INTEREST_HOLD
            before = time.monotonic_ns()
            reader.read()
            assert reader.interested_until() >= before + int(INTEREST_HOLD * 1e9) * 3 // 4
    finally:
        writer.close()


@pytest.mark.parametrize("version", [1, 2])
def test_a_reader_never_writes_into_a_slot_of_another_version(tmp_path, version):
    """Validate, then write: a version-1 slot (36-byte header), a version-2 one (RGB24 payload),
    or any file that is not a slot of this version, is neither read nor marked."""
    path = tmp_path / "p"
    old = bytearray(SLOT_SIZE)
    struct.pack_into("<4sHHQdIII", old, 0, b"ESPV", version, 0, 2, 1.0, 2, 2, 6)
    path.write_bytes(bytes(old))
    with PreviewReader(path) as reader:
        assert reader.read() is None
        assert not reader.mark_interest() and not reader.request_width(320)
        assert reader.interested_until() == 0 and reader.requested_width() == 0
    assert path.read_bytes() == bytes(old)


def test_a_tiles_reader_looks_for_a_new_file_once_a_second_not_on_every_poll(tmp_path, monkeypatch):
    """A wall tile's reader (``recheck_s``) holds its mapping between looks at the file: polls
    within the second make no ``stat``; the first one after it finds a restarted worker's file."""
    from app.workerlink import preview as reader_mod

    now = [100.0]
    path = tmp_path / "cam.preview"
    first = PreviewWriter(path)
    reader = PreviewReader(path, recheck_s=1.0, clock=lambda: now[0])
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(reader_mod.os, "stat",
                        lambda p, *a, **k: (stats.append(p) if p == path else None) or real_stat(p, *a, **k))
    try:
        first.write_rows(solid(2, 2, (9, 9, 9)), 2, 2)
        assert reader.poll(0, 32).rgb()[0, 0].tolist() == [9, 9, 9]
        assert len(stats) == 1
        first.close()
        os.unlink(path)
        second = PreviewWriter(path)  # a restarted worker, same path
        second.write_rows(solid(2, 2, (7, 7, 7)), 2, 2)
        now[0] += 0.9
        assert reader.poll(2, 32) is None  # still the old mapping, and no stat
        assert len(stats) == 1
        now[0] += 0.2
        got = reader.poll(2, 32)
        assert len(stats) == 2
        assert got is None  # the new file's first frame has seq 2 too: next one
        second.write_rows(solid(2, 2, (7, 7, 7)), 2, 2)
        got = reader.poll(2, 32)
        assert got is not None and got.seq == 4 and got.rgb()[0, 0].tolist() == [7, 7, 7]
        assert reader.requested_width() == 32  # asked in the new file too
        second.close()
    finally:
        reader.close()


def test_a_read_only_slot_is_read_but_cannot_be_asked_for_frames(tmp_path, monkeypatch):
    """A reader without write permission (tests run as root, so the refusal is faked at open)."""
    from app.workerlink import preview as reader_mod

    real_open = os.open

    def no_write(path, flags, *a):
        if flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a)

    path = tmp_path / "p"
    writer = PreviewWriter(path)
    try:
        writer.write_rows(solid(2, 2, (5, 5, 5)), 2, 2)
        monkeypatch.setattr(reader_mod.os, "open", no_write)
        with PreviewReader(path) as reader:
            assert reader.read().seq == 2
            assert not reader.mark_interest()
    finally:
        writer.close()


def test_preview_size_fits_the_slot():
    assert preview_size(1920, 1080, 320) == (320, 180)
    assert preview_size(1920, 1080, 640) == (640, 360)
    assert preview_size(1920, 1080, 1280) == (1280, 720)
    assert preview_size(1920, 1080, 4000) == (1280, 720)  # the slot's cap
    assert preview_size(480, 640, 1280) == (480, 640)  # portrait that fits: as it is
    assert preview_size(1080, 1920, 1280) == (404, 720)  # portrait: limited by height
    assert preview_size(160, 90, 320) == (160, 90)  # never upscaled by itself ...
    assert preview_size(160, 90, 320, upscale=True) == (320, 180)  # ... only to what a reader draws
    assert preview_size(320, 180, 4000, upscale=True) == (1280, 720)  # within the slot


def test_short_space_is_a_clear_error(tmp_path, monkeypatch):
    """A full file system cannot be made here safely; fake only statvfs's answer."""
    real = os.statvfs(tmp_path)

    class Full:
        f_bavail = 10
        f_frsize = real.f_frsize

    monkeypatch.setattr(preview_mod.os, "statvfs", lambda _p: Full())
    with pytest.raises(
        PreviewSpaceError,
        match=rf"not enough free space for the preview slot in .*need {SLOT_SIZE} bytes",
    ):
        PreviewWriter(tmp_path / "p")
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_a_tile_poll_asks_marks_and_reads_only_what_moved_on(tmp_path):
    """``PreviewReader.poll``: one look at the slot per tile poll (width asked, interest marked,
    the frame copied only when ``seq`` moved on; never a frame while the writer is mid-frame)."""
    path = tmp_path / "cam.preview"
    reader = PreviewReader(path)
    assert reader.poll(0, 320) is None  # no slot yet
    writer = PreviewWriter(path)
    try:
        assert reader.poll(0, 352) is None  # a slot, nothing written yet: asked and marked all the same
        assert reader.requested_width() == 352 and writer.wanted() and writer.wanted_width() == 352
        assert reader.requested_height() == 0 and writer.wanted_height() == 0  # any height
        reader.poll(0, 352, 198)
        assert (reader.requested_height(), writer.wanted_height()) == (198, 198)
        writer.write_rows(solid(10, 20, (1, 2, 3)), 20, 10, ts=5.0)
        got = reader.poll(0, 352)
        assert got is not None and (got.seq, got.ts, got.rgb()[0, 0].tolist()) == (2, 5.0, [1, 2, 3])
        assert reader.poll(got.seq, 352) is None  # nothing new
        reader.poll(got.seq, 99_999)
        assert reader.requested_width() == PREVIEW_MAX_WIDTH  # capped
        reader.poll(got.seq, 0)
        assert reader.requested_width() == PREVIEW_MAX_WIDTH  # 0: asks nothing
        writer.write_rows(solid(10, 20, (4, 5, 6)), 20, 10)
        struct.pack_into("<Q", writer._mm, SEQ_OFFSET, writer.seq + 1)  # the writer is mid-frame
        assert reader.poll(got.seq, 352) is None
        struct.pack_into("<Q", writer._mm, SEQ_OFFSET, writer.seq)
        again = reader.poll(got.seq, 352)
        assert again is not None and again.seq == 4 and again.rgb()[0, 0].tolist() == [4, 5, 6]
    finally:
        writer.close()
        reader.close()
