"""Heartbeat building and the non-blocking line sink (real pipes)."""

from __future__ import annotations

import json
import os
import select
import time

import pytest

from app.worker.heartbeat import CaptureStats, HeartbeatBuilder, HeartbeatWriter, LineSink


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_full_pipe_drops_whole_lines_instead_of_blocking(pipe):
    r, w = pipe
    sink = LineSink(w)
    assert sink.is_pipe
    line = "x" * 300
    t0 = time.monotonic()
    written = sum(sink.write(line) for _ in range(2000))  # ~600 KB into a 64 KB pipe
    assert time.monotonic() - t0 < 2.0
    assert sink.dropped == 2000 - written > 0
    data = read_all(r)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert all(chunk == line.encode() for chunk in lines[:-1])  # never a torn line
    assert len(lines) - 1 == written
    assert sink.write("again")  # room again after the reader caught up


def test_long_text_is_written_in_line_aligned_chunks(pipe):
    r, w = pipe
    sink = LineSink(w)
    text = "\n".join(f"line {i} " + "y" * 100 for i in range(100))  # ~10 KB > PIPE_BUF
    assert len(text) > select.PIPE_BUF
    assert sink.write(text)
    assert read_all(r).decode() == text + "\n"


def test_closed_reader_raises_broken_pipe(pipe):
    r, w = pipe
    os.close(r)
    with pytest.raises(BrokenPipeError):
        LineSink(w).write("anyone?")


def test_regular_file_is_written_normally(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb") as fh:
        sink = LineSink(fh.fileno())
        assert not sink.is_pipe
        assert sink.write("a\nb")
    assert path.read_text() == "a\nb\n"


def test_heartbeat_builder_fields_and_fps(pipe):
    r, w = pipe
    stats = CaptureStats()
    builder = HeartbeatBuilder(4, stats, lambda: 8)
    first = builder.build()
    assert first["source"] == "opening" and first["fps"] == 0.0 and first["last_frame_age"] is None
    stats.source, stats.processed, stats.decoded = "up", 30, 31
    stats.last_frame = time.monotonic()
    stats.note_motion(0.3, True)
    stats.note_motion(0.1, False)
    time.sleep(0.2)
    beat = builder.build()
    assert beat["fps"] > 30  # 30 frames in ~0.2 s
    assert (beat["motion"], beat["motion_active"], beat["preview_seq"]) == (0.3, True, 8)
    assert 0.15 < beat["last_frame_age"] < 1.0
    again = builder.build()
    assert (again["motion"], again["motion_active"]) == (0.0, False)  # peak is per interval

    stats.error = "e" * 5000
    assert HeartbeatWriter(LineSink(w)).write(again | {"error": stats.error})
    line = read_all(r).decode()
    assert line.endswith("\n") and len(line) < select.PIPE_BUF
    assert json.loads(line)["error"].endswith("…")
