"""Both sides of the worker protocol agree: what the worker writes and parses is what the station reads and builds."""

from __future__ import annotations

import pytest

from app.worker.cli import build_parser
from app.worker.heartbeat import CaptureStats, HeartbeatBuilder
from app.workerlink.protocol import (
    HEARTBEAT_FIELDS,
    RunArgs,
    clean_heartbeat,
    heartbeat_message,
    run_argv,
)


def test_the_worker_heartbeat_has_exactly_the_protocol_fields_and_survives_cleaning() -> None:
    stats = CaptureStats()
    stats.source, stats.width, stats.height, stats.codec = "up", 640, 360, "h264"
    hb = HeartbeatBuilder(3, stats).build()
    assert set(hb) == {"type", *HEARTBEAT_FIELDS}
    cleaned = clean_heartbeat(hb, prev_source=None)
    for key in ("camera_id", "source", "width", "height", "codec", "decoded", "motion_active"):
        assert cleaned[key] == hb[key]


def test_a_heartbeat_with_a_missing_or_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        heartbeat_message(ts=1.0)


def test_the_station_argv_parses_in_the_worker() -> None:
    args = RunArgs(camera_id=7, loop=True, max_fps=2.5, preview="/tmp/p", motion_threshold=0.05,
                   stall_timeout=4.0, heartbeat_interval=0.5, evidence_dir="/tmp/ev", preroll=3.0)
    ns = build_parser().parse_args(run_argv(args))
    assert (ns.command, ns.camera_id, ns.source, ns.loop, ns.max_fps, ns.preview) == ("run", 7, "-", True, 2.5, "/tmp/p")
    assert (ns.motion_threshold, ns.stall_timeout, ns.heartbeat_interval) == (0.05, 4.0, 0.5)
    assert (ns.evidence_dir, ns.preroll) == ("/tmp/ev", 3.0)
    plain = build_parser().parse_args(run_argv(RunArgs(camera_id=1)))
    assert plain.preview is None and plain.evidence_dir is None and plain.max_fps == 0.0
