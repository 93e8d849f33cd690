"""Motion scoring on synthetic luma grids and on real PyAV frames."""

from __future__ import annotations

import av
import numpy as np
import pytest

from app.worker.motion import (
    MotionConfig,
    MotionDetector,
    UnsupportedPixelFormatError,
    auto_step,
    luma_view,
    strided_luma,
)
from app.worker.ratelimit import RateLimiter

RNG = np.random.default_rng(1234)


def background(h: int = 90, w: int = 160) -> np.ndarray:
    return RNG.integers(40, 200, size=(h, w), dtype=np.uint8)


def with_noise(img: np.ndarray, amplitude: int = 8) -> np.ndarray:
    noise = RNG.integers(-amplitude, amplitude + 1, size=img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def test_static_scene_with_sensor_noise_scores_zero():
    det = MotionDetector(MotionConfig(warmup=5))
    bg = background()
    scores = [det.update(with_noise(bg)) for _ in range(40)]
    assert max(scores) == 0.0
    assert not det.active


def test_moving_square_scores_its_area_and_is_active():
    det = MotionDetector(MotionConfig(warmup=5, threshold=0.02))
    bg = np.full((90, 160), 60, np.uint8)
    for _ in range(10):
        det.update(bg)
    scores = []
    for x in range(0, 100, 10):
        frame = bg.copy()
        frame[30:50, x : x + 20] = 230  # 400 of 14400 cells ≈ 2.8 %
        scores.append(det.update(frame))
    assert all(0.02 <= s <= 0.06 for s in scores), scores
    assert det.active


def test_warmup_frames_never_score():
    det = MotionDetector(MotionConfig(warmup=10))
    frames = [background() for _ in range(10)]  # every frame different
    assert [det.update(f) for f in frames] == [0.0] * 10
    assert det.warming_up
    det.update(background())
    assert not det.warming_up


def test_whole_frame_change_is_suppressed_and_resets_the_background():
    det = MotionDetector(MotionConfig(warmup=3, scene_change=0.8))
    dark = np.full((90, 160), 40, np.uint8)
    for _ in range(6):
        det.update(dark)
    bright = np.full((90, 160), 200, np.uint8)  # lights on: everything changes
    assert det.update(bright) == 0.0
    assert det.resets == 1
    # The background is now the bright scene: no lingering "motion".
    assert det.update(bright) == 0.0
    assert det.resets == 1


def test_threshold_controls_active():
    det = MotionDetector(MotionConfig(warmup=1, threshold=0.5))
    bg = np.zeros((10, 10), np.uint8)
    det.update(bg)
    det.update(bg)
    frame = bg.copy()
    frame[:3] = 255  # 30 % changed
    assert det.update(frame) == pytest.approx(0.3)
    assert not det.active


def test_strided_luma_is_a_view_that_skips_row_padding():
    width, height, line_size = 12, 4, 16
    buf = bytearray(line_size * height)
    arr = np.frombuffer(buf, np.uint8).reshape(height, line_size)
    arr[:, :width] = np.arange(width, dtype=np.uint8)
    arr[:, width:] = 255  # padding must never be read
    grid = strided_luma(buf, width, height, line_size, step=2)
    assert grid.shape == (2, 6)
    assert grid.tolist() == [[0, 2, 4, 6, 8, 10]] * 2
    assert np.shares_memory(grid, arr)  # no copy


def test_luma_view_of_a_real_yuv420p_frame_is_a_view_of_plane_0():
    frame = av.VideoFrame(320, 180, "yuv420p")
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(180, plane.line_size)
    y[:, :320] = np.arange(320, dtype=np.uint16).astype(np.uint8)
    view = luma_view(frame, 8)
    assert view.shape == (23, 40)
    assert view[0, :4].tolist() == [0, 8, 16, 24]
    assert np.shares_memory(view, y)


def test_luma_view_of_packed_formats_picks_y_or_green():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 123, 200
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    assert set(luma_view(frame, 4).ravel().tolist()) == {123}
    yuyv = frame.reformat(format="yuyv422")
    y_expected = frame.reformat(format="yuv422p").to_ndarray()[0, 0]
    assert set(luma_view(yuyv, 2).ravel().tolist()) == {int(y_expected)}


def test_unsupported_pixel_format_is_reported():
    frame = av.VideoFrame(16, 16, "yuv420p10le")
    with pytest.raises(UnsupportedPixelFormatError, match="yuv420p10le"):
        luma_view(frame, 2)


def test_detector_feeds_on_real_frames_from_lavfi():
    def score(pattern: str) -> float:
        det = MotionDetector(MotionConfig(warmup=5))
        peak = 0.0
        with av.open(f"{pattern}=size=320x180:rate=15,format=yuv420p", format="lavfi") as c:
            for i, frame in enumerate(c.decode(video=0)):
                peak = max(peak, det.feed(frame))
                if i >= 30:
                    break
        return peak

    assert score("testsrc2") > 0.02
    assert score("smptebars") == 0.0


def test_auto_step_targets_an_80_cell_wide_grid():
    assert auto_step(640) == 8
    assert auto_step(1280) == 16
    assert auto_step(1920) == 24
    assert auto_step(100) == 2


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"warmup": -1}, {"alpha": 0}, {"step": 0}])
def test_bad_motion_config(bad):
    with pytest.raises(ValueError):
        MotionConfig(**bad)


def test_rate_limiter_caps_a_jittery_30fps_stream_at_15():
    limiter = RateLimiter(15)
    jitter = RNG.uniform(-0.004, 0.004, size=300)
    accepted = sum(limiter.accept(i / 30 + j) for i, j in enumerate(jitter))
    assert 148 <= accepted <= 152  # 10 s of frames


def test_rate_limiter_does_not_burst_after_a_pause_and_handles_zero_and_none():
    limiter = RateLimiter(10)
    assert limiter.accept(0.0)
    assert not limiter.accept(0.01)
    # 5 s pause, then frames every 10 ms: only one per 100 ms again.
    accepted = sum(limiter.accept(5.0 + i * 0.01) for i in range(100))
    assert 10 <= accepted <= 11
    assert not RateLimiter(0).accept(1.0)
    assert all(RateLimiter(None).accept(t / 1000) for t in range(10))
