"""The preview slot: the latest downscaled RGB frame in a memory-mapped file.

Layout (little-endian)::

    header  struct "<4sHHQdIII" (HEADER_SIZE = 36 bytes):
            magic b"ESPV", version 1,
            wanted u16 (the width a reader asks for, 0 = none: see ``request_width``),
            seq u64   (seqlock: odd while the writer is writing, even when complete),
            ts f64    (unix time of the frame), width u32, height u32,
            stride u32 (bytes per payload row)
    payload RGB24 rows starting at PAYLOAD_OFFSET (= HEADER_SIZE),
            room for PREVIEW_MAX_WIDTH x PREVIEW_MAX_HEIGHT.

The preview follows what is shown: a reader (a wall tile, a fullscreen tile)
writes the width it draws at into the header's ``wanted`` field and the writer
scales to it (never above the source, within PREVIEW_MAX_WIDTH x
PREVIEW_MAX_HEIGHT), so a 1x1 or fullscreen tile is sharp and a 4x4 one cheap.

The worker (``PreviewWriter``) creates the file under a temporary name, sizes it,
reserves its blocks, and renames it into place, so a reader never maps a
half-made file; a reader notices a new file (new inode) and remaps.
``PreviewReader.read()`` copies a consistent frame out (retrying while the
writer is mid-frame). Pure Python + numpy.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from app.worker.ratelimit import RateLimiter

if TYPE_CHECKING:  # pragma: no cover
    import av

__all__ = [
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "MAGIC",
    "PAYLOAD_OFFSET",
    "PREVIEW_MAX_HEIGHT",
    "PREVIEW_MAX_WIDTH",
    "SLOT_SIZE",
    "VERSION",
    "PreviewError",
    "PreviewFrame",
    "PreviewReader",
    "PreviewSpaceError",
    "PreviewWriter",
    "preview_size",
]

MAGIC = b"ESPV"
VERSION = 1
HEADER_FORMAT = "<4sHHQdIII"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 36
PAYLOAD_OFFSET = HEADER_SIZE
PREVIEW_MAX_WIDTH = 1280
PREVIEW_MAX_HEIGHT = 720
SLOT_SIZE = HEADER_SIZE + PREVIEW_MAX_WIDTH * PREVIEW_MAX_HEIGHT * 3
_WANT = struct.Struct("<H")
_WANT_OFFSET = 6
_SEQ = struct.Struct("<Q")
_SEQ_OFFSET = 8
_BODY = struct.Struct("<dIII")  # ts, width, height, stride
_BODY_OFFSET = 16
_HEADER = struct.Struct(HEADER_FORMAT)


class PreviewError(Exception):
    """Base class for preview slot errors."""


class PreviewSpaceError(PreviewError):
    """The file system holding the preview slot has too little free space."""


@dataclass(frozen=True)
class PreviewFrame:
    seq: int
    ts: float
    width: int
    height: int
    image: npt.NDArray[np.uint8]  # (height, width, 3) RGB, owned by the caller


def preview_size(src_width: int, src_height: int, max_width: int) -> tuple[int, int]:
    """Preview size for a source frame: at most *max_width* wide and within
    PREVIEW_MAX_WIDTH x PREVIEW_MAX_HEIGHT, never larger than the source, aspect ratio kept,
    even dimensions."""
    if src_width <= 0 or src_height <= 0:
        raise ValueError(f"bad source size {src_width}x{src_height}")
    scale = min(
        max_width / src_width, PREVIEW_MAX_WIDTH / src_width, PREVIEW_MAX_HEIGHT / src_height, 1.0
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
            _HEADER.pack_into(mm, 0, MAGIC, VERSION, 0, 0, 0.0, 0, 0, 0)
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
        want = _WANT.unpack_from(self._mm, _WANT_OFFSET)[0]
        return min(PREVIEW_MAX_WIDTH, max(16, want)) if want else self.max_width

    def offer(self, frame: av.VideoFrame, ts: float | None = None) -> bool:
        """Write *frame* if the rate limit allows; returns whether it was written."""
        if not self._limiter.accept(time.monotonic()):
            return False
        self.write_frame(frame, ts)
        return True

    def write_frame(self, frame: av.VideoFrame, ts: float | None = None) -> None:
        """Downscale *frame* to RGB24 (the only colour conversion in the worker) and publish it."""
        from av.video.reformatter import Interpolation, VideoReformatter

        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        width, height = preview_size(frame.width, frame.height, self.wanted_width())
        rgb = self._reformatter.reformat(
            frame, width=width, height=height, format="rgb24", interpolation=Interpolation.BILINEAR
        )
        plane = rgb.planes[0]
        src = np.frombuffer(plane, dtype=np.uint8)[: plane.line_size * height]
        self.write_rows(src.reshape(height, plane.line_size)[:, : width * 3], width, height, ts)

    def write_rows(
        self, rows: npt.NDArray[np.uint8], width: int, height: int, ts: float | None = None
    ) -> None:
        """Publish an RGB image given as (height, >= width*3) uint8 rows."""
        if not (0 < width <= PREVIEW_MAX_WIDTH and 0 < height <= PREVIEW_MAX_HEIGHT):
            raise PreviewError(
                f"preview size {width}x{height} exceeds {PREVIEW_MAX_WIDTH}x{PREVIEW_MAX_HEIGHT}"
            )
        stride = width * 3
        mm = self._mm
        seq = self.seq
        _SEQ.pack_into(mm, _SEQ_OFFSET, seq + 1)  # odd: writing
        dst = self._payload[: stride * height].reshape(height, stride)
        np.copyto(dst, rows[:, :stride])
        _BODY.pack_into(mm, _BODY_OFFSET, time.time() if ts is None else ts, width, height, stride)
        self.seq = seq + 2
        _SEQ.pack_into(mm, _SEQ_OFFSET, self.seq)  # even: complete
        self.frames_written += 1

    def close(self) -> None:
        """Unmap (the file stays; the supervisor deletes it)."""
        if self._mm is not None and not self._mm.closed:
            self._payload = np.empty(0, np.uint8)
            try:
                self._mm.close()
            except BufferError:  # a view is still alive somewhere; the OS unmaps at exit
                pass


class PreviewReader:
    """Reader side (supervisor/UI). Cheap to create; ``read()`` never blocks for long.

    Returns ``None`` while the file does not exist, is not a preview slot, or no
    complete frame has been written yet.
    """

    def __init__(self, path: str | os.PathLike[str], *, retries: int = 50):
        self.path = Path(path)
        self.retries = retries
        self._mm: mmap.mmap | None = None
        self._ident: tuple[int, int] | None = None

    def _ensure(self) -> mmap.mmap | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._drop()
            return None
        ident = (st.st_dev, st.st_ino)
        if self._mm is not None and ident == self._ident:
            return self._mm
        self._drop()
        if st.st_size < SLOT_SIZE:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            self._mm = mmap.mmap(fd, SLOT_SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self._ident = ident
        return self._mm

    def _drop(self) -> None:
        if self._mm is not None:
            self._mm.close()
        self._mm = None
        self._ident = None

    def read(self) -> PreviewFrame | None:
        mm = self._ensure()
        if mm is None:
            return None
        magic, version, _r, _s, _ts, _w, _h, _st = _HEADER.unpack_from(mm, 0)
        if magic != MAGIC or version != VERSION:
            return None
        for attempt in range(self.retries):
            seq1 = _SEQ.unpack_from(mm, _SEQ_OFFSET)[0]
            if seq1 == 0:
                return None  # nothing written yet
            if seq1 & 1:
                time.sleep(0.0005 if attempt > 2 else 0)
                continue
            ts, width, height, stride = _BODY.unpack_from(mm, _BODY_OFFSET)
            if (
                not (0 < width <= PREVIEW_MAX_WIDTH and 0 < height <= PREVIEW_MAX_HEIGHT)
                or stride < width * 3
                or PAYLOAD_OFFSET + stride * height > SLOT_SIZE
            ):
                continue  # torn header; recheck seq
            raw = np.frombuffer(mm, dtype=np.uint8, count=stride * height, offset=PAYLOAD_OFFSET)
            image = raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()
            del raw
            seq2 = _SEQ.unpack_from(mm, _SEQ_OFFSET)[0]
            if seq1 == seq2:
                return PreviewFrame(seq=seq1, ts=ts, width=width, height=height, image=image)
        return None

    def requested_width(self) -> int:
        """The width readers asked for in the current file (0: none, or no file)."""
        mm = self._ensure()
        return 0 if mm is None else int(_WANT.unpack_from(mm, _WANT_OFFSET)[0])

    def request_width(self, width: int) -> bool:
        """Ask the worker for previews ``width`` pixels wide (capped at PREVIEW_MAX_WIDTH); False
        when there is no slot yet. A restarted worker makes a new file: ask again then."""
        width = max(0, min(PREVIEW_MAX_WIDTH, int(width)))
        if self._ensure() is None:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.pwrite(fd, _WANT.pack(width), _WANT_OFFSET)
        finally:
            os.close(fd)
        return True

    @property
    def seq(self) -> int:
        """The current sequence number (0 when nothing is there)."""
        mm = self._ensure()
        if mm is None:
            return 0
        return int(_SEQ.unpack_from(mm, _SEQ_OFFSET)[0])

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> PreviewReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
