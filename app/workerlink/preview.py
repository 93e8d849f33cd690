"""The preview slot's reader (the station's side; the worker writes it with
``app.worker.preview.PreviewWriter``). The layout is in ``app.workerlink.protocol``.

``PreviewReader.read()`` copies a consistent frame out (retrying while the writer is
mid-frame); ``request_width`` (or ``poll``) tells the writer the box a tile draws the frame in.

Previews on demand: the worker converts frames only while a reader wants them. ``read()`` and
``mark_interest()`` push the slot's ``wanted_until`` deadline ``INTEREST_HOLD`` seconds ahead, so
a reader that keeps reading (a shown tile polling at 10 Hz) keeps its frames coming and one that
stops (a hidden or closed tile, a closed window) stops costing the worker anything within the hold.
A poller that reads only when ``seq`` moved must call ``mark_interest()`` on every poll: with
nobody interested, ``seq`` does not move.

The reader maps the slot read-write (it writes only the request fields, and only into a
file whose magic and version it checked); without write permission it still reads, but cannot
ask for frames.
Pure Python + numpy.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.workerlink.protocol import (
    BODY,
    BODY_OFFSET,
    HEADER,
    INTEREST_HOLD,
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

__all__ = ["INTEREST_HOLD", "PREVIEW_MAX_HEIGHT", "PREVIEW_MAX_WIDTH", "PreviewFrame", "PreviewReader"]


#: how often a wall tile's reader looks whether its slot's file was replaced (a restarted worker
#: makes a new one): a tile polls ten times a second, and one ``stat`` a poll was a third of a poll
RECHECK_S = 1.0


@dataclass(frozen=True)
class PreviewFrame:
    seq: int
    ts: float
    width: int
    height: int
    #: (height, width, 4) BGRX (blue, green, red, 255: Qt's QImage RGB32), owned by the caller
    image: npt.NDArray[np.uint8]

    def rgb(self) -> npt.NDArray[np.uint8]:
        """The frame as (height, width, 3) RGB (a copy)."""
        return np.ascontiguousarray(self.image[:, :, 2::-1])


class PreviewReader:
    """Reader side (supervisor/UI). Cheap to create; ``read()`` never blocks for long.

    Returns ``None`` while the file does not exist, is not a preview slot, or no
    complete frame has been written yet.
    """

    def __init__(self, path: str | os.PathLike[str], *, retries: int = 50, recheck_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        """``recheck_s``: while a mapping is held, look whether the file was replaced at most this
        often (0: at every call; a wall tile uses RECHECK_S)."""
        self.path = Path(path)
        self.retries = retries
        self.recheck_s = recheck_s
        self._clock = clock
        self._mm: mmap.mmap | None = None
        self._ident: tuple[int, int] | None = None
        self._writable = False
        self._checked = 0.0  # time.monotonic() of the last look at the file
        self._valid: mmap.mmap | None = None  # the mapping whose magic and version were checked
        self._asked: tuple[mmap.mmap, int, int] | None = None  # what ``poll`` last asked this mapping for

    def _ensure(self) -> mmap.mmap | None:
        """The mapped slot (the file is looked at, one ``stat``, at most every ``recheck_s``
        seconds while a mapping is held)."""
        if self.recheck_s > 0 and self._mm is not None:
            now = self._clock()
            if now - self._checked < self.recheck_s:
                return self._mm
            self._checked = now
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
        writable = True
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            except PermissionError:
                writable = False
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self._mm = mmap.mmap(fd, SLOT_SIZE, mmap.MAP_SHARED, prot)
        finally:
            os.close(fd)
        self._ident = ident
        self._writable = writable
        self._checked = self._clock()
        return self._mm

    def _drop(self) -> None:
        if self._mm is not None:
            self._mm.close()
        self._mm = None
        self._valid = None
        self._asked = None
        self._ident = None
        self._writable = False

    def _slot(self) -> mmap.mmap | None:
        """The mapped slot when it is one this reader understands (magic and version checked once
        per mapping: the writer writes them before the file takes its name, and never again)."""
        mm = self._ensure()
        if mm is None:
            return None
        if mm is self._valid:
            return mm
        magic, version = HEADER.unpack_from(mm, 0)[:2]
        if magic == MAGIC and version == VERSION:
            self._valid = mm
            return mm
        return None

    def mark_interest(self, hold: float = INTEREST_HOLD, now_ns: int | None = None) -> bool:
        """Tell the worker a reader wants frames for the next *hold* seconds (the deadline only
        moves ahead: another reader's longer hold stays). False when there is no slot of this
        version yet, or it is not writable. Cheap: no system call, and the header is written
        only when the deadline would move by more than a quarter of the hold."""
        mm = self._slot()
        if mm is None or not self._writable:
            return False
        self._mark(mm, time.monotonic_ns() if now_ns is None else now_ns, hold)
        return True

    def interested_until(self) -> int:
        """The slot's ``wanted_until`` (CLOCK_MONOTONIC ns; 0: nobody asked, or no slot)."""
        mm = self._slot()
        return 0 if mm is None else int(WANTED_UNTIL.unpack_from(mm, WANTED_UNTIL_OFFSET)[0])

    def read(self) -> PreviewFrame | None:
        """The latest complete frame (None: no slot, or nothing written yet). Marks interest,
        so the worker keeps publishing while this is called."""
        mm = self._slot()
        if mm is None:
            return None
        self._mark(mm, time.monotonic_ns())
        return self._copy_frame(mm)

    def poll(self, last_seq: int, width: int = 0, height: int = 0) -> PreviewFrame | None:
        """One poll of a tile in one look at the slot: ask for a frame that fits ``width`` x
        ``height`` (when that is not what the slot holds; width 0: ask nothing, height 0: any
        height), mark interest, and copy the frame out only when ``seq`` moved on from
        ``last_seq``. None when nothing new (or no slot)."""
        mm = self._slot()
        if mm is None:
            return None
        if self._writable:
            if width and self._asked != (mm, width, height):  # asked again only for a new box or slot
                self._ask(mm, width, height)
                self._asked = (mm, width, height)
            self._mark(mm, time.monotonic_ns())
        seq = SEQ.unpack_from(mm, SEQ_OFFSET)[0]
        if seq == last_seq or seq == 0 or seq & 1:  # nothing new, nothing yet, or mid-frame: next poll
            return None
        frame = self._copy_frame(mm)
        return frame if frame is not None and frame.seq != last_seq else None

    def _mark(self, mm: mmap.mmap, now: int, hold: float = INTEREST_HOLD) -> None:
        if not self._writable:
            return
        hold_ns = int(hold * 1e9)
        until = now + hold_ns
        if WANTED_UNTIL.unpack_from(mm, WANTED_UNTIL_OFFSET)[0] < until - hold_ns // 4:
            WANTED_UNTIL.pack_into(mm, WANTED_UNTIL_OFFSET, until)

    def _copy_frame(self, mm: mmap.mmap) -> PreviewFrame | None:
        for attempt in range(self.retries):
            seq1 = SEQ.unpack_from(mm, SEQ_OFFSET)[0]
            if seq1 == 0:
                return None  # nothing written yet
            if seq1 & 1:
                time.sleep(0.0005 if attempt > 2 else 0)
                continue
            ts, width, height, stride = BODY.unpack_from(mm, BODY_OFFSET)
            if (
                not (0 < width <= PREVIEW_MAX_WIDTH and 0 < height <= PREVIEW_MAX_HEIGHT)
                or stride < width * PREVIEW_PIXEL_BYTES
                or PAYLOAD_OFFSET + stride * height > SLOT_SIZE
            ):
                continue  # torn header; recheck seq
            raw = np.frombuffer(mm, dtype=np.uint8, count=stride * height, offset=PAYLOAD_OFFSET)
            row = width * PREVIEW_PIXEL_BYTES
            image = raw.reshape(height, stride)[:, :row].reshape(height, width, PREVIEW_PIXEL_BYTES).copy()
            del raw
            seq2 = SEQ.unpack_from(mm, SEQ_OFFSET)[0]
            if seq1 == seq2:
                return PreviewFrame(seq=seq1, ts=ts, width=width, height=height, image=image)
        return None

    def requested_width(self) -> int:
        """The width readers asked for in the current file (0: none, or no file)."""
        mm = self._slot()
        return 0 if mm is None else int(WANT.unpack_from(mm, WANT_OFFSET)[0])

    def requested_height(self) -> int:
        """The height of the box readers asked for (0: any height, or no file)."""
        mm = self._slot()
        return 0 if mm is None else int(WANT_HEIGHT.unpack_from(mm, WANT_HEIGHT_OFFSET)[0])

    def request_width(self, width: int, height: int = 0) -> bool:
        """Ask the worker for previews ``width`` pixels wide (capped at PREVIEW_MAX_WIDTH), and
        at most ``height`` tall when given; False when there is no slot yet. A restarted worker
        makes a new file: ask again then."""
        mm = self._slot()
        if mm is None or not self._writable:
            return False
        self._ask(mm, width, height)
        self._asked = None
        return True

    @staticmethod
    def _ask(mm: mmap.mmap, width: int, height: int) -> None:
        """Write the box asked for (the fields are written only when they change: a changed box,
        or a restarted worker's new slot). The height first: a writer between the two writes
        sees the old width with the new height at worst, for one frame."""
        width = max(0, min(PREVIEW_MAX_WIDTH, int(width)))
        height = max(0, min(PREVIEW_MAX_HEIGHT, int(height)))
        if WANT_HEIGHT.unpack_from(mm, WANT_HEIGHT_OFFSET)[0] != height:
            WANT_HEIGHT.pack_into(mm, WANT_HEIGHT_OFFSET, height)
        if WANT.unpack_from(mm, WANT_OFFSET)[0] != width:
            WANT.pack_into(mm, WANT_OFFSET, width)

    @property
    def seq(self) -> int:
        """The current sequence number (0 when nothing is there)."""
        mm = self._ensure()
        if mm is None:
            return 0
        return int(SEQ.unpack_from(mm, SEQ_OFFSET)[0])

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> PreviewReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
