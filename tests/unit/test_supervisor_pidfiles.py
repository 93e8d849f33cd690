"""Pid files: round trip, garbage tolerance, and reaping decisions on this very process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from app.supervisor.pidfiles import (
    PidRecord,
    is_our_leftover,
    pidfile_path,
    read_pidfile,
    reap_leftovers,
    remove_pidfile,
    write_pidfile,
)


def record(pid: int, create_time: float) -> PidRecord:
    return PidRecord(camera_id=7, pid=pid, create_time=create_time, instance="abc",
                     owner="o", started_at=time.time())


def test_round_trip_and_remove(tmp_path: Path) -> None:
    rec = record(1234, 99.5)
    path = write_pidfile(tmp_path, rec)
    assert path == pidfile_path(tmp_path, 7)
    assert read_pidfile(path) == rec
    remove_pidfile(tmp_path, 7)
    remove_pidfile(tmp_path, 7)  # idempotent
    assert not path.exists()


def test_garbage_pidfile_is_ignored_and_deleted(tmp_path: Path) -> None:
    bad = tmp_path / "worker-3.pid"
    bad.write_text("{not json")
    assert read_pidfile(bad) is None
    report = reap_leftovers(tmp_path)
    assert report.killed == [] and not bad.exists()


def test_this_process_is_never_taken_for_a_leftover(tmp_path: Path) -> None:
    """The test process matches pid and create_time but has no worker marker."""
    me = psutil.Process()
    assert os.environ.get("EDGE_STATION_WORKER") is None
    rec = record(me.pid, me.create_time())
    assert is_our_leftover(rec) is None
    write_pidfile(tmp_path, rec)
    report = reap_leftovers(tmp_path)
    assert report.killed == [] and report.kept == [me.pid]
    assert not pidfile_path(tmp_path, 7).exists()


def test_dead_pid_is_just_forgotten(tmp_path: Path) -> None:
    write_pidfile(tmp_path, record(2**22 + 12345, 1.0))  # beyond pid_max on common systems
    report = reap_leftovers(tmp_path)
    assert report.killed == [] and report.removed_files == ["worker-7.pid"]
