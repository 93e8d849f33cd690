"""The per-camera log sink: ring bound, rotation bound, flood limiter, level parsing."""

from __future__ import annotations

from pathlib import Path

from app.supervisor.logbuf import MAX_LINE_CHARS, LogSink, parse_worker_line


def test_parse_worker_line_levels() -> None:
    assert parse_worker_line("ERROR camera lost") == ("ERROR", "camera lost")
    assert parse_worker_line("warn: slow") == ("WARNING", "slow")
    assert parse_worker_line("Traceback (most recent call last):") == (
        "INFO", "Traceback (most recent call last):")


def test_ring_keeps_the_newest_lines(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "cam.log", ring_size=10)
    try:
        for i in range(25):
            sink.add("worker", "INFO", f"line {i}")
        tail = sink.tail(100)
        assert [x.text for x in tail] == [f"line {i}" for i in range(15, 25)]
        assert [x.text for x in sink.tail(3)] == ["line 22", "line 23", "line 24"]
        assert sink.tail(0) == []
    finally:
        sink.close()


def test_file_rotation_bounds_disk_use(tmp_path: Path) -> None:
    max_bytes, backups = 5_000, 2
    sink = LogSink(tmp_path / "cam.log", max_bytes=max_bytes, backups=backups, rate=1e9, burst=1e9)
    try:
        for i in range(2_000):
            sink.add("worker", "INFO", f"{i:05d} " + "y" * 80)
    finally:
        sink.close()
    files = sorted(tmp_path.glob("cam.log*"))
    assert [f.name for f in files] == ["cam.log", "cam.log.1", "cam.log.2"]
    assert sum(f.stat().st_size for f in files) <= (backups + 1) * max_bytes
    assert "01999" in (tmp_path / "cam.log").read_text()


def test_flood_limiter_drops_and_summarises(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "cam.log", rate=10.0, burst=20.0)
    try:
        kept = [sink.add("worker", "INFO", f"x{i}", limited=True) for i in range(100)]
        assert sum(1 for k in kept if k is not None) in range(20, 23)
        # Supervisor lines are never limited.
        assert sink.add("supervisor", "INFO", "state change") is not None
        summary = sink.flush_summary()
        assert summary is not None and "dropped" in summary.text
        assert sink.flush_summary() is None
        assert sink.suppressed_total >= 78
    finally:
        sink.close()


def test_overlong_lines_are_cut(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "cam.log")
    try:
        line = sink.add("worker", "INFO", "z" * (MAX_LINE_CHARS * 3))
        assert line is not None and len(line.text) < MAX_LINE_CHARS + 50
        assert "chars cut" in line.text
    finally:
        sink.close()
