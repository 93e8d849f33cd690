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


def test_the_slot_header_fields_sit_where_the_layout_says() -> None:
    import struct

    from app.workerlink.protocol import (
        BODY_OFFSET,
        HEADER,
        HEADER_SIZE,
        MAGIC,
        PAYLOAD_OFFSET,
        SEQ_OFFSET,
        VERSION,
        WANT_HEIGHT_OFFSET,
        WANT_OFFSET,
        WANTED_UNTIL,
        WANTED_UNTIL_OFFSET,
    )

    assert (VERSION, HEADER_SIZE, PAYLOAD_OFFSET) == (3, 48, 48)
    raw = HEADER.pack(MAGIC, VERSION, 320, 8, 1.5, 640, 360, 2560, 200, 0, 123_456_789)
    assert struct.unpack_from("<H", raw, WANT_OFFSET)[0] == 320
    assert struct.unpack_from("<H", raw, WANT_HEIGHT_OFFSET)[0] == 200
    assert struct.unpack_from("<Q", raw, SEQ_OFFSET)[0] == 8
    assert struct.unpack_from("<dIII", raw, BODY_OFFSET) == (1.5, 640, 360, 2560)
    assert WANTED_UNTIL.unpack_from(raw, WANTED_UNTIL_OFFSET)[0] == 123_456_789
    assert WANTED_UNTIL_OFFSET % 8 == 0 and SEQ_OFFSET % 8 == 0  # aligned: one store each


def test_decode_threading_is_a_function_of_the_cores() -> None:
    from app.worker.capture import DecodeThreading, decode_threading, parse_decode_threading

    assert decode_threading(1) == DecodeThreading("NONE", 1)
    assert decode_threading(2) == DecodeThreading("FRAME", 2)
    assert decode_threading(8) == DecodeThreading("FRAME", 4)
    assert decode_threading(None) == decode_threading()
    assert parse_decode_threading("frame:3") == DecodeThreading("FRAME", 3)
    assert parse_decode_threading("SLICE") == DecodeThreading("SLICE", None)
    assert parse_decode_threading("default") == DecodeThreading(None)
    assert parse_decode_threading("box") == decode_threading()
    assert str(DecodeThreading("AUTO", 0)) == "AUTO:0" and str(DecodeThreading(None)) == "default"
    for bad in ("TURBO", "FRAME:x", "FRAME:-1", "FRAME:999"):
        with pytest.raises(ValueError):
            parse_decode_threading(bad)
    ns = build_parser().parse_args(["run", "--camera-id", "1", "--source", "x", "--decode-threading", "SLICE:2"])
    assert ns.decode_threading == DecodeThreading("SLICE", 2)
