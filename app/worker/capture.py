"""The decode loop: open the source with PyAV, decode, cap the rate, analyse, publish.

``Capture.run()`` runs on a daemon thread of the worker process. It keeps going
through source loss (reconnect with backoff 0.5 s doubling to 10 s) and returns
only when asked to stop or, for a non-looped file, at its end. Everything the
heartbeat needs is kept in ``CaptureStats``, written by the capture thread and
read by the heartbeat thread (plain attribute reads/writes under the GIL).

Per frame the Python work is: a few counters, a strided numpy view of the luma
plane for motion (no colour conversion, no full-frame copy) and, at most
``preview_fps`` times a second, one downscale to RGB for the preview slot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import av
import av.error

from app.worker.heartbeat import CaptureStats
from app.worker.motion import MotionDetector, MotionError
from app.worker.preview import PreviewWriter
from app.worker.ratelimit import RateLimiter
from app.worker.sources import SourceOpenError, SourceReadError, SourceSpec

if TYPE_CHECKING:  # pragma: no cover
    from app.worker.evidence import EvidenceDesk

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "Capture",
    "CaptureConfig",
    "CaptureConfigError",
    "CaptureError",
    "CaptureResult",
    "CaptureStats",
    "DecodeThreading",
    "FpsMeter",
    "codec_label",
    "decode_threading",
    "describe_av_error",
    "parse_decode_threading",
    "usable_cpus",
]

log = logging.getLogger("app.worker.capture")

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 10.0

CaptureResult = Literal["stopped", "eof"]


class CaptureError(Exception):
    """Base class for capture loop errors."""


class CaptureConfigError(CaptureError):
    """The source can never work as configured (e.g. a file that is not a video)."""


@dataclass(frozen=True)
class DecodeThreading:
    """How the decoder threads: FFmpeg's thread type and count (0: FFmpeg picks, cores + 1);
    ``None`` for both leaves PyAV's own default (SLICE, count 0)."""

    thread_type: Literal["NONE", "SLICE", "FRAME", "AUTO"] | None
    thread_count: int | None = None

    def __str__(self) -> str:
        if self.thread_type is None:
            return "default"
        return self.thread_type if self.thread_count is None else f"{self.thread_type}:{self.thread_count}"

    def apply(self, stream: av.video.stream.VideoStream) -> None:
        """Set it on *stream* before its first packet is decoded (the codec opens then)."""
        if self.thread_type is not None:
            stream.thread_type = self.thread_type
        if self.thread_count is not None:
            stream.codec_context.thread_count = self.thread_count


