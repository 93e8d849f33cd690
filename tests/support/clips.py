"""Write short real H.264 clips with PyAV/libx264 for tests and benchmarks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

__all__ = ["write_clip"]


def write_clip(
    directory: str | Path,
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 2.0,
    fps: int = 15,
    pattern: str = "testsrc2",
    name: str | None = None,
    preset: str = "ultrafast",
    gop: int | None = None,
    tune: str | None = "zerolatency",
) -> Path:
    """Encode *seconds* of the lavfi *pattern* at *width*x*height*, *fps* into an
    H.264 MP4 inside *directory* and return its path. *gop*: frames from one keyframe to
    the next (default: one a second). *tune*: libx264's tune (``zerolatency``, the default,
    also cuts every frame into slices, one per encoder thread; None: one slice a frame)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"{pattern}-{width}x{height}-{fps}fps-{seconds:g}s.mp4")
    frames = max(1, round(seconds * fps))
    graph = f"{pattern}=size={width}x{height}:rate={fps},format=yuv420p"
    with av.open(graph, format="lavfi") as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"preset": preset, "g": str(gop or fps)}
        if tune:
            stream.options = {**stream.options, "tune": tune}
        if gop:
            stream.options = {**stream.options, "x264-params": "scenecut=0"}  # keyframes exactly every gop frames
        for index, frame in enumerate(src.decode(video=0)):
            if index >= frames:
                break
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            frame.pict_type = PictureType.NONE  # lavfi marks every frame I: let the encoder choose (the GOP)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
