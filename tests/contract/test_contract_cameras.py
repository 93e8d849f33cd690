"""start/stop/restart/activate/deactivate/status/list through both implementations, real workers."""

from __future__ import annotations

import psutil

from app.domain import CameraState, ErrorCode
from app.domain.operations import CameraRef, CameraStatus, ListStatus, StationOperations, StopCamera
from tests.contract.conftest import Station
from tests.contract.helpers import refused, wait_for


def running_status(ops: StationOperations, camera_id: int, other_than: int | None = None) -> CameraStatus:
    def check() -> CameraStatus | None:
        st = ops.camera_status(CameraRef(camera_id))
        ok = st.state is CameraState.RUNNING and st.fps is not None and st.pid != other_than
        return st if ok else None
    return wait_for(check, 15.0, f"camera {camera_id} running with heartbeats")


def test_stopped_and_inactive_cameras(ops: StationOperations, station: Station) -> None:
    gate = ops.camera_status(CameraRef(station.gate.id))
    assert (gate.state, gate.active, gate.name, gate.pid, gate.restarts, gate.last_exit) == \
        (CameraState.STOPPED, True, "Gate", None, 0, None)
    yard = ops.camera_status(CameraRef(station.yard.id))
    assert (yard.state, yard.active) == (CameraState.INACTIVE, False)
    everything = ops.list_status(ListStatus()).items
    assert [s.name for s in everything] == ["Gate", "Yard", "Dock"]
    assert [s.name for s in ops.list_status(ListStatus(active_only=True)).items] == ["Gate", "Dock"]


def test_start_run_stop(ops: StationOperations, station: Station) -> None:
    gid = station.gate.id
    started = ops.start_camera(CameraRef(gid))
    assert started.state in (CameraState.STARTING, CameraState.RUNNING) and started.pid
    refused(lambda: ops.start_camera(CameraRef(gid)), ErrorCode.INVALID_STATE, "already")
    st = running_status(ops, gid)
    assert st.pid == started.pid and st.source in ("up", "opening")
    st = wait_for(lambda: (s := ops.camera_status(CameraRef(gid))).width and s, 10.0, "frame size")
    assert (st.width, st.height, st.codec) == (320, 180, "rawvideo")
    listed = {s.camera_id: s for s in ops.list_status(ListStatus()).items}
    assert listed[gid].state is CameraState.RUNNING and listed[station.yard.id].state is CameraState.INACTIVE

    stopped = ops.stop_camera(StopCamera(gid, timeout=2.0))
    assert stopped.state is CameraState.STOPPED and stopped.pid is None
    assert stopped.last_exit is not None and stopped.last_exit.code == 0  # a clean TERM stop
    assert not psutil.pid_exists(started.pid) or psutil.Process(started.pid).status() == psutil.STATUS_ZOMBIE
    refused(lambda: ops.stop_camera(StopCamera(gid)), ErrorCode.INVALID_STATE, "not running")


def test_restart_deactivate_activate(ops: StationOperations, station: Station) -> None:
    gid = station.gate.id
    first = ops.restart_camera(CameraRef(gid))  # a stopped camera: restart starts it
    first = running_status(ops, gid)
    second = ops.restart_camera(CameraRef(gid))
    assert second.pid != first.pid
    second = running_status(ops, gid, other_than=first.pid)
    assert second.pid != first.pid

    off = ops.deactivate_camera(CameraRef(gid))
    assert (off.state, off.active, off.pid) == (CameraState.INACTIVE, False, None)
    assert not station.admin.get_camera(gid).active
    assert ops.deactivate_camera(CameraRef(gid)) .state is CameraState.INACTIVE  # idempotent
    refused(lambda: ops.start_camera(CameraRef(gid)), ErrorCode.INVALID_STATE, "inactive")
    refused(lambda: ops.restart_camera(CameraRef(gid)), ErrorCode.INVALID_STATE, "inactive")
    refused(lambda: ops.stop_camera(StopCamera(gid)), ErrorCode.INVALID_STATE, "not running")

    on = ops.activate_camera(CameraRef(gid))
    assert (on.state, on.active) == (CameraState.STOPPED, True)
    assert ops.activate_camera(CameraRef(gid)) == on  # idempotent
    assert station.admin.get_camera(gid).active


def test_a_configuration_error_ends_in_failed_and_can_be_stopped(ops: StationOperations, station: Station) -> None:
    did = station.dock.id
    ops.start_camera(CameraRef(did))
    failed = wait_for(lambda: (s := ops.camera_status(CameraRef(did))).state is CameraState.FAILED and s,
                      15.0, "the missing file to fail the worker")
    assert failed.last_exit is not None and failed.last_exit.code == 78 and failed.pid is None
    cleared = ops.stop_camera(StopCamera(did))
    assert cleared.state is CameraState.STOPPED


def test_lifecycle_argument_checks(ops: StationOperations, station: Station) -> None:
    for bad in (0, -1, 61, "2"):
        refused(lambda bad=bad: ops.stop_camera(StopCamera(station.gate.id, timeout=bad)), ErrorCode.VALIDATION,
                "timeout")
