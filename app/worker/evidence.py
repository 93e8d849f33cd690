"""The worker's evidence desk: full-resolution snapshots and pre-roll clips on request.

The station asks through files, never through the worker's stdin: it writes
``<id>.req.json`` (atomically, by rename) into the worker's evidence directory
(``--evidence-dir``, inside the station's run directory) and sends SIGUSR1; the
worker also looks every ``POLL_INTERVAL`` in case a signal was missed. A request
is claimed by renaming it, so it is done once. The answer is one stdout JSON line::

    {"type": "evidence", "id": "...", "kind": "snapshot"|"clip", "ok": true,
     "path": "/abs/file", ...details}  or  {..., "ok": false, "error": "why"}

Requests (JSON objects):

- ``{"id", "kind": "snapshot", "format": "jpeg"|"png", "dest"}``: the latest decoded
  frame at the source's own resolution, written to ``dest``.
- ``{"id", "kind": "clip", "dest", "pre", "post", "max_bytes"?}``: pre-roll from the
  packet ring plus ``post`` seconds, remuxed into an MP4 at ``dest``.

Every file is written as ``dest.part`` (mode 0600) and renamed when complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error

from app.worker.packet_ring import (
    MP4_CODECS,
    ClipError,
    FrameEncoder,
    PacketRing,
    part_path,
    write_clip,
)

__all__ = ["POLL_INTERVAL", "EvidenceDesk", "encode_image"]

log = logging.getLogger("app.worker.evidence")

POLL_INTERVAL = 0.5
MAX_CLIP_JOBS = 3
MAX_POST = 120.0
MAX_PRE = 120.0
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FORMATS: dict[str, Literal["mjpeg", "png"]] = {"jpeg": "mjpeg", "png": "png"}


def encode_image(frame: av.VideoFrame, fmt: str) -> bytes:
    """``frame`` at its own resolution as JPEG (``fmt="jpeg"``) or PNG bytes."""
    codec = _FORMATS.get(fmt)
    if codec is None:
        raise ValueError(f"image format must be one of {', '.join(sorted(_FORMATS))}, not {fmt!r}")
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = frame.width, frame.height
    ctx.time_base = Fraction(1, 25)
    if codec == "mjpeg":
        ctx.pix_fmt = "yuvj420p"
        ctx.qmin, ctx.qmax = 2, 4  # visually clean JPEG (about quality 90)
        image = frame.reformat(format="yuvj420p")
    else:
        ctx.pix_fmt = "rgb24"
        image = frame.reformat(format="rgb24")
    image.pts = 0
    packets = list(ctx.encode(image)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


class EvidenceDesk:
    """The capture loop's tap (``stream_opened``/``packet``/``frame``) and the request loop."""

    def __init__(self, directory: Path | None, emit: Callable[[dict[str, Any]], object], *,
                 preroll: float = 10.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.emit = emit
        self.preroll = preroll
        self.ring = PacketRing(preroll, max_bytes=max_bytes) if preroll > 0 else None
        self.encoder: FrameEncoder | None = None
        self._latest: av.VideoFrame | None = None
        self._latest_at = 0.0  # time.time() when the latest frame was decoded
        self._latest_seq = 0  # frames seen, counting the latest
        self._codec = ""
        self._remux = False
        self.wake = threading.Event()
        self._jobs: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- the capture thread (keep these cheap) -----------------------------------------

    def stream_opened(self, stream: Any) -> None:
        ctx = stream.codec_context
        self._codec = ctx.name
        self._remux = ctx.name in MP4_CODECS
        if self.ring is None:
            return
        if self._remux:
            try:
                self.ring.reset(stream, codec=ctx.name)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("pre-roll off for codec %s: %s", ctx.name, exc)
                self._remux = False
        if not self._remux:
            if self.encoder is None:
                self.encoder = FrameEncoder(self.ring)
                log.info("codec %s cannot go into MP4: the pre-roll is re-encoded (H.264, ultrafast)",
                         ctx.name)

    def packet(self, packet: av.Packet[Any]) -> None:
        if self._remux and self.ring is not None:
            self.ring.push(packet)

    def frame(self, frame: av.VideoFrame) -> None:
        self._latest = frame
        self._latest_at = time.time()
        self._latest_seq += 1
        if not self._remux and self.encoder is not None:
            self.encoder.feed(frame, self._codec)

    # -- the request loop ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Answer requests until ``stop`` is set (a thread of the worker)."""
        if self.directory is None:
            return
        while not stop.is_set():
            self.wake.wait(POLL_INTERVAL)
            self.wake.clear()
            if stop.is_set():
                break
            try:
                self.poll()
            except Exception:  # one bad request must not end the desk
                log.exception("evidence request loop failed")
        for job in list(self._jobs):
            job.join(0.2)

    def poll(self) -> int:
        """Claim and start every waiting request; returns how many were taken."""
        assert self.directory is not None
        try:
            names = sorted(p for p in os.listdir(self.directory) if p.endswith(".req.json"))
        except FileNotFoundError:
            return 0
        taken = 0
        for name in names:
            src = self.directory / name
            claimed = self.directory / (name[: -len(".req.json")] + ".taken")
            try:
                os.rename(src, claimed)
            except FileNotFoundError:
                continue
            try:
                with open(claimed, encoding="utf-8") as fh:
                    request = json.loads(fh.read(65536))
            except (OSError, ValueError) as exc:
                self._answer({"id": name.split(".", 1)[0], "kind": None}, ok=False,
                             error=f"unreadable request {name}: {exc}")
                continue
            finally:
                with contextlib.suppress(FileNotFoundError):
                    claimed.unlink()
            taken += 1
            self.handle(request)
        return taken

    def handle(self, request: Any) -> None:
        problem = _check(request)
        if problem:
            ident = request.get("id") if isinstance(request, dict) else None
            self._answer({"id": ident if isinstance(ident, str) else None,
                          "kind": request.get("kind") if isinstance(request, dict) else None},
                         ok=False, error=problem)
            return
        if request["kind"] == "snapshot":
            self._snapshot(request)
        else:
            self._start_clip(request)

    def _snapshot(self, req: dict[str, Any]) -> None:
        frame, at, seq = self._latest, self._latest_at, self._latest_seq
        if frame is None:
            self._answer(req, ok=False, error="no frame decoded yet")
            return
        dest = Path(req["dest"])
        try:
            data = encode_image(frame, req.get("format", "jpeg"))
            _write_file(dest, data)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._answer(req, ok=False, error=f"snapshot failed: {getattr(exc, 'strerror', None) or exc}")
            return
        self._answer(req, ok=True, path=str(dest), width=frame.width, height=frame.height,
                     format=req.get("format", "jpeg"), bytes=len(data), taken_at=round(at, 3), seq=seq)

    def _start_clip(self, req: dict[str, Any]) -> None:
        if self.ring is None:
            self._answer(req, ok=False, error="the pre-roll buffer is off (--preroll 0): no clips")
            return
        if self.encoder is not None and self.encoder.failed:
            self._answer(req, ok=False, error=self.encoder.failed)
            return
        with self._lock:
            self._jobs = [j for j in self._jobs if j.is_alive()]
            if len(self._jobs) >= MAX_CLIP_JOBS:
                self._answer(req, ok=False, error=f"busy: {MAX_CLIP_JOBS} clips are being written")
                return
            try:
                source = self.ring.open_clip(float(req["pre"]))
            except ClipError as exc:
                self._answer(req, ok=False, error=str(exc))
                return
            job = threading.Thread(target=self._clip, args=(req, source), name=f"clip-{req['id']}",
                                   daemon=True)
            self._jobs.append(job)
        job.start()

    def _clip(self, req: dict[str, Any], source: Any) -> None:
        assert self.ring is not None
        t0 = time.monotonic()
        try:
            result = write_clip(source, Path(req["dest"]), post=float(req["post"]),
                                max_bytes=req.get("max_bytes"))
        except ClipError as exc:
            self._answer(req, ok=False, error=str(exc))
            return
        finally:
            self.ring.close_clip(source)
        self._answer(req, ok=True, path=result.path, bytes=result.bytes, duration=result.duration,
                     preroll=result.preroll, packets=result.packets, codec=result.codec,
                     reencoded=result.reencoded, note=result.note,
                     write_seconds=round(time.monotonic() - t0, 3))

    def _answer(self, req: dict[str, Any], *, ok: bool, **detail: Any) -> None:
        line = {"type": "evidence", "id": req.get("id"), "kind": req.get("kind"), "ok": ok, **detail}
        try:
            self.emit(line)
        except (BrokenPipeError, ValueError):
            pass

    def close(self) -> None:
        if self.encoder is not None:
            self.encoder.close()
        if self.ring is not None:
            self.ring.close()


def _check(req: Any) -> str | None:
    if not isinstance(req, dict):
        return "a request must be a JSON object"
    ident = req.get("id")
    if not isinstance(ident, str) or not _ID_RE.match(ident):
        return "request id must be 1-64 letters, digits, '.', '_' or '-'"
    kind = req.get("kind")
    if kind not in ("snapshot", "clip"):
        return f"request kind must be 'snapshot' or 'clip', not {kind!r}"
    dest = req.get("dest")
    if not isinstance(dest, str) or not os.path.isabs(dest):
        return "request dest must be an absolute file path"
    if not os.path.isdir(os.path.dirname(dest)):
        return f"the directory of {dest} does not exist"
    if kind == "snapshot":
        if req.get("format", "jpeg") not in _FORMATS:
            return f"snapshot format must be jpeg or png, not {req.get('format')!r}"
        return None
    for key, limit in (("pre", MAX_PRE), ("post", MAX_POST)):
        v = req.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= limit:
            return f"clip {key} must be a number of seconds from 0 to {limit:g}"
    budget = req.get("max_bytes")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
        return "clip max_bytes must be a whole number above 0"
    return None


def _write_file(dest: Path, data: bytes) -> None:
    part = part_path(dest)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
    os.close(fd)
    os.replace(part, dest)
