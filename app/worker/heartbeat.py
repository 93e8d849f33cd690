"""Shared capture counters and the heartbeat JSON line built from them.

Kept free of PyAV so the worker can announce itself before the decoder loads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, Any, Literal

__all__ = ["CaptureStats", "HeartbeatBuilder", "HeartbeatWriter", "SourceState"]

SourceState = Literal["opening", "up", "down"]


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
    """Builds the contract's heartbeat dict; ``fps`` is analysed frames per second
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
        if self._last_mono is not None and mono > self._last_mono:
            fps = (processed - self._last_processed) / (mono - self._last_mono)
        self._last_mono, self._last_processed = mono, processed
        motion, active = stats.take_motion()
        last = stats.last_frame
        return {
            "type": "heartbeat",
            "ts": time.time(),
            "camera_id": self.camera_id,
            "fps": round(fps, 3),
            "decoded": stats.decoded,
            "dropped": stats.dropped,
            "motion": round(min(max(motion, 0.0), 1.0), 5),
            "motion_active": bool(active),
            "source": stats.source,
            "last_frame_age": None if last is None else round(max(0.0, mono - last), 4),
            "width": stats.width,
            "height": stats.height,
            "codec": stats.codec,
            "preview_seq": int(self.preview_seq()),
            "reconnects": stats.reconnects,
            "error": stats.error,
        }


class HeartbeatWriter:
    """Writes one JSON object per line to *stream* and flushes it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, message: dict[str, Any]) -> None:
        self.stream.write(json.dumps(message, separators=(",", ":")) + "\n")
        self.stream.flush()
