"""The preview slot's reader (the station's side; the worker writes it with
``app.worker.preview.PreviewWriter``). The layout is in ``app.workerlink.protocol``.

``PreviewReader.read()`` copies a consistent frame out (retrying while the writer is
mid-frame); ``request_width`` tells the writer the width a tile draws at.
Pure Python + numpy.
"""

from __future__ import annotations

import mmap
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.workerlink.protocol import (
    BODY,
    BODY_OFFSET,
    HEADER,
    MAGIC,
    PAYLOAD_OFFSET,
    PREVIEW_MAX_HEIGHT,
    PREVIEW_MAX_WIDTH,
    SEQ,
    SEQ_OFFSET,
    SLOT_SIZE,
    VERSION,
    WANT,
    WANT_OFFSET,
)

__all__ = ["PREVIEW_MAX_HEIGHT", "PREVIEW_MAX_WIDTH", "PreviewFrame", "PreviewReader"]


@dataclass(frozen=True)
class PreviewFrame:
    seq: int
    ts: float
    width: int
    height: int
    image: npt.NDArray[np.uint8]  # (height, width, 3) RGB, owned by the caller


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
        magic, version, _r, _s, _ts, _w, _h, _st = HEADER.unpack_from(mm, 0)
        if magic != MAGIC or version != VERSION:
            return None
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
                or stride < width * 3
                or PAYLOAD_OFFSET + stride * height > SLOT_SIZE
            ):
                continue  # torn header; recheck seq
            raw = np.frombuffer(mm, dtype=np.uint8, count=stride * height, offset=PAYLOAD_OFFSET)
            image = raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()
            del raw
            seq2 = SEQ.unpack_from(mm, SEQ_OFFSET)[0]
            if seq1 == seq2:
                return PreviewFrame(seq=seq1, ts=ts, width=width, height=height, image=image)
        return None

    def requested_width(self) -> int:
        """The width readers asked for in the current file (0: none, or no file)."""
        mm = self._ensure()
        return 0 if mm is None else int(WANT.unpack_from(mm, WANT_OFFSET)[0])

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
            os.pwrite(fd, WANT.pack(width), WANT_OFFSET)
        finally:
            os.close(fd)
        return True

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
