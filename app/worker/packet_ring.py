"""The pre-roll: the last N seconds of the stream's packets in memory, and clips made from them.

``PacketRing`` keeps the newest packets of the video stream as they came from the
demuxer (references, no copy, no decode), grouped by GOP: it always starts at a
keyframe and drops whole GOPs from the front while the rest still covers the
pre-roll. A source whose keyframes are further apart than the pre-roll keeps its
last GOP, bounded by ``max_span`` seconds and ``max_bytes``; past either bound the
ring empties and waits for the next keyframe (the clip then says how much
pre-roll it really has).

``open_clip`` takes, under one lock, the packets of the pre-roll and a queue that
receives every later packet, so a clip misses and repeats nothing. ``write_clip``
remuxes those packets into an MP4 (a copy of each packet's bytes, never a decode),
under a temporary name renamed into place when complete.

A source whose codec MP4 cannot hold (lavfi's raw frames, say) is re-encoded by
``FrameEncoder`` (libx264 ultrafast, one thread) into the same ring, and its clips
say so (``reencoded``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.video.frame import PictureType

__all__ = [
    "MP4_CODECS",
    "ClipError",
    "ClipResult",
    "ClipSource",
    "FrameEncoder",
    "PacketRing",
    "part_path",
    "write_clip",
]

log = logging.getLogger("app.worker.packet_ring")

#: codecs the MP4 muxer takes as they are (everything else is re-encoded)
MP4_CODECS = frozenset({"h264", "hevc", "mpeg4", "av1", "vp9", "mjpeg"})
#: a clip's post-roll never waits longer than this past its length for packets
POST_ROLL_GRACE = 3.0


class ClipError(Exception):
    """A clip could not be written; the message says why (no file is left)."""


@dataclass
class _Entry:
    t: float  # stream time (s)
    packet: av.Packet[Any]
    size: int
    key: bool


@dataclass
class _Gop:
    start: float
    entries: list[_Entry] = field(default_factory=list)
    size: int = 0


@dataclass
class ClipSource:
    """What a clip is made of: the stream's parameters, the pre-roll and a live feed."""

    template: Any  # an av stream whose parameters the output copies
    packets: list[_Entry]
    feed: queue.SimpleQueue[_Entry | None]
    requested_at: float  # stream time of the request
    reencoded: bool
    codec: str
    note: str = ""


@dataclass(frozen=True)
class ClipResult:
    path: str
    bytes: int
    duration: float
    preroll: float
    packets: int
    codec: str
    reencoded: bool
    note: str


