"""logs, snapshot, probe and stats through both implementations, real workers and real probes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.domain import Camera, ErrorCode
from app.domain.operations import (
    CameraLogs,
    CameraRef,
    LogsRequest,
    ProbeRequest,
    ProbeResult,
    SnapshotRequest,
    StationOperations,
    StatsRequest,
    StopCamera,
)
from app.services import ProbeRunner
from tests.contract.conftest import HANGING_PROBE, Station
from tests.contract.helpers import decode_jpeg, decode_png, refused, wait_for


def test_a_running_camera_can_be_observed(ops: StationOperations, station: Station) -> None:
    gid = station.gate.id
    ops.start_camera(CameraRef(gid))

    # stats: process figures and heartbeat figures over the window
    stats = wait_for(lambda: (s := ops.camera_stats(StatsRequest(gid, window_s=30))).samples >= 3
                     and s.fps_avg and s.rss_bytes and s, 15.0, "three heartbeats and a process sample")
    assert stats.running and stats.pid == ops.camera_status(CameraRef(gid)).pid
    assert stats.rss_bytes and stats.rss_bytes > 1_000_000 and stats.threads and stats.threads >= 1
    assert stats.cpu_percent is not None and stats.children == 0
    assert 0 <= stats.fps_min <= stats.fps_avg <= 30 and stats.decoded > 0 and stats.dropped >= 0
    assert stats.motion_avg is not None and 0 <= stats.motion_avg <= 1 and stats.window_s == 30.0
    assert ops.camera_stats(StatsRequest(gid, window_s=0.001)).samples <= 1

    # snapshot: the latest decoded frame as a PNG that FFmpeg decodes to the source's size
    snap = wait_for(lambda: _try_snapshot(ops, gid), 10.0, "a decoded frame")
    image = decode_png(snap.png)
    assert image.shape == (snap.height, snap.width, 3) == (180, 320, 3)
    assert image.std() > 10  # a test pattern, not a blank slot
    assert abs(snap.taken_at - time.time()) < 30 and snap.seq > 0 and snap.format == "png"
    later = wait_for(lambda: (s := _try_snapshot(ops, gid)) and s.seq > snap.seq and s, 10.0, "a newer frame")
    assert not np.array_equal(decode_png(later.png), image)  # the pattern moves

    # logs: supervisor lines (and the worker's) for this camera, newest last
    logs = ops.camera_logs(LogsRequest(gid, limit=500))
    assert isinstance(logs, CameraLogs) and logs.camera_id == gid
    assert any(ln.source == "supervisor" and "start requested" in ln.text for ln in logs.lines)
    assert [ln.ts for ln in logs.lines] == sorted(ln.ts for ln in logs.lines)
    assert len(ops.camera_logs(LogsRequest(gid, limit=1)).lines) == 1

    ops.stop_camera(StopCamera(gid))
    refused(lambda: ops.camera_snapshot(CameraRef(gid)), ErrorCode.INVALID_STATE, "not running")
    after = ops.camera_stats(StatsRequest(gid))
    assert not after.running and after.pid is None and after.cpu_percent is None
    assert any("stop" in ln.text for ln in ops.camera_logs(LogsRequest(gid)).lines)


def test_a_snapshot_has_the_sources_full_resolution(ops: StationOperations, station: Station) -> None:
    # Wider than the 640 px preview slot: the snapshot must not be the preview.
    big = station.admin.add_camera(Camera("Wide", "test://moving?size=960x540&rate=15", stall_timeout=5.0))
    ops.start_camera(CameraRef(big.id))
    png = wait_for(lambda: _try_snapshot(ops, big.id), 10.0, "a decoded frame")
    assert (png.width, png.height, png.format, png.content_type) == (960, 540, "png", "image/png")
    assert decode_png(png.png).shape == (540, 960, 3)
    jpeg = ops.camera_snapshot(SnapshotRequest(big.id, format="jpeg"))
    assert (jpeg.width, jpeg.height, jpeg.format, jpeg.content_type) == (960, 540, "jpeg", "image/jpeg")
    pixels = decode_jpeg(jpeg.image)
    assert pixels.shape == (540, 960, 3) and pixels.std() > 10
    assert jpeg.seq >= png.seq
    refused(lambda: ops.camera_snapshot(SnapshotRequest(big.id, format="bmp")), ErrorCode.VALIDATION, "format")
    ops.stop_camera(StopCamera(big.id))
    refused(lambda: ops.camera_snapshot(SnapshotRequest(big.id, format="jpeg")), ErrorCode.INVALID_STATE,
            "not running")


def _try_snapshot(ops: StationOperations, camera_id: int, fmt: str = "png"):
    from app.domain import OperationError

    try:
        return ops.camera_snapshot(SnapshotRequest(camera_id, format=fmt))
    except OperationError as e:
        if e.code is ErrorCode.UNAVAILABLE:
            return None  # no frame published yet
        raise


def test_observing_a_stopped_camera(ops: StationOperations, station: Station) -> None:
    yid = station.yard.id
    assert ops.camera_logs(LogsRequest(yid)).lines == ()
    refused(lambda: ops.camera_snapshot(CameraRef(yid)), ErrorCode.INVALID_STATE, "not running")
    s = ops.camera_stats(StatsRequest(yid))
    assert (s.running, s.pid, s.samples, s.fps_avg, s.decoded, s.window_s) == (False, None, 0, None, 0, 60.0)
    for limit in (0, 5001, "9"):
        refused(lambda limit=limit: ops.camera_logs(LogsRequest(yid, limit=limit)), ErrorCode.VALIDATION, "limit")
    for window in (0, 3601, float("nan")):
        refused(lambda window=window: ops.camera_stats(StatsRequest(yid, window_s=window)), ErrorCode.VALIDATION,
                "window_s")


def test_probe_reports_the_stream(ops: StationOperations, station: Station) -> None:
    res = ops.probe_camera(ProbeRequest(station.yard.id, timeout=5))  # inactive cameras may be probed
    assert isinstance(res, ProbeResult)
    assert (res.ok, res.codec, res.width, res.height, res.fps, res.pix_fmt, res.error) == \
        (True, "rawvideo", 320, 180, 15.0, "yuv420p", None)
    assert 0 < res.elapsed < 5 + station.probe_runner.grace


def test_probe_reports_a_precise_error(ops: StationOperations, station: Station) -> None:
    res = ops.probe_camera(ProbeRequest(station.dock.id, timeout=5))
    assert not res.ok and res.codec is None and res.width is None
    assert "missing.mp4" in res.error


def test_probe_that_hangs_is_killed_at_its_timeout(ops: StationOperations, station: Station) -> None:
    hanging = station.build(ops.path, probe_runner=ProbeRunner(command=HANGING_PROBE, grace=0.3))  # type: ignore[attr-defined]
    t0 = time.monotonic()
    err = refused(lambda: hanging.probe_camera(ProbeRequest(station.gate.id, timeout=0.5)), ErrorCode.UNAVAILABLE,
                  "0.5 s timeout")
    assert time.monotonic() - t0 < 3.0 and err.details == {"timeout": 0.5}


def test_probe_argument_checks(ops: StationOperations, station: Station) -> None:
    for bad in (0, -2, 60.5, None):
        refused(lambda bad=bad: ops.probe_camera(ProbeRequest(station.gate.id, timeout=bad)), ErrorCode.VALIDATION,
                "timeout")


@pytest.mark.parametrize("call", [
    lambda o: o.start_camera(CameraRef(999)),
    lambda o: o.stop_camera(StopCamera(999)),
    lambda o: o.restart_camera(CameraRef(999)),
    lambda o: o.camera_status(CameraRef(999)),
    lambda o: o.activate_camera(CameraRef(999)),
    lambda o: o.deactivate_camera(CameraRef(999)),
    lambda o: o.camera_logs(LogsRequest(999)),
    lambda o: o.camera_snapshot(CameraRef(999)),
    lambda o: o.probe_camera(ProbeRequest(999)),
    lambda o: o.camera_stats(StatsRequest(999)),
], ids=["start", "stop", "restart", "status", "activate", "deactivate", "logs", "snapshot", "probe", "stats"])
def test_unknown_camera_is_not_found(ops: StationOperations, call) -> None:
    refused(lambda: call(ops), ErrorCode.NOT_FOUND, "camera 999 does not exist")