def usable_cpus() -> int:
    """The cores this process may run on (a cpuset or ``taskset`` counts), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def decode_threading(cpu_count: int | None = None) -> DecodeThreading:
    """The decode threading for a box with *cpu_count* cores (default ``usable_cpus()``).

    Chosen by measurement (``tests/bench/bench_worker.py``, docs/operations.md "Decode
    threading"): on one core there is nothing to run in parallel: NONE, SLICE:1 and FRAME:1
    decode alike and a second thread only costs, so NONE. With two or more,
    FRAME threading with one thread per core decodes a 720p30 H.264 clip fastest, whether the
    clip has one slice per frame or several (SLICE, PyAV's default, only splits the work of a
    multi-slice frame), at about the same CPU per frame; AUTO adds slice threads on top and
    FFmpeg's own count (cores + 1) adds a thread that only costs memory. More than 4 threads buy
    nothing at the frame rates of a camera and cost a decoder context (and latency: a frame
    thread holds one frame) each.
    """
    n = usable_cpus() if cpu_count is None else cpu_count
    if not n or n <= 1:
        return DecodeThreading("NONE", 1)
    return DecodeThreading("FRAME", min(n, 4))


def parse_decode_threading(text: str) -> DecodeThreading:
    """``TYPE[:COUNT]`` (NONE, SLICE, FRAME, AUTO; COUNT >= 0), ``default`` (PyAV's) or ``box``
    (``decode_threading()``)."""
    text = text.strip()
    if text.lower() == "box":
        return decode_threading()
    if text.lower() == "default":
        return DecodeThreading(None)
    kind, _, count = text.partition(":")
    kind = kind.upper()
    if kind not in ("NONE", "SLICE", "FRAME", "AUTO"):
        raise ValueError(f"unknown decode thread type {kind!r}")
    if count and (not count.isdigit() or int(count) > 64):
        raise ValueError(f"bad decode thread count {count!r}")
    return DecodeThreading(kind, int(count) if count else None)  # type: ignore[arg-type]


@dataclass
class CaptureConfig:
    max_fps: float | None = None  # None/0: no cap
    loop: bool = False  # restart files at their end
    pace: bool = True  # play files/test patterns at their own speed (False: as fast as possible)
    io_timeout: float = 5.0  # network read timeout (s)
    open_timeout: float = 10.0  # network open timeout (s)
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX
    threading: DecodeThreading | None = None  # None: decode_threading() for this box


class FpsMeter:
    """Frames per second from the stream's own timestamps over a steady window.

    Wall-clock counting reads bursts as speed: a 15 fps stream that delivers a
    second of buffered frames at once after start, or catches up after a busy
    moment, counted 26 or 111 fps. Here each analysed frame contributes its
    presentation time: the rate is (frames - 1) / span over the last ``window``
    seconds of *stream* time, and never more than ``ceiling`` (the source's
    nominal rate and the fps cap, when known). Timestamps that go back (a looped
    file) or jump ahead (a discontinuity) continue the clock instead of
    producing a spike: the meter keeps a continuous stream time (``clock``).
    """

    def __init__(self, window: float = 2.0, ceiling: float | None = None, gap: float = 2.0):
        self.window = window
        self.ceiling = ceiling
        self.gap = gap  # a forward jump larger than this is a discontinuity
        self._times: deque[float] = deque()
        self._offset = 0.0
        self._last_raw: float | None = None
        self._step = 0.0  # the last frame interval (stream time), to continue across jumps

    def reset(self) -> None:
        """The source was lost: forget the window (the clock stays continuous)."""
        self._times.clear()

    def clock(self, ts: float) -> float:
        """The continuous stream time of a frame whose timestamp is ``ts`` (seconds)."""
        last = self._last_raw
        if last is not None:
            delta = ts - last
            if delta < 0 or delta > self.gap:  # looped, or a jump: continue where we were
                step = self._step or (1.0 / self.ceiling if self.ceiling else 0.04)
                self._offset += last - ts + step
            elif delta > 0:
                self._step = delta
        self._last_raw = ts
        return ts + self._offset

    def note(self, t: float) -> float:
        """Count an analysed frame at continuous stream time ``t``; returns the current rate."""
        times = self._times
        times.append(t)
        while len(times) > 2 and t - times[0] > self.window:
            times.popleft()
        return self.rate()

    def rate(self) -> float:
        times = self._times
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        if span <= 0:
            return 0.0
        fps = (len(times) - 1) / span
        return min(fps, self.ceiling) if self.ceiling else fps


def _nominal_rate(stream: av.video.stream.VideoStream) -> float | None:
    """The source's declared frame rate, when it declares a sane one."""
    for rate in (stream.average_rate, stream.guessed_rate):
        try:
            value = float(rate) if rate else 0.0
        except (TypeError, ZeroDivisionError):
            value = 0.0
        if 1.0 <= value <= 240.0:
            return value
    return None


def codec_label(name: str) -> str:
    """The codec name to report: lavfi's in-memory frames are reported as raw video."""
    return "rawvideo" if name == "wrapped_avframe" else name


def describe_av_error(exc: BaseException, spec: SourceSpec) -> str:
    """A one-line error naming the source (password masked), without PyAV's raw filename."""
    if isinstance(exc, av.error.FFmpegError):
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, av.error.ExitError):
            reason = "timed out"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = str(exc) or type(exc).__name__
    return reason.replace(spec.url, spec.display)


class Capture:
    """Decode loop for one source. Call ``run()`` on its own thread; set *stop* to end it."""

    def __init__(
        self,
        spec: SourceSpec,
        config: CaptureConfig,
        stop: threading.Event,
        *,
        motion: MotionDetector | None = None,
        preview: PreviewWriter | None = None,
        stats: CaptureStats | None = None,
        evidence: EvidenceDesk | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.stop = stop
        self.motion = motion or MotionDetector()
        self.preview = preview
        self.stats = stats or CaptureStats()
        self.evidence = evidence  # packet ring and snapshot frame: sees every stream, packet and frame
        self._motion_ok = True
        self._announced = False
        self._cap = RateLimiter(config.max_fps) if config.max_fps else None
        self.fps = FpsMeter(window=max(2.0, 4.0 / config.max_fps) if config.max_fps else 2.0,
                            gap=max(2.0, 3.0 / config.max_fps) if config.max_fps else 2.0)
        self.stats.stream_fps = 0.0  # the heartbeat reports this meter's rate
        self._pace_base: float | None = None  # wall time of timestamp 0
        self._last_pts_time: float | None = None

    # -- public -------------------------------------------------------------

    def run(self) -> CaptureResult:
        """Capture until stopped (→ "stopped") or a non-looped file ends (→ "eof").

        Raises ``CaptureConfigError`` if a file source cannot be opened at all.
        """
        stats = self.stats
        backoff = self.config.backoff_initial
        while not self.stop.is_set():
            try:
                container = self._open()
            except SourceOpenError as exc:
                if self.spec.kind == "file" and stats.opens == 0:
                    raise CaptureConfigError(str(exc)) from None
                self._went_down(str(exc))
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.config.backoff_max)
                continue
            try:
                outcome, frames = self._play(container)
            finally:
                _close_quietly(container)
            if frames:
                backoff = self.config.backoff_initial
            if outcome == "stopped" or self.stop.is_set():
                break
            if outcome == "eof" and not self.spec.live:
                if self.config.loop:
                    if frames == 0:
                        # A file that decodes to nothing would spin: treat it as a failure.
                        self._went_down(
                            f"{self.spec.display}: no frames decoded before end of file"
                        )
                        if self.stop.wait(backoff):
                            break
                        backoff = min(backoff * 2, self.config.backoff_max)
                    log.debug("end of %s, looping", self.spec.display)
                    continue
                log.info(
                    "end of file %s: %d frames decoded, %d dropped",
                    self.spec.display,
                    stats.decoded,
                    stats.dropped,
                )
                return "eof"
            # Live stream ended, or a read error: the source is lost.
            reason = outcome if outcome != "eof" else "end of stream"
            self._went_down(f"source lost: {reason}")
            if self.stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.config.backoff_max)
        return "stopped"

    # -- internals ----------------------------------------------------------

    def _went_down(self, error: str) -> None:
        stats = self.stats
        if stats.source != "down" or stats.error != error:
            log.warning("source %s down: %s", self.spec.display, error)
        stats.source = "down"
        stats.error = error
        self.motion.reset()
        self.fps.reset()

    def _open(self) -> av.container.InputContainer:
        spec = self.spec
        timeout = (self.config.open_timeout, self.config.io_timeout) if spec.live else None
        if not self._announced:
            self._announced = True
            log.info("opening %s", spec.display)
        try:
            container = spec.open(timeout)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceOpenError(
                f"cannot open {spec.display}: {describe_av_error(exc, spec)}"
            ) from None
        if not container.streams.video:
            _close_quietly(container)
            raise SourceOpenError(f"{spec.display} has no video stream")
        stats = self.stats
        stream = container.streams.video[0]
        ctx = stream.codec_context
        stats.opens += 1
        if stats.source == "down":
            stats.reconnects += 1
            log.info("reconnected to %s (reconnect #%d)", spec.display, stats.reconnects)
        stats.codec = codec_label(ctx.name)
        stats.width = ctx.width or stats.width
        stats.height = ctx.height or stats.height
        stats.source = "up"
        stats.error = None
        if self.evidence is not None:
            self.evidence.stream_opened(stream)
        return container

    def _play(self, container: av.container.InputContainer) -> tuple[str, int]:
        """Decode until end/stop/error. Returns (outcome, frames decoded) where the
        outcome is "stopped", "eof" or an error message."""
        stream = container.streams.video[0]
        (self.config.threading or decode_threading()).apply(stream)
        self._pace_base = None
        ceilings = [r for r in (_nominal_rate(stream), self.config.max_fps) if r]
        self.fps.ceiling = min(ceilings) if ceilings else None
        frames = 0
        try:
            for frame in self._frames(container, stream):
                frames += 1
                if self._handle(frame):
                    return "stopped", frames
            return ("stopped" if self.stop.is_set() else "eof"), frames
        except (av.error.FFmpegError, OSError) as exc:
            return describe_av_error(exc, self.spec), frames
        except SourceReadError as exc:
            return str(exc), frames

    def _frames(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> Iterator[av.VideoFrame]:
        stats = self.stats
        # A live source that keeps sending packets that never decode (a corrupt or
        # undecodable stream) is as lost as a silent one: give up after io_timeout.
        watch = self.spec.live
        limit = self.config.io_timeout
        last_frame = time.monotonic()
        evidence = self.evidence
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            if evidence is not None:
                evidence.packet(packet)
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                stats.corrupt += 1  # damaged packet on a live stream: skip it
                frames = []
            if frames:
                last_frame = time.monotonic()
                yield from frames
            elif watch and time.monotonic() - last_frame > limit:
                raise SourceReadError(f"no decodable frame for {limit:g} s")

    def _handle(self, frame: av.VideoFrame) -> bool:
        """Process one decoded frame; returns True when the loop must stop."""
        stop = self.stop
        if self.config.pace and self.spec.paced and self._wait_for_pts(frame):
            return True
        now = time.monotonic()
        stats = self.stats
        stats.decoded += 1
        stats.last_frame = now
        if stats.first_frame is None:
            stats.first_frame = now
        if self.evidence is not None:
            self.evidence.frame(frame)
        if frame.width != stats.width or frame.height != stats.height:
            stats.width, stats.height = frame.width, frame.height
        # Stream time, not arrival time: a burst of buffered frames is not a higher rate.
        t = self.fps.clock(frame.time if frame.time is not None else now)
        if self._cap is not None and not self._cap.accept(t):
            stats.dropped += 1
            return stop.is_set()
        if self._motion_ok:
            try:
                score = self.motion.feed(frame)
            except MotionError as exc:
                log.warning("motion analysis disabled: %s", exc)
                self._motion_ok = False
            else:
                stats.note_motion(score, self.motion.active)
        if self.preview is not None:
            self.preview.offer(frame)
        stats.processed += 1
        stats.stream_fps = self.fps.note(t)
        stats.last_processed = now
        return stop.is_set()

    def _wait_for_pts(self, frame: av.VideoFrame) -> bool:
        """Sleep until *frame* is due (files and test patterns play in real time).
        Returns True if asked to stop while waiting."""
        t = frame.time
        if t is None:
            return False
        now = time.monotonic()
        if self._pace_base is None or self._last_pts_time is None or t < self._last_pts_time:
            self._pace_base = now - t
        self._last_pts_time = t
        delay = self._pace_base + t - now
        if delay > 2.0:  # timestamp jump: do not stall, start over from here
            self._pace_base = now - t
            return False
        if delay < -1.0:  # we fell behind (slow machine, pause): do not try to catch up
            self._pace_base = now - t
            return False
        if delay > 0.001:
            return self.stop.wait(delay)
        return False


def _close_quietly(container: av.container.InputContainer) -> None:
    try:
        container.close()
    except (av.error.FFmpegError, OSError) as exc:  # pragma: no cover - best effort
        log.debug("closing container: %s", exc)
