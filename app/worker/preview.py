"""The preview slot's writer: the latest downscaled frame (BGRX) in a memory-mapped file.

The layout is part of the worker protocol (``app.workerlink.protocol``); the station
reads the slot with ``app.workerlink.preview.PreviewReader``.

The preview follows what is shown: a reader (a wall tile, a fullscreen tile)
writes the box it draws the frame in into the header's ``wanted`` and ``wanted_height`` fields
and the writer scales the frame to fit it (within PREVIEW_MAX_WIDTH x PREVIEW_MAX_HEIGHT; above
the source's size too, since the tile draws it that large), so a 1x1 or fullscreen tile is sharp,
a 4x4 one cheap, and the window draws every frame as it comes, without scaling it.

Previews on demand: the writer converts a frame only while a reader wants frames, i.e. while
the header's ``wanted_until`` (CLOCK_MONOTONIC ns, written by readers) lies in the future. A
worker nobody watches (no window, a hidden or closed tile) spends nothing on previews; when a
reader comes back, the next decoded frame is published (well within one preview interval).

The conversion is one swscale pass straight from the decoded YUV frame to BGRX (Qt's RGB32, what
the window draws without converting it again) at the wanted size with FAST_BILINEAR (about 10 %
cheaper than BILINEAR and indistinguishable on a tile; 32-bit output is also swscale's quickest,
0.8x the time of RGB24 for a 1280x720 frame to 320x180), then one copy of its rows into the slot.

The worker (``PreviewWriter``) creates the file under a temporary name, sizes it,
reserves its blocks, and renames it into place, so a reader never maps a
half-made file; a reader notices a new file (new inode) and remaps.
The reader copies a consistent frame out (retrying while the writer is mid-frame).
Pure Python + numpy.
"""

from __future__ import annotations

import math
import mmap
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.worker.ratelimit import RateLimiter
from app.workerlink.protocol import (
    BODY,
    BODY_OFFSET,
    HEADER,
    MAGIC,
    PAYLOAD_OFFSET,
    PREVIEW_MAX_HEIGHT,
    PREVIEW_MAX_WIDTH,
    PREVIEW_PIXEL_BYTES,
    SEQ,
    SEQ_OFFSET,
    SLOT_SIZE,
    VERSION,
    WANT,
    WANT_HEIGHT,
    WANT_HEIGHT_OFFSET,
    WANT_OFFSET,
    WANTED_UNTIL,
    WANTED_UNTIL_OFFSET,
)

if TYPE_CHECKING:  # pragma: no cover
    import av

__all__ = [
    "PreviewError",
    "PreviewSpaceError",
    "PreviewWriter",
    "preview_size",
]


class PreviewError(Exception):
    """Base class for preview slot errors."""


class PreviewSpaceError(PreviewError):
    """The file system holding the preview slot has too little free space."""


