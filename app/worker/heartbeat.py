"""Shared capture counters and the heartbeat JSON line built from them.

Kept free of PyAV so the worker can announce itself before the decoder loads.
"""

from __future__ import annotations

import json
import logging
import os
import select
import stat
import time
from collections.abc import Callable
from typing import Any

from app.workerlink.protocol import MAX_ERROR_CHARS, SourceState, heartbeat_message

__all__ = [
    "CaptureStats",
    "HeartbeatBuilder",
    "HeartbeatWriter",
    "LineSink",
    "SinkLogHandler",
    "SourceState",
]


class CaptureStats:
    """Counters written by the capture thread and read by the heartbeat thread.

    Plain attributes: each read/write is atomic under the GIL, and a heartbeat
    that mixes values from two consecutive frames is harmless.
    """

    def __init__(self) -> None:
        self.decoded = 0  # frames decoded (total, including dropped ones)
        self.dropped = 0  # decoded frames skipped by the fps cap (total)
        self.processed = 0  # frames analysed (total)
        self.corrupt = 0  # packets the decoder rejected
        self.source: SourceState = "opening"
        self.error: str | None = None
        self.last_frame: float | None = None  # time.monotonic() of the last decoded frame
        self.first_frame: float | None = None  # time.monotonic() of the first decoded frame
        self.width: int | None = None
        self.height: int | None = None
        self.codec: str | None = None
        self.reconnects = 0  # successful opens after the source was down
        self.opens = 0
        self.motion_peak = 0.0  # highest score since the last take_motion()
        self.motion_active = False  # any active frame since the last take_motion()
        self.stream_fps: float | None = None  # set by the capture loop: fps from stream timestamps
        self.last_processed: float | None = None  # time.monotonic() of the last analysed frame

    def note_motion(self, score: float, active: bool) -> None:
        if score > self.motion_peak:
            self.motion_peak = score
        if active:
            self.motion_active = True

    def take_motion(self) -> tuple[float, bool]:
        """The peak score and activity since the previous call; resets both."""
        peak, active = self.motion_peak, self.motion_active
        self.motion_peak, self.motion_active = 0.0, False
        return peak, active


class HeartbeatBuilder:
    """Builds the heartbeat of the worker protocol (``app.workerlink.protocol``); ``fps`` is analysed frames per second
    since the previous heartbeat (after the fps cap)."""

    def __init__(
        self, camera_id: int, stats: CaptureStats, preview_seq: Callable[[], int] = lambda: 0
    ) -> None:
        self.camera_id = camera_id
        self.stats = stats
        self.preview_seq = preview_seq
        self._last_mono: float | None = None
        self._last_processed = 0

    def build(self) -> dict[str, Any]:
        stats = self.stats
        mono = time.monotonic()
        processed = stats.processed
        fps = 0.0
        if stats.stream_fps is not None:  # the capture loop measures from the stream's timestamps
            seen = stats.last_processed
            quiet = max(2.0, 3.0 / stats.stream_fps) if stats.stream_fps > 0 else 2.0
            fresh = seen is not None and mono - seen <= quiet and stats.source == "up"
            fps = stats.stream_fps if fresh else 0.0
        elif self._last_mono is not None and mono > self._last_mono:
            fps = (processed - self._last_processed) / (mono - self._last_mono)
        self._last_mono, self._last_processed = mono, processed
        motion, active = stats.take_motion()
        last = stats.last_frame
        return heartbeat_message(
            ts=time.time(),
            camera_id=self.camera_id,
            fps=round(fps, 3),
            decoded=stats.decoded,
            dropped=stats.dropped,
            motion=round(min(max(motion, 0.0), 1.0), 5),
            motion_active=bool(active),
            source=stats.source,
            last_frame_age=None if last is None else round(max(0.0, mono - last), 4),
            width=stats.width,
            height=stats.height,
            codec=stats.codec,
            preview_seq=int(self.preview_seq()),
            reconnects=stats.reconnects,
            error=stats.error,
        )


class LineSink:
    """Writes whole lines to a file descriptor without ever blocking on a pipe.

    When the descriptor is a pipe it is switched to non-blocking mode and a line
    that does not fit (the reader is not keeping up, e.g. a hung supervisor) is
    dropped and counted instead of blocking the worker, so it still stops
    promptly on SIGTERM. Lines up to ``select.PIPE_BUF`` bytes are written
    atomically; longer text is written in line-aligned chunks and the rest of it
    is dropped if the pipe fills up. Other descriptors (a file, a terminal) are
    written normally. ``BrokenPipeError`` propagates: the reader is gone.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.dropped = 0
        self.is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        if self.is_pipe:
            os.set_blocking(fd, False)

    def write(self, text: str) -> bool:
        """Write *text* (one or more lines, newline added if missing); False if dropped."""
        data = text.encode("utf-8", "replace")
        if not data.endswith(b"\n"):
            data += b"\n"
        if not self.is_pipe:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            return True
        for chunk in _chunks(data, select.PIPE_BUF):
            try:
                os.write(self.fd, chunk)  # atomic: all or EAGAIN
            except BlockingIOError:
                self.dropped += 1
                return False
        return True


def _chunks(data: bytes, limit: int) -> list[bytes]:
    if len(data) <= limit:
        return [data]
    out: list[bytes] = []
    while data:
        cut = data.rfind(b"\n", 0, limit) + 1 or min(limit, len(data))
        out.append(data[:cut])
        data = data[cut:]
    return out


class HeartbeatWriter:
    """Writes one compact JSON object per line (see ``LineSink`` for back-pressure)."""

    MAX_ERROR = MAX_ERROR_CHARS  # keeps every heartbeat well below PIPE_BUF, so it is written whole

    def __init__(self, sink: LineSink) -> None:
        self.sink = sink

    def write(self, message: dict[str, Any]) -> bool:
        error = message.get("error")
        if isinstance(error, str) and len(error) > self.MAX_ERROR:
            message = {**message, "error": error[: self.MAX_ERROR - 1] + "…"}
        return self.sink.write(json.dumps(message, separators=(",", ":"), ensure_ascii=False))


class SinkLogHandler(logging.Handler):
    """A logging handler writing ``LEVEL message`` lines to a ``LineSink``."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(self.format(record))
        except BrokenPipeError:
            pass  # nobody reads our log any more
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
