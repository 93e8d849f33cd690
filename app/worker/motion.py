"""Motion score from the luma plane, without colour conversion or full-frame copies.

The decoder's Y plane is viewed in place (``np.frombuffer`` over the plane's
buffer, reshaped with its ``line_size`` stride), downsampled by strided slicing
(every ``step``-th pixel), and compared with a small float32 running average.
The score is the fraction of grid cells whose luma moved by more than
``pixel_delta``; a frame where almost everything changed (a lighting change or
scene cut) scores 0 and resets the average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    import av

__all__ = [
    "MotionConfig",
    "MotionDetector",
    "MotionError",
    "GRID_WIDTH",
    "UnsupportedPixelFormatError",
    "luma_view",
    "auto_step",
]

U8Array = npt.NDArray[np.uint8]

# Pixel formats whose plane 0 holds one luma byte per pixel.
_PLANAR_LUMA = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
    "yuvj440p", "yuv411p", "yuvj411p", "yuv410p", "nv12", "nv21", "nv16", "nv24", "nv42",
    "gray", "yuva420p", "yuva422p", "yuva444p",
}  # fmt: skip
# Packed formats: (byte offset of the sample we use, bytes per pixel). For packed
# YUV that is the Y sample; for packed RGB the green channel stands in for luma.
_PACKED = {
    "yuyv422": (0, 2), "yvyu422": (0, 2), "uyvy422": (1, 2),
    "rgb24": (1, 3), "bgr24": (1, 3),
    "rgba": (1, 4), "bgra": (1, 4), "rgb0": (1, 4), "bgr0": (1, 4),
    "argb": (2, 4), "abgr": (2, 4), "0rgb": (2, 4), "0bgr": (2, 4),
}  # fmt: skip


class MotionError(Exception):
    """Base class for motion analysis errors."""


class UnsupportedPixelFormatError(MotionError):
    """The frame's pixel format has no 8-bit luma (or green) sample we can view in place."""


GRID_WIDTH = 80  # cells across the frame: 640 px → every 8th pixel, 1280 px → every 16th


def auto_step(width: int) -> int:
    """Sampling step that gives a grid about ``GRID_WIDTH`` cells wide (at least every 2nd pixel).

    About 80x45 cells keeps the per-frame numpy work near 10 µs at any resolution,
    while a person at 10 m still covers many cells."""
    return max(2, round(width / GRID_WIDTH))


def luma_view(frame: av.VideoFrame, step: int) -> U8Array:
    """A strided uint8 view (no copy) of every *step*-th luma sample of *frame*.

    Raises ``UnsupportedPixelFormatError`` for formats without an 8-bit luma or
    green sample in plane 0 (e.g. 10-bit or palette formats).
    """
    name = frame.format.name
    plane = frame.planes[0]
    if name in _PLANAR_LUMA:
        offset, bpp = 0, 1
    elif name in _PACKED:
        offset, bpp = _PACKED[name]
    else:
        raise UnsupportedPixelFormatError(
            f"pixel format {name!r} is not supported for motion analysis"
        )
    return strided_luma(plane, frame.width, frame.height, plane.line_size, step, offset, bpp)


def strided_luma(
    buffer: Any, width: int, height: int, line_size: int, step: int, offset: int = 0, bpp: int = 1
) -> U8Array:
    """View *buffer* (rows of *line_size* bytes) as a (height/step, width/step) grid."""
    raw = np.frombuffer(buffer, dtype=np.uint8)
    rows = raw[: line_size * height].reshape(height, line_size)
    return rows[::step, offset : width * bpp : step * bpp]


@dataclass(frozen=True)
class MotionConfig:
    threshold: float = 0.02  # score at or above which motion is "active"
    warmup: int = 10  # frames used to build the background before scoring
    pixel_delta: float = 25.0  # luma change (0-255) that marks a cell as changed
    alpha: float = 0.05  # running-average update rate once warmed up
    scene_change: float = 0.8  # above this changed fraction: lighting change/cut → 0 and reset
    step: int | None = None  # sampling step; None → auto_step(width)

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"motion threshold must be within [0, 1], got {self.threshold}")
        if self.warmup < 0:
            raise ValueError(f"motion warm-up must be >= 0 frames, got {self.warmup}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"motion alpha must be within (0, 1], got {self.alpha}")
        if not 0.0 < self.scene_change <= 1.0:
            raise ValueError(
                f"scene-change fraction must be within (0, 1], got {self.scene_change}"
            )
        if self.step is not None and self.step < 1:
            raise ValueError(f"motion sampling step must be >= 1, got {self.step}")


class MotionDetector:
    """Running-average frame differencing on a downsampled luma grid.

    ``update(grid)`` takes a uint8 2-D array (usually a strided view from
    ``luma_view``) and returns the motion score in [0, 1]. ``feed(frame)`` does
    the view for a PyAV frame. Work per frame is a handful of numpy operations on
    the small grid, with preallocated buffers.
    """

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._avg: npt.NDArray[np.float32] | None = None
        self._cur: npt.NDArray[np.float32] | None = None
        self._diff: npt.NDArray[np.float32] | None = None
        self._tmp: npt.NDArray[np.float32] | None = None
        self._mask: npt.NDArray[np.bool_] | None = None
        self._seen = 0  # frames since the last reset
        self._step: int | None = self.config.step
        self.score = 0.0
        self.resets = 0  # scene changes suppressed

    @property
    def warming_up(self) -> bool:
        return self._seen <= self.config.warmup

    @property
    def active(self) -> bool:
        return self.score >= self.config.threshold and self.score > 0.0

    def reset(self) -> None:
        """Forget the background (e.g. after a reconnect); warm up again."""
        self._avg = None
        self._seen = 0
        self.score = 0.0

    def feed(self, frame: av.VideoFrame) -> float:
        if self._step is None:
            self._step = auto_step(frame.width)
        return self.update(luma_view(frame, self._step))

    def update(self, grid: U8Array) -> float:
        cfg = self.config
        if self._avg is None or self._avg.shape != grid.shape:
            self._avg = grid.astype(np.float32)
            self._cur = np.empty(grid.shape, np.float32)
            self._diff = np.empty(grid.shape, np.float32)
            self._tmp = np.empty(grid.shape, np.float32)
            self._mask = np.empty(grid.shape, np.bool_)
            self._seen = 1
            self.score = 0.0
            return 0.0
        cur, diff, avg, tmp, mask = self._cur, self._diff, self._avg, self._tmp, self._mask
        assert cur is not None and diff is not None and tmp is not None and mask is not None
        # All in preallocated buffers: no allocation per frame.
        np.copyto(cur, grid, casting="unsafe")  # uint8 → float32 on the small grid
        np.subtract(cur, avg, out=diff)
        self._seen += 1
        if self._seen <= cfg.warmup:
            # Warm-up: the background is the plain mean of the frames seen so far.
            np.multiply(diff, 1.0 / self._seen, out=tmp)
            np.add(avg, tmp, out=avg)
            self.score = 0.0
            return 0.0
        np.multiply(diff, cfg.alpha, out=tmp)
        np.add(avg, tmp, out=avg)
        np.abs(diff, out=diff)
        np.greater(diff, cfg.pixel_delta, out=mask)
        changed = np.count_nonzero(mask) / mask.size
        if changed > cfg.scene_change:
            # Lighting change or scene cut: not motion. Start over from this frame.
            np.copyto(avg, cur)
            self.resets += 1
            self.score = 0.0
            return 0.0
        self.score = changed
        return changed