def part_path(dest: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``dest``."""
    return dest.with_name(dest.name + ".part")


class PacketRing:
    """The newest packets of one video stream, GOP-aligned (thread-safe)."""

    def __init__(self, seconds: float, *, max_bytes: int = 64 * 1024 * 1024,
                 max_span: float | None = None) -> None:
        self.seconds = float(seconds)
        self.max_bytes = int(max_bytes)
        self.max_span = float(max_span if max_span is not None else max(3 * self.seconds, self.seconds + 20))
        self._lock = threading.Lock()
        self._gops: deque[_Gop] = deque()
        self._bytes = 0
        self._template: Any = None
        self._holder: Any = None  # the in-memory container owning the template stream
        self._codec = ""
        self._reencoded = False
        self._listeners: list[queue.SimpleQueue[_Entry | None]] = []
        self._last_t: float | None = None
        self.waiting_since: float | None = None  # stream time since when no keyframe started the ring
        self.dropped_for_key = 0  # packets dropped because no keyframe came before them
        self.overflows = 0  # times the ring emptied because a GOP outgrew its bounds

    # -- the capture side ------------------------------------------------------------

    def reset(self, template_stream: Any, *, codec: str, reencoded: bool = False) -> None:
        """A new stream (a new open, a new encoder): forget the old packets; a clip in
        progress ends here."""
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(template_stream)
        extradata = template_stream.codec_context.extradata
        if extradata and not template.codec_context.extradata:
            template.codec_context.extradata = extradata  # an encoder's headers (SPS/PPS)
        with self._lock:
            self._gops.clear()
            self._bytes = 0
            old_holder = self._holder
            self._template, self._holder = template, holder
            self._codec, self._reencoded = codec, reencoded
            self._last_t = None
            self.waiting_since = None
            for q in self._listeners:
                q.put(None)
            self._listeners.clear()
        if old_holder is not None:
            _close_quietly(old_holder)

    def push(self, packet: av.Packet[Any]) -> None:
        """Keep one demuxed (or encoded) packet; called on the capture thread."""
        if not packet.size:
            return
        t = _packet_time(packet)
        if t is None:
            return
        entry = _Entry(t, packet, packet.size, bool(packet.is_keyframe))
        with self._lock:
            if self._template is None:
                return
            if self._last_t is not None and t < self._last_t - 1.0:
                # Timestamps went back (a looped file, a camera reboot): start over.
                self._gops.clear()
                self._bytes = 0
            self._last_t = t
            for q in self._listeners:
                q.put(entry)
            if entry.key:
                self._gops.append(_Gop(t))
                self.waiting_since = None
            elif not self._gops:
                self.dropped_for_key += 1
                if self.waiting_since is None:
                    self.waiting_since = t
                return
            gop = self._gops[-1]
            gop.entries.append(entry)
            gop.size += entry.size
            self._bytes += entry.size
            self._trim(t)

    def _trim(self, now: float) -> None:
        gops = self._gops
        while len(gops) >= 2 and now - gops[1].start >= self.seconds:
            self._bytes -= gops.popleft().size
        if gops and (self._bytes > self.max_bytes or now - gops[0].start > self.max_span):
            if len(gops) >= 2:
                while len(gops) >= 2 and (self._bytes > self.max_bytes or now - gops[0].start > self.max_span):
                    self._bytes -= gops.popleft().size
            else:
                # One GOP longer than any pre-roll we may hold: drop it, wait for a keyframe.
                self.overflows += 1
                self.waiting_since = gops[0].start
                gops.clear()
                self._bytes = 0

    # -- the reading side --------------------------------------------------------------

    @property
    def bytes(self) -> int:
        return self._bytes

    def span(self) -> float:
        with self._lock:
            if not self._gops or self._last_t is None:
                return 0.0
            return self._last_t - self._gops[0].start

    def open_clip(self, pre: float) -> ClipSource:
        """The packets from the last keyframe at or before ``now - pre`` (or the oldest one
        kept), and a feed of every packet after them. Raises ``ClipError`` without a stream."""
        with self._lock:
            if self._template is None:
                raise ClipError("no video stream is open")
            now = self._last_t if self._last_t is not None else 0.0
            start = None
            for gop in self._gops:
                if gop.start <= now - pre or start is None:
                    start = gop
            chosen: list[_Entry] = []
            if start is not None:
                take = False
                for gop in self._gops:
                    take = take or gop is start
                    if take:
                        chosen.extend(gop.entries)
            note = ""
            have = now - chosen[0].t if chosen else 0.0
            if pre > 0 and have < pre - 0.05:  # less than asked (within a frame or so)
                if self.waiting_since is not None or not chosen:
                    note = f"no keyframe in the last {pre:g} s: the pre-roll is {have:.1f} s"
                else:
                    note = f"only {have:.1f} s of pre-roll were kept"
            feed: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
            self._listeners.append(feed)
            return ClipSource(self._template, chosen, feed, now, self._reencoded, self._codec, note)

    def close_clip(self, source: ClipSource) -> None:
        with self._lock:
            if source.feed in self._listeners:
                self._listeners.remove(source.feed)

    def close(self) -> None:
        with self._lock:
            holder, self._holder, self._template = self._holder, None, None
            for q in self._listeners:
                q.put(None)
            self._listeners.clear()
            self._gops.clear()
            self._bytes = 0
        if holder is not None:
            _close_quietly(holder)


class FrameEncoder:
    """Re-encodes decoded frames for a source whose codec MP4 cannot hold (low cost:
    libx264 ultrafast, one thread, a keyframe every ``gop`` frames)."""

    def __init__(self, ring: PacketRing, *, gop: int = 30, crf: int = 30) -> None:
        self.ring = ring
        self.gop = gop
        self.crf = crf
        self._holder: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self.failed: str | None = None

    def _start(self, width: int, height: int, source_codec: str) -> None:
        self.close()
        holder = av.open(io.BytesIO(), "w", format="mp4")
        stream = holder.add_stream("libx264", rate=15)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.thread_count = 1
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(self.gop),
                          "crf": str(self.crf), "threads": "1"}
        stream.codec_context.open()
        self._holder, self._stream, self._size = holder, stream, (width, height)
        self._last_pts = -1
        self.ring.reset(stream, codec="h264", reencoded=True)
        self.source_codec = source_codec

    def feed(self, frame: av.VideoFrame, source_codec: str) -> None:
        if self.failed is not None:
            return
        width, height = frame.width & ~1, frame.height & ~1
        if width < 2 or height < 2:
            return
        try:
            if self._size != (width, height):
                self._start(width, height, source_codec)
            t = frame.time
            pts = int(round(t * 1000)) if t is not None else self._last_pts + 67
            if pts <= self._last_pts:
                pts = self._last_pts + 1
            self._last_pts = pts
            out = frame.reformat(width=width, height=height, format="yuv420p")
            if out is frame:  # reformat may hand back the decoder's own frame: do not touch that one
                out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            out.pict_type = PictureType.NONE  # lavfi marks every frame I; the encoder sets the GOP
            out.pts = pts
            out.time_base = Fraction(1, 1000)
            for packet in self._stream.encode(out):
                self.ring.push(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            self.failed = f"re-encoding for the pre-roll failed: {exc}"
            log.warning("%s; clips are off for this source", self.failed)

    def close(self) -> None:
        if self._holder is not None:
            _close_quietly(self._holder)
        self._holder = self._stream = self._size = None


def write_clip(source: ClipSource, dest: Path, *, post: float, max_bytes: int | None = None,
               stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic) -> ClipResult:
    """Remux the clip's pre-roll and ``post`` seconds after the request into ``dest`` (MP4).

    Written under ``dest.part`` (mode 0600) and renamed when complete; on any failure
    the part file is removed and ``ClipError`` says why. ``max_bytes`` bounds the file
    (the station's free-space budget).
    """
    dest = Path(dest)
    part = part_path(dest)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    out = None
    try:
        out = sink = av.open(str(part), "w", format="mp4")
        ostream = sink.add_stream_from_template(source.template)
        extradata = source.template.codec_context.extradata
        if extradata and not ostream.codec_context.extradata:
            ostream.codec_context.extradata = extradata
        written = 0
        count = 0
        base: int | None = None
        first_t: float | None = None
        last_t: float | None = None
        until = source.requested_at + post
        deadline = clock() + post + POST_ROLL_GRACE

        def mux(entry: _Entry) -> None:
            nonlocal written, count, base, first_t, last_t
            pk = entry.packet
            ts = pk.dts if pk.dts is not None else pk.pts
            if ts is None:  # the ring keeps timed packets only
                raise ClipError("a packet of the clip has no timestamp")
            if base is None:
                base = ts
                first_t = entry.t
            copy = av.Packet(bytes(pk))
            copy.time_base = pk.time_base
            copy.dts = ts - base
            copy.pts = (pk.pts - base) if pk.pts is not None else copy.dts
            copy.is_keyframe = pk.is_keyframe
            copy.stream = ostream
            sink.mux(copy)
            written += entry.size
            count += 1
            last_t = entry.t
            if max_bytes is not None and written > max_bytes:
                raise ClipError(f"the clip outgrew its {max_bytes} byte budget (the disk's free-space floor)")

        waiting_key = not source.packets
        for kept in source.packets:
            mux(kept)
        while clock() < deadline and not (stop is not None and stop.is_set()):
            try:
                entry = source.feed.get(timeout=max(0.01, min(0.5, deadline - clock())))
            except queue.Empty:
                continue
            if entry is None:
                break  # the stream was reset (reconnect, new size): the clip ends here
            if waiting_key:
                if not entry.key:
                    continue
                waiting_key = False
            mux(entry)
            if entry.t >= until:
                break
        if count == 0:
            raise ClipError("no keyframe arrived: there is nothing to make a clip from")
        out.close()
        out = None
        os.replace(part, dest)
    except ClipError:
        _discard(out, part)
        raise
    except (av.error.FFmpegError, OSError) as exc:
        _discard(out, part)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ClipError(f"writing the clip failed: {reason}") from None
    except BaseException:
        _discard(out, part)
        raise
    assert first_t is not None and last_t is not None
    return ClipResult(
        path=str(dest), bytes=dest.stat().st_size, duration=round(last_t - first_t, 3),
        preroll=round(max(0.0, source.requested_at - first_t), 3), packets=count,
        codec=source.codec, reencoded=source.reencoded, note=source.note,
    )


def _discard(out: Any, part: Path) -> None:
    if out is not None:
        _close_quietly(out)
    with contextlib.suppress(FileNotFoundError):
        part.unlink()


def _packet_time(packet: av.Packet[Any]) -> float | None:
    ts = packet.pts if packet.pts is not None else packet.dts
    tb = packet.time_base
    if ts is None or tb is None:
        return None
    return float(ts * tb)


def _close_quietly(container: Any) -> None:
    try:
        container.close()
    except (av.error.FFmpegError, OSError, ValueError) as exc:  # pragma: no cover - best effort
        log.debug("closing a container: %s", exc)
