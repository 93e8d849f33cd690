"""The worker's evidence desk as a real process: full-resolution snapshots and pre-roll clips
asked for through request files + SIGUSR1 (never stdin), answered on stdout.

Sources are H.264 clips written with PyAV/libx264 (remuxed: the clip's packets are the
source's own bytes) and a lavfi test pattern (raw frames: re-encoded, and the answer says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from app.workerlink.launch import worker_command
from tests.support.clips import write_clip

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


class EvidenceWorker:
    """A worker process whose evidence answers land on a queue (heartbeats are counted)."""

    def __init__(self, tmp: Path, source: str, *args: str, preexec=None) -> None:
        self.dir = tmp / "requests"
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "EDGE_STATION_WORKER": "1", "EDGE_STATION_OWNER": "test-evidence",
               "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [*worker_command(), "run", "--camera-id", "1", "--source", source, "--evidence-dir", str(self.dir),
             "--heartbeat-interval", "0.25", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
            preexec_fn=preexec,
        )
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.beats: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._out, daemon=True),
                         threading.Thread(target=self._err, daemon=True)]
        for t in self._readers:
            t.start()
        self._n = 0

    def _out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            (self.beats.append if obj["type"] == "heartbeat" else self.answers.put)(obj)

    def _err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def wait_frames(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.beats and self.beats[-1]["decoded"] >= n:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}: {self.stderr[-5:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {n} decoded frames within {timeout} s: {self.stderr[-5:]}")

    def ask(self, request: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        self._n += 1
        ident = f"r{self._n}"
        tmp = self.dir / f"{ident}.tmp"
        tmp.write_text(json.dumps({**request, "id": ident}))
        os.replace(tmp, self.dir / f"{ident}.req.json")
        self.proc.send_signal(signal.SIGUSR1)
        answer = self.answers.get(timeout=timeout)
        assert answer["id"] == ident
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._readers:
            t.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[EvidenceWorker]]:
    made: list[EvidenceWorker] = []
    yield made
    for w in made:
        w.close()


def _packets(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as c:
        return [p for p in c.demux(c.streams.video[0]) if p.size]


def _frames(path: Path) -> tuple[int, int, int, str]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return len(frames), frames[0].width, frames[0].height, s.codec_context.name


def test_clip_is_the_sources_packets_remuxed_with_preroll(tmp_path: Path, workers) -> None:
    clip = write_clip(tmp_path, width=640, height=360, seconds=30, fps=15, gop=15)  # a keyframe a second
    w = EvidenceWorker(tmp_path, str(clip), "--preroll", "3")
    workers.append(w)
    w.wait_frames(15 * 5)  # 5 s played: the ring holds more than the pre-roll
    out = tmp_path / "out"
    out.mkdir()
    t0 = time.monotonic()
    answer = w.ask({"kind": "clip", "pre": 3, "post": 2, "dest": str(out / "c.mp4")})
    took = time.monotonic() - t0
    assert answer["ok"], answer
    assert answer["reencoded"] is False and answer["codec"] == "h264" and answer["note"] == ""
    assert 3.0 <= answer["preroll"] <= 4.1  # GOP-aligned: from the keyframe at or before "3 s ago"
    assert 4.9 <= answer["duration"] <= 6.2 and 1.5 <= took < 8  # packets come a little ahead of their frames
    path = Path(answer["path"])
    assert path == out / "c.mp4" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(out.glob("*.part"))
    n, width, height, codec = _frames(path)
    assert (width, height, codec) == (640, 360, "h264") and n == answer["packets"]
    # Remuxed, not re-encoded: every packet of the clip is one of the source's, byte for byte.
    source = {bytes(p) for p in _packets(clip)}
    mine = _packets(path)
    assert mine[0].is_keyframe and all(bytes(p) in source for p in mine)


def test_snapshot_has_the_sources_full_resolution(tmp_path: Path, workers) -> None:
    clip = write_clip(tmp_path, width=1280, height=720, seconds=6, fps=15)
    w = EvidenceWorker(tmp_path, str(clip), "--loop", "--preroll", "0")
    workers.append(w)
    w.wait_frames(5)
    out = tmp_path / "out"
    out.mkdir()
    for fmt, ext, sig in (("jpeg", "jpg", b"\xff\xd8\xff"), ("png", "png", b"\x89PNG")):
        a = w.ask({"kind": "snapshot", "format": fmt, "dest": str(out / f"s.{ext}")})
        assert a["ok"] and (a["width"], a["height"], a["format"]) == (1280, 720, fmt), a
        data = Path(a["path"]).read_bytes()
        assert data.startswith(sig) and len(data) == a["bytes"]
        assert stat.S_IMODE(Path(a["path"]).stat().st_mode) == 0o600
        with av.open(str(a["path"])) as c:
            frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (1280, 720)
    # With the pre-roll off there are snapshots but no clips, and bad requests are refused clearly.
    a = w.ask({"kind": "clip", "pre": 1, "post": 1, "dest": str(out / "c.mp4")})
    assert not a["ok"] and "pre-roll buffer is off" in a["error"]
    a = w.ask({"kind": "snapshot", "format": "gif", "dest": str(out / "s.gif")})
    assert not a["ok"] and "jpeg or png" in a["error"]
    a = w.ask({"kind": "snapshot", "dest": "relative.jpg"})
    assert not a["ok"] and "absolute" in a["error"]
    a = w.ask({"kind": "video", "dest": str(out / "x")})
    assert not a["ok"] and "kind" in a["error"]
    assert w.proc.poll() is None  # SIGUSR1 never kills it


def test_raw_test_pattern_is_reencoded_and_says_so(tmp_path: Path, workers) -> None:
    w = EvidenceWorker(tmp_path, "test://moving?size=640x360&rate=15", "--preroll", "2")
    workers.append(w)
    w.wait_frames(15 * 4)
    out = tmp_path / "out"
    out.mkdir()
    a = w.ask({"kind": "clip", "pre": 2, "post": 1, "dest": str(out / "c.mp4")})
    assert a["ok"] and a["reencoded"] is True and a["codec"] == "h264", a
    assert 2.0 <= a["preroll"] <= 4.1 and a["duration"] >= 2.9
    n, width, height, codec = _frames(Path(a["path"]))
    assert (width, height, codec) == (640, 360, "h264") and n >= 40
    assert any("re-encoded" in line for line in w.stderr)


def test_source_without_keyframes_for_longer_than_the_preroll(tmp_path: Path, workers) -> None:
    # A keyframe every 4 s, a 1 s pre-roll: the clip starts at the last keyframe (GOP-aligned) ...
    clip = write_clip(tmp_path, width=320, height=180, seconds=40, fps=15, gop=60, name="gop4.mp4")
    w = EvidenceWorker(tmp_path, str(clip), "--preroll", "1")
    workers.append(w)
    w.wait_frames(15 * 5)
    out = tmp_path / "out"
    out.mkdir()
    a = w.ask({"kind": "clip", "pre": 1, "post": 0.5, "dest": str(out / "a.mp4")})
    assert a["ok"], a
    assert 1.0 <= a["preroll"] <= 5.0 and _packets(Path(a["path"]))[0].is_keyframe

    # ... and a GOP that outgrows the buffer's bound is dropped: memory stays bounded, the clip
    # waits for the next keyframe and says how much pre-roll it has.
    tight = EvidenceWorker(tmp_path / "tight", str(clip), "--preroll", "1", "--preroll-max-mb", "0.02")
    workers.append(tight)
    tight.wait_frames(15 * 5)
    a = tight.ask({"kind": "clip", "pre": 1, "post": 5, "dest": str(out / "b.mp4")}, timeout=30)
    assert a["ok"], a
    assert "no keyframe in the last 1 s" in a["note"]
    packets = _packets(Path(a["path"]))
    assert packets[0].is_keyframe and a["preroll"] < 1.0
    n, _, _, _ = _frames(Path(a["path"]))
    assert n == len(packets)  # decodes from its first frame


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(where)],
                       capture_output=True, timeout=10)
    return r.returncode == 0


def test_a_disk_that_fills_during_the_write_leaves_no_file(tmp_path: Path, workers) -> None:
    """A real write failure half-way: a 1 MB tmpfs when this machine lets us mount one, else a
    1 MB file size limit on the worker (the write fails with EFBIG instead of ENOSPC)."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = _can_mount_tmpfs(small)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    try:
        clip = write_clip(tmp_path, width=1280, height=720, seconds=20, fps=15)  # about 5 Mbit/s
        w = EvidenceWorker(tmp_path, str(clip), "--preroll", "2", preexec=None if mounted else limit)
        workers.append(w)
        w.wait_frames(15 * 3)
        a = w.ask({"kind": "clip", "pre": 2, "post": 4, "dest": str(small / "c.mp4")}, timeout=30)
        assert not a["ok"] and "writing the clip failed" in a["error"], a
        assert list(small.iterdir()) == []  # neither the clip nor its .part
        # The worker lives on and still answers.
        b = w.ask({"kind": "snapshot", "format": "jpeg", "dest": str(tmp_path / "after.jpg")})
        assert b["ok"] and w.proc.poll() is None
    finally:
        if mounted:
            with contextlib.suppress(subprocess.SubprocessError):
                subprocess.run(["umount", str(small)], capture_output=True, timeout=10)


def test_requests_reach_a_worker_without_its_stdin(tmp_path: Path, workers) -> None:
    """The request channel is files + a signal: the worker's stdin is not read (it is /dev/null
    here, and closing it changes nothing); a missed signal is covered by its look every 0.5 s."""
    w = EvidenceWorker(tmp_path, "test://still?size=320x180&rate=15", "--preroll", "0")
    workers.append(w)
    w.wait_frames(3)
    (tmp_path / "x").mkdir()
    ident = "nosignal"
    tmp = w.dir / f"{ident}.tmp"
    tmp.write_text(json.dumps({"id": ident, "kind": "snapshot", "format": "png", "dest": str(tmp_path / "x/s.png")}))
    os.replace(tmp, w.dir / f"{ident}.req.json")  # no SIGUSR1
    a = w.answers.get(timeout=5)
    assert a["id"] == ident and a["ok"] and (a["width"], a["height"]) == (320, 180)
    assert not list(w.dir.iterdir())  # claimed and cleaned up
    assert sys.platform != "win32"