def preview_size(
    src_width: int, src_height: int, max_width: int, *, max_height: int = 0, upscale: bool = False
) -> tuple[int, int]:
    """Preview size for a source frame: at most *max_width* wide (and *max_height* tall, when
    given) and within PREVIEW_MAX_WIDTH x PREVIEW_MAX_HEIGHT, aspect ratio kept, even
    dimensions; never larger than the source unless *upscale* (a reader asked for that box: it
    draws the frame that large, and scaling here, in the one conversion the worker makes anyway,
    spares the window a scaling pass on every frame)."""
    if src_width <= 0 or src_height <= 0:
        raise ValueError(f"bad source size {src_width}x{src_height}")
    scale = min(
        max_width / src_width, max_height / src_height if max_height > 0 else math.inf,
        PREVIEW_MAX_WIDTH / src_width, PREVIEW_MAX_HEIGHT / src_height,
        math.inf if upscale else 1.0,
    )
    width = max(2, int(src_width * scale) // 2 * 2)
    height = max(2, int(src_height * scale) // 2 * 2)
    return width, height


class PreviewWriter:
    """Worker side of the slot. Not thread-safe: one writer thread.

    ``__init__`` raises ``PreviewSpaceError`` when the file system lacks space and
    ``PreviewError`` for other I/O failures (both configuration errors).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_width: int = 320, max_fps: float = 10.0
    ):
        if not 16 <= max_width <= PREVIEW_MAX_WIDTH:
            raise ValueError(
                f"preview width must be within 16..{PREVIEW_MAX_WIDTH}, got {max_width}"
            )
        if max_fps < 0:
            raise ValueError(f"preview fps must be >= 0, got {max_fps}")
        self.path = Path(path)
        self.max_width = max_width
        self._limiter = RateLimiter(max_fps)
        self.seq = 0
        self.frames_written = 0
        #: frames offered while no reader wanted previews (not converted)
        self.frames_unwanted = 0
        self._reformatter: av.video.reformatter.VideoReformatter | None = None
        self._mm = self._create()
        self._payload = np.frombuffer(self._mm, dtype=np.uint8, offset=PAYLOAD_OFFSET)

    def _create(self) -> mmap.mmap:
        directory = self.path.parent
        if not directory.is_dir():
            raise PreviewError(f"preview directory does not exist: {directory}")
        try:
            st = os.statvfs(directory)
        except OSError as exc:
            raise PreviewError(
                f"cannot check free space for preview in {directory}: {exc}"
            ) from None
        free = st.f_bavail * st.f_frsize
        if free < SLOT_SIZE:
            raise PreviewSpaceError(
                f"not enough free space for the preview slot in {directory}: "
                f"need {SLOT_SIZE} bytes, {free} available"
            )
        tmp = directory / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                # Reserve the blocks now: on a full tmpfs a later write would SIGBUS.
                os.posix_fallocate(fd, 0, SLOT_SIZE)
            except OSError as exc:
                raise PreviewSpaceError(
                    f"cannot reserve {SLOT_SIZE} bytes for the preview slot {self.path}: {exc.strerror}"
                ) from None
            mm = mmap.mmap(fd, SLOT_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            HEADER.pack_into(mm, 0, MAGIC, VERSION, 0, 0, 0.0, 0, 0, 0, 0, 0, 0)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        finally:
            os.close(fd)
        return mm

    def wanted_width(self) -> int:
        """The width to scale to: what a reader asked for, else the worker's ``--preview-width``."""
        want = WANT.unpack_from(self._mm, WANT_OFFSET)[0]
        return min(PREVIEW_MAX_WIDTH, max(16, want)) if want else self.max_width

    def wanted_height(self) -> int:
        """The height of the box a reader draws in (0: none given)."""
        if not WANT.unpack_from(self._mm, WANT_OFFSET)[0]:
            return 0
        want = WANT_HEIGHT.unpack_from(self._mm, WANT_HEIGHT_OFFSET)[0]
        return min(PREVIEW_MAX_HEIGHT, max(16, want)) if want else 0

    def wanted(self, now_ns: int | None = None) -> bool:
        """Whether a reader wants frames now (its ``wanted_until`` lies ahead)."""
        until = WANTED_UNTIL.unpack_from(self._mm, WANTED_UNTIL_OFFSET)[0]
        return bool(until) and until > (time.monotonic_ns() if now_ns is None else now_ns)

    def offer(self, frame: av.VideoFrame, ts: float | None = None) -> bool:
        """Write *frame* if a reader wants frames and the rate limit allows; returns whether it
        was written. Without a reader this is one 8-byte read of the header."""
        now_ns = time.monotonic_ns()
        if not self.wanted(now_ns):
            self.frames_unwanted += 1
            return False
        if not self._limiter.accept(now_ns / 1e9):
            return False
        self.write_frame(frame, ts)
        return True

    def write_frame(self, frame: av.VideoFrame, ts: float | None = None) -> None:
        """Downscale *frame* to BGRX (the only colour conversion in the worker) and publish it,
        whether or not a reader wants it (``offer`` is the on-demand path)."""
        from av.video.reformatter import Interpolation, VideoReformatter

        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        asked = WANT.unpack_from(self._mm, WANT_OFFSET)[0] > 0
        width, height = preview_size(frame.width, frame.height, self.wanted_width(),
                                     max_height=self.wanted_height(), upscale=asked)
        out = self._reformatter.reformat(
            frame, width=width, height=height, format="bgra",
            interpolation=Interpolation.FAST_BILINEAR
        )
        plane = out.planes[0]
        src = np.frombuffer(memoryview(plane), dtype=np.uint8)[: plane.line_size * height]
        self.write_rows(src.reshape(height, plane.line_size), width, height, ts)

    def write_rgb(self, image: npt.NDArray[np.uint8], ts: float | None = None) -> None:
        """Publish an RGB image given as (height, width, 3) uint8 (converted to the slot's BGRX)."""
        height, width = image.shape[:2]
        bgrx = np.full((height, width, PREVIEW_PIXEL_BYTES), 255, np.uint8)
        bgrx[:, :, 2::-1] = image
        self.write_rows(bgrx.reshape(height, width * PREVIEW_PIXEL_BYTES), width, height, ts)

    def write_rows(
        self, rows: npt.NDArray[np.uint8], width: int, height: int, ts: float | None = None
    ) -> None:
        """Publish a BGRX image given as (height, >= width*4) uint8 rows."""
        if not (0 < width <= PREVIEW_MAX_WIDTH and 0 < height <= PREVIEW_MAX_HEIGHT):
            raise PreviewError(
                f"preview size {width}x{height} exceeds {PREVIEW_MAX_WIDTH}x{PREVIEW_MAX_HEIGHT}"
            )
        stride = width * PREVIEW_PIXEL_BYTES
        if rows.ndim != 2 or rows.shape[0] < height or rows.shape[1] < stride:
            raise PreviewError(
                f"preview rows {rows.shape} hold less than {height} rows of {width} BGRX pixels "
                f"({stride} bytes); an RGB image goes through write_rgb"
            )
        mm = self._mm
        seq = self.seq
        SEQ.pack_into(mm, SEQ_OFFSET, seq + 1)  # odd: writing
        dst = self._payload[: stride * height].reshape(height, stride)
        np.copyto(dst, rows[:height, :stride])
        BODY.pack_into(mm, BODY_OFFSET, time.time() if ts is None else ts, width, height, stride)
        self.seq = seq + 2
        SEQ.pack_into(mm, SEQ_OFFSET, self.seq)  # even: complete
        self.frames_written += 1

    def close(self) -> None:
        """Unmap (the file stays; the supervisor deletes it)."""
        if self._mm is not None and not self._mm.closed:
            self._payload = np.empty(0, np.uint8)
            try:
                self._mm.close()
            except BufferError:  # a view is still alive somewhere; the OS unmaps at exit
                pass


