"""Both implementations of the operations against a fake supervisor, with no processes.

The supervisor is an in-memory fake that keeps worker states and writes real
preview slots. The same cases run against the legacy and the domain
implementation (``world`` is parametrized) and must give the same answers. The
domain path runs on the in-memory store (``tests/support/memory_store.py``: no
database, no migrations); the legacy path is transaction scripts on an engine,
so it runs on a SQLite store, and so do the cases that compare the two on the
same data. The contract suite (``tests/contract``) runs both on real parts.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from app.domain import (
    AlertRule,
    Camera,
    CameraState,
    Comparator,
    ErrorCode,
    Notify,
    OperationError,
    TargetKind,
)
from app.domain.operations import (
    CameraRef,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    SideEffectFailure,
    SnapshotRequest,
    StationOperations,
    StatsRequest,
    StopCamera,
    UpdateRule,
)
from app.legacy import LegacyOperations
from app.services import DomainOperations, HeartbeatHistory, StationAdmin, spec_for
from app.store import Store, open_store
from app.supervisor.model import (
    AlreadyRunning,
    ExitInfo,
    LogLine,
    NotRunning,
    ProcessStats,
    SupervisorEvent,
    WorkerSpec,
    WorkerState,
    WorkerStatus,
)
from app.worker.preview import PreviewWriter
from tests.support.memory_store import MemoryStore


class FakeSupervisor:
    """In-memory stand-in for :class:`app.supervisor.Supervisor` (the subset the operations use)."""

    def __init__(self, preview_dir: Path) -> None:
        self.preview_dir = preview_dir
        self._st: dict[int, WorkerStatus] = {}
        self.specs: dict[int, WorkerSpec] = {}
        self.calls: list[tuple[str, int]] = []
        self.fail: dict[str, BaseException] = {}
        self._logs: dict[int, list[LogLine]] = {}
        self._subs: list[Callable[[SupervisorEvent], None]] = []
        self._writers: dict[int, PreviewWriter] = {}
        self._frames: dict[int, np.ndarray] = {}
        self._pid = 4000

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise self.fail.pop(name)

    def _log(self, cid: int, text: str) -> None:
        self._logs.setdefault(cid, []).append(LogLine(time.time(), "supervisor", "INFO", text))

    def start_worker(self, spec: WorkerSpec) -> WorkerStatus:
        self._check("start_worker")
        cur = self.status(spec.camera_id)
        if cur.state not in (WorkerState.STOPPED, WorkerState.FAILED):
            raise AlreadyRunning(f"camera {spec.camera_id}: worker is already {cur.state.value}")
        self.calls.append(("start", spec.camera_id))
        self.specs[spec.camera_id] = spec
        self._pid += 1
        st = WorkerStatus(spec.camera_id, WorkerState.RUNNING, pid=self._pid, started_at=time.time(),
                          uptime=0.0, restarts=cur.restarts, last_exit=cur.last_exit,
                          preview_path=str(self.preview_dir / f"cam{spec.camera_id}.preview"))
        self._st[spec.camera_id] = st
        self._log(spec.camera_id, f"start requested ({spec.name}: {spec.source})")
        return st

    def stop_worker(self, camera_id: int, timeout: float | None = None) -> WorkerStatus:
        self._check("stop_worker")
        cur = self.status(camera_id)
        if cur.state is WorkerState.STOPPED:
            raise NotRunning(f"camera {camera_id}: worker is not running")
        self.calls.append(("stop", camera_id))
        w = self._writers.pop(camera_id, None)
        if w is not None:
            w.close()
        st = WorkerStatus(camera_id, WorkerState.STOPPED, restarts=cur.restarts,
                          last_exit=ExitInfo(0, None, "stopped by request", time.time()))
        self._st[camera_id] = st
        self._log(camera_id, "stopped")
        return st

    def restart_worker(self, spec: WorkerSpec) -> WorkerStatus:
        self._check("restart_worker")
        self.calls.append(("restart", spec.camera_id))
        if self.status(spec.camera_id).state is not WorkerState.STOPPED:
            self.stop_worker(spec.camera_id)
        self.calls.pop()
        return self.start_worker(spec)

    def status(self, camera_id: int) -> WorkerStatus:
        self._check("status")
        return self._st.get(camera_id, WorkerStatus(camera_id, WorkerState.STOPPED))

    def statuses(self) -> dict[int, WorkerStatus]:
        self._check("status")
        return dict(self._st)

    def logs(self, camera_id: int, limit: int) -> list[LogLine]:
        return self._logs.get(camera_id, [])[-limit:]

    def stats(self, camera_id: int) -> ProcessStats | None:
        st = self.status(camera_id)
        if st.pid is None:
            return None
        return ProcessStats(st.pid, 12.5, 50_000_000, 4, 0, time.time())

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        self._subs.append(callback)
        return lambda: self._subs.remove(callback)

    def preview_path(self, camera_id: int) -> Path | None:
        st = self.status(camera_id)
        return Path(st.preview_path) if st.preview_path and st.pid else None

    # -- test controls

    def set_state(self, camera_id: int, state: WorkerState, **fields: Any) -> None:
        self._st[camera_id] = replace(self.status(camera_id), state=state, **fields)

    def heartbeat(self, camera_id: int, **hb: Any) -> None:
        st = self.status(camera_id)
        self._st[camera_id] = replace(st, fps=hb.get("fps"), decoded=hb.get("decoded", 0),
                                      dropped=hb.get("dropped", 0), motion=hb.get("motion"), source="up")
        ev = SupervisorEvent("heartbeat", camera_id, st.state, {"type": "heartbeat", **hb}, time.time())
        for cb in list(self._subs):
            cb(ev)

    def take_snapshot(self, camera_id: int, fmt: str = "png", timeout: float = 5.0) -> tuple[dict[str, Any], bytes]:
        # The real worker encodes its latest decoded frame with the same app.worker.evidence.encode_image.
        from app.domain.worker import EvidenceRequestError
        from app.worker.evidence import encode_image

        if self.status(camera_id).pid is None:
            raise EvidenceRequestError(f"camera {camera_id}: no worker is running", "not_running")
        image = self._frames.get(camera_id)
        if image is None:
            raise EvidenceRequestError(f"camera {camera_id}: no frame decoded yet", "refused")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        h, wd, _ = image.shape
        return ({"width": wd, "height": h, "taken_at": 1234.5, "seq": 2}, encode_image(frame, fmt))

    def publish_frame(self, camera_id: int, image: np.ndarray) -> None:
        path = self.preview_path(camera_id)
        assert path is not None
        self._frames[camera_id] = image
        w = self._writers.get(camera_id)
        if w is None:
            w = self._writers[camera_id] = PreviewWriter(path)
        w.write_rgb(image, ts=1234.5)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


class FakeProbe:
    def __init__(self) -> None:
        self.answer: dict[str, Any] = {"ok": True, "codec": "h264", "width": 1280, "height": 720,
                                       "fps": 25.0, "pix_fmt": "yuv420p", "duration": None}
        self.raises: BaseException | None = None
        self.calls: list[tuple[str, float]] = []

    def probe(self, source: str, timeout: float) -> dict[str, Any]:
        self.calls.append((source, timeout))
        if self.raises is not None:
            raise self.raises
        return dict(self.answer)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class World:
    """The parts an implementation is built on. ``kind`` "domain" keeps the data in memory;
    "legacy" (and any case that builds both on the same data) in a SQLite store."""

    def __init__(self, tmp: Path, kind: str) -> None:
        self.store: Store | MemoryStore = (
            MemoryStore() if kind == "domain" else open_store(f"sqlite:///{tmp / 'station.db'}"))
        self.sup = FakeSupervisor(tmp)
        self.probe = FakeProbe()
        self.clock = FakeClock()
        self.history = HeartbeatHistory(clock=self.clock).attach(self.sup)
        self.admin = StationAdmin(self.store, self.sup)
        self.gate = self.admin.add_camera(Camera("Gate", "test://moving"))
        self.yard = self.admin.add_camera(Camera("Yard", "rtsp://u:secret@10.0.0.9/s", active=False))
        self.ops = self.build(kind)

    @property
    def sql(self) -> Store:
        assert isinstance(self.store, Store), "this world keeps its data in memory"
        return self.store

    def build(self, kind: str) -> StationOperations:
        if kind == "legacy":
            return LegacyOperations(self.sql.engine, self.sup, self.probe, self.history, clock=self.clock)
        return DomainOperations(self.store, self.sup, self.probe, self.history, clock=self.clock)

    def close(self) -> None:
        self.history.detach()
        self.sup.close()
        self.store.dispose()


@pytest.fixture(params=["legacy", "domain"])
def world(request, tmp_path: Path):
    w = World(tmp_path, request.param)
    yield w
    w.close()


def code_of(fn: Callable[[], Any]) -> tuple[ErrorCode, str]:
    with pytest.raises(OperationError) as ei:
        fn()
    return ei.value.code, ei.value.message


def rule(name: str = "low fps", **kw: Any) -> AlertRule:
    return AlertRule(name=name, metric=kw.pop("metric", "fps"), comparator=kw.pop("comparator", Comparator.LT),
                     threshold=kw.pop("threshold", 5.0), **kw)


# ---------------------------------------------------------------- protocol


def test_both_implementations_satisfy_the_protocol(world: World) -> None:
    assert isinstance(world.ops, StationOperations)


# ---------------------------------------------------------------- rules


def test_create_rule_assigns_id_and_version_one_and_persists(world: World) -> None:
    res = world.ops.create_rule(CreateRule(rule(target=TargetKind.CAMERA, camera_id=world.gate.id, version=7)))
    assert res.rule.id is not None and res.rule.version == 1
    assert res.rule.target is TargetKind.CAMERA and res.rule.camera_id == world.gate.id
    assert world.admin.get_rule(res.rule.id) == res.rule


def test_create_rule_validation_names_every_bad_field(world: World) -> None:
    bad = rule(metric="bogus", for_seconds=-1.0, schedule="someday")
    with pytest.raises(OperationError) as ei:
        world.ops.create_rule(CreateRule(bad))
    assert ei.value.code is ErrorCode.VALIDATION
    fields = {e["field"] for e in ei.value.details["errors"]}
    assert fields == {"metric", "for_seconds", "schedule"}
    assert world.admin.list_rules() == []


def test_create_rule_for_a_missing_camera_is_a_validation_error(world: World) -> None:
    code, msg = code_of(lambda: world.ops.create_rule(CreateRule(rule(target=TargetKind.CAMERA, camera_id=999))))
    assert code is ErrorCode.VALIDATION and "camera_id" in msg and "999" in msg


def test_create_rule_with_a_taken_name_conflicts(world: World) -> None:
    world.ops.create_rule(CreateRule(rule("dup")))
    code, msg = code_of(lambda: world.ops.create_rule(CreateRule(rule(" dup "))))
    assert code is ErrorCode.CONFLICT and "'dup'" in msg
    assert len(world.admin.list_rules()) == 1


def test_update_rule_changes_fields_and_bumps_version(world: World) -> None:
    r = world.ops.create_rule(CreateRule(rule())).rule
    res = world.ops.update_rule(UpdateRule(r.id, {"threshold": 3, "comparator": "<=",
                                                  "notify": {"sound": True, "command": ["notify-send", "x"]}},
                                           expected_version=1))
    assert res.rule.version == 2 and res.rule.threshold == 3.0 and res.rule.comparator is Comparator.LE
    assert res.rule.notify.sound and res.rule.notify.command == ("notify-send", "x")
    assert world.admin.get_rule(r.id) == res.rule
    assert world.ops.update_rule(UpdateRule(r.id, {"enabled": False})).rule.version == 3


def test_update_rule_refusals(world: World) -> None:
    r = world.ops.create_rule(CreateRule(rule("a"))).rule
    world.ops.create_rule(CreateRule(rule("b")))
    assert code_of(lambda: world.ops.update_rule(UpdateRule(999, {"threshold": 1})))[0] is ErrorCode.NOT_FOUND
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"threshold": 1}, expected_version=5)))
    assert code is ErrorCode.CONFLICT and "version 1" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"nonsense": 1, "id": 3})))
    assert code is ErrorCode.VALIDATION and "nonsense" in msg and "id" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"threshold": "high"})))
    assert code is ErrorCode.VALIDATION and "threshold" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {})))
    assert code is ErrorCode.VALIDATION and "changes" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"notify": {"pager": 1}})))
    assert code is ErrorCode.VALIDATION and "notify.pager" in msg
    assert code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"name": "b"})))[0] is ErrorCode.CONFLICT
    assert world.admin.get_rule(r.id).version == 1  # nothing stuck


# ---------------------------------------------------------------- lifecycle


def test_start_stop_restart_cycle(world: World) -> None:
    gid = world.gate.id
    st = world.ops.start_camera(CameraRef(gid))
    assert st.state is CameraState.RUNNING and st.pid and st.name == "Gate" and st.active
    assert world.sup.specs[gid] == spec_for(world.gate)
    code, msg = code_of(lambda: world.ops.start_camera(CameraRef(gid)))
    assert code is ErrorCode.INVALID_STATE and "already running" in msg
    pid = st.pid
    st = world.ops.restart_camera(CameraRef(gid))
    assert st.state is CameraState.RUNNING and st.pid != pid
    st = world.ops.stop_camera(StopCamera(gid, timeout=1.0))
    assert st.state is CameraState.STOPPED and st.pid is None
    assert st.last_exit is not None and st.last_exit.code == 0
    assert code_of(lambda: world.ops.stop_camera(StopCamera(gid)))[0] is ErrorCode.INVALID_STATE
    # restart of a stopped camera starts it
    assert world.ops.restart_camera(CameraRef(gid)).state is CameraState.RUNNING


def test_lifecycle_refusals(world: World) -> None:
    yid = world.yard.id
    for fn in (world.ops.start_camera, world.ops.restart_camera):
        code, msg = code_of(lambda fn=fn: fn(CameraRef(yid)))
        assert code is ErrorCode.INVALID_STATE and "inactive" in msg
        assert code_of(lambda fn=fn: fn(CameraRef(404)))[0] is ErrorCode.NOT_FOUND
    assert code_of(lambda: world.ops.stop_camera(StopCamera(404)))[0] is ErrorCode.NOT_FOUND
    code, msg = code_of(lambda: world.ops.stop_camera(StopCamera(world.gate.id, timeout=-1)))
    assert code is ErrorCode.VALIDATION and "timeout" in msg
    assert world.sup.calls == []


def test_a_failed_worker_may_be_started_by_hand(world: World) -> None:
    world.sup.set_state(world.gate.id, WorkerState.FAILED, error="exit 78")
    assert world.ops.camera_status(CameraRef(world.gate.id)).state is CameraState.FAILED
    assert world.ops.start_camera(CameraRef(world.gate.id)).state is CameraState.RUNNING


def test_supervisor_refusals_become_typed_answers(world: World) -> None:
    world.sup.fail["start_worker"] = AlreadyRunning("raced")
    assert code_of(lambda: world.ops.start_camera(CameraRef(world.gate.id)))[0] is ErrorCode.INVALID_STATE
    from app.supervisor.model import SpawnError

    world.sup.fail["start_worker"] = SpawnError("no such file: /nope/python")
    code, msg = code_of(lambda: world.ops.start_camera(CameraRef(world.gate.id)))
    assert code is ErrorCode.UNAVAILABLE and "/nope/python" in msg


# ---------------------------------------------------------------- status and activation


def test_status_maps_active_flag_and_worker_state(world: World) -> None:
    assert world.ops.camera_status(CameraRef(world.gate.id)).state is CameraState.STOPPED
    assert world.ops.camera_status(CameraRef(world.yard.id)).state is CameraState.INACTIVE
    world.sup.set_state(world.yard.id, WorkerState.STOPPING, pid=77)  # deactivated while it still runs
    assert world.ops.camera_status(CameraRef(world.yard.id)).state is CameraState.STOPPING
    assert code_of(lambda: world.ops.camera_status(CameraRef(404)))[0] is ErrorCode.NOT_FOUND
    items = world.ops.list_status(ListStatus()).items
    assert [(s.camera_id, s.name) for s in items] == [(world.gate.id, "Gate"), (world.yard.id, "Yard")]
    assert [s.camera_id for s in world.ops.list_status(ListStatus(active_only=True)).items] == [world.gate.id]


def test_activate_and_deactivate(world: World) -> None:
    yid, gid = world.yard.id, world.gate.id
    st = world.ops.activate_camera(CameraRef(yid))
    assert st.active and st.state is CameraState.STOPPED
    assert world.ops.activate_camera(CameraRef(yid)) == st  # idempotent
    world.ops.start_camera(CameraRef(gid))
    st = world.ops.deactivate_camera(CameraRef(gid))
    assert st.state is CameraState.INACTIVE and not st.active
    assert ("stop", gid) in world.sup.calls and not world.admin.get_camera(gid).active
    assert world.ops.deactivate_camera(CameraRef(gid)).state is CameraState.INACTIVE
    for fn in (world.ops.activate_camera, world.ops.deactivate_camera):
        assert code_of(lambda fn=fn: fn(CameraRef(404)))[0] is ErrorCode.NOT_FOUND


# ---------------------------------------------------------------- observation


def test_logs(world: World) -> None:
    gid = world.gate.id
    assert world.ops.camera_logs(LogsRequest(gid)).lines == ()
    world.ops.start_camera(CameraRef(gid))
    world.ops.stop_camera(StopCamera(gid))
    logs = world.ops.camera_logs(LogsRequest(gid, limit=1))
    assert logs.camera_id == gid and [ln.text for ln in logs.lines] == ["stopped"]
    for limit in (0, 5001, 2.5, True):
        code, msg = code_of(lambda limit=limit: world.ops.camera_logs(LogsRequest(gid, limit=limit)))
        assert code is ErrorCode.VALIDATION and "limit" in msg
    assert code_of(lambda: world.ops.camera_logs(LogsRequest(404)))[0] is ErrorCode.NOT_FOUND


def test_snapshot_is_a_png_or_jpeg_of_the_latest_frame(world: World) -> None:
    gid = world.gate.id
    assert code_of(lambda: world.ops.camera_snapshot(CameraRef(gid)))[0] is ErrorCode.INVALID_STATE
    world.ops.start_camera(CameraRef(gid))
    code, msg = code_of(lambda: world.ops.camera_snapshot(CameraRef(gid)))
    assert code is ErrorCode.UNAVAILABLE and "frame" in msg
    image = np.random.default_rng(1).integers(0, 256, size=(36, 64, 3), dtype=np.uint8)
    world.sup.publish_frame(gid, image)
    snap = world.ops.camera_snapshot(CameraRef(gid))
    assert (snap.width, snap.height, snap.taken_at, snap.seq) == (64, 36, 1234.5, 2)
    with av.open(io.BytesIO(snap.png), format="png_pipe") as c:
        frame = next(c.decode(video=0))
    assert np.array_equal(frame.to_ndarray(format="rgb24"), image)
    jpeg = world.ops.camera_snapshot(SnapshotRequest(gid, format="jpeg"))
    assert jpeg.format == "jpeg" and jpeg.content_type == "image/jpeg" and jpeg.image[:3] == b"\xff\xd8\xff"
    assert jpeg.png == b"" and jpeg.jpeg == jpeg.image and snap.image == snap.png
    code, msg = code_of(lambda: world.ops.camera_snapshot(SnapshotRequest(gid, format="gif")))
    assert code is ErrorCode.VALIDATION and "format" in msg
    assert code_of(lambda: world.ops.camera_snapshot(CameraRef(404)))[0] is ErrorCode.NOT_FOUND


def test_probe(world: World) -> None:
    yid = world.yard.id
    world.clock.t = 1000.0
    res = world.ops.probe_camera(ProbeRequest(yid, timeout=3))
    assert res.ok and (res.codec, res.width, res.height, res.fps, res.pix_fmt) == ("h264", 1280, 720, 25.0, "yuv420p")
    assert res.error is None and world.probe.calls[-1] == ("rtsp://u:secret@10.0.0.9/s", 3)
    world.probe.answer = {"ok": False, "error": "cannot open rtsp://u:***@10.0.0.9/s: Connection refused"}
    res = world.ops.probe_camera(ProbeRequest(yid))
    assert not res.ok and res.codec is None and "Connection refused" in res.error
    from app.domain.errors import Unavailable

    world.probe.raises = Unavailable("probe did not finish within its 3 s timeout")
    code, msg = code_of(lambda: world.ops.probe_camera(ProbeRequest(yid, timeout=3)))
    assert code is ErrorCode.UNAVAILABLE and "3 s" in msg
    for t in (0, 61, "5"):
        assert code_of(lambda t=t: world.ops.probe_camera(ProbeRequest(yid, timeout=t)))[0] is ErrorCode.VALIDATION
    assert code_of(lambda: world.ops.probe_camera(ProbeRequest(404)))[0] is ErrorCode.NOT_FOUND


def test_stats_over_a_window(world: World) -> None:
    gid = world.gate.id
    stopped = world.ops.camera_stats(StatsRequest(gid))
    assert not stopped.running and stopped.pid is None and stopped.samples == 0 and stopped.fps_avg is None
    world.ops.start_camera(CameraRef(gid))
    for t, fps, motion in ((900.0, 1.0, 0.9), (990.0, 15.0, 0.1), (995.0, 12.0, 0.3), (1000.0, 9.0, 0.2)):
        world.clock.t = t
        world.sup.heartbeat(gid, fps=fps, decoded=int(t), dropped=2, motion=motion)
    s = world.ops.camera_stats(StatsRequest(gid, window_s=30))
    assert s.running and s.pid == world.sup.status(gid).pid
    assert (s.cpu_percent, s.rss_bytes, s.threads, s.children) == (12.5, 50_000_000, 4, 0)
    assert s.samples == 3 and s.fps_avg == pytest.approx(12.0) and s.fps_min == 9.0
    assert s.motion_avg == pytest.approx(0.2) and s.decoded == 1000 and s.dropped == 2 and s.window_s == 30.0
    assert world.ops.camera_stats(StatsRequest(gid, window_s=3600)).samples == 4
    for w in (0, -1, 3601, None):
        assert code_of(lambda w=w: world.ops.camera_stats(StatsRequest(gid, window_s=w)))[0] is ErrorCode.VALIDATION
    assert code_of(lambda: world.ops.camera_stats(StatsRequest(404)))[0] is ErrorCode.NOT_FOUND


# ---------------------------------------------------------------- both paths give the same answers


def _answer(read: Callable[[StationOperations], Any], ops: StationOperations) -> Any:
    try:
        return ("ok", read(ops))
    except OperationError as e:
        return ("error", e.code, e.message, e.details)


def test_legacy_and_domain_answer_alike(tmp_path: Path) -> None:
    w = World(tmp_path, "legacy")
    try:
        legacy, domain = w.ops, w.build("domain")
        r = legacy.create_rule(CreateRule(rule("x"))).rule
        w.sup.start_worker(spec_for(w.gate))
        w.sup.heartbeat(w.gate.id, fps=10.0, decoded=5, motion=0.5)
        reads: list[Callable[[StationOperations], Any]] = [
            lambda o: o.camera_status(CameraRef(w.gate.id)),
            lambda o: o.camera_status(CameraRef(w.yard.id)),
            lambda o: o.camera_status(CameraRef(0)),
            lambda o: o.list_status(ListStatus()),
            lambda o: o.list_status(ListStatus(active_only=True)),
            lambda o: o.camera_logs(LogsRequest(w.gate.id, 10)),
            lambda o: o.camera_logs(LogsRequest(w.gate.id, 0)),
            lambda o: o.camera_stats(StatsRequest(w.gate.id, 10)),
            lambda o: o.camera_stats(StatsRequest(w.gate.id, -3)),
            lambda o: o.probe_camera(ProbeRequest(w.yard.id)),
            lambda o: o.probe_camera(ProbeRequest(w.yard.id, 100)),
            lambda o: o.camera_snapshot(CameraRef(w.gate.id)),
            lambda o: o.camera_snapshot(CameraRef(w.yard.id)),
            lambda o: o.start_camera(CameraRef(w.gate.id)),
            lambda o: o.start_camera(CameraRef(w.yard.id)),
            lambda o: o.stop_camera(StopCamera(w.yard.id)),
            lambda o: o.stop_camera(StopCamera(w.gate.id, 0)),
            lambda o: o.restart_camera(CameraRef(w.yard.id)),
            lambda o: o.activate_camera(CameraRef(5)),
            lambda o: o.deactivate_camera(CameraRef(5)),
            lambda o: o.create_rule(CreateRule(rule("x"))),
            lambda o: o.create_rule(CreateRule(rule("", metric="nope", threshold=float("nan")))),
            lambda o: o.create_rule(CreateRule(rule("y", target=TargetKind.STATION, camera_id=w.gate.id))),
            lambda o: o.update_rule(UpdateRule(r.id, {"threshold": 1}, expected_version=9)),
            lambda o: o.update_rule(UpdateRule(r.id, {"bogus": 1})),
            lambda o: o.update_rule(UpdateRule(r.id, {"cooldown": -5})),
            lambda o: o.update_rule(UpdateRule(77, {"threshold": 1})),
        ]
        for i, read in enumerate(reads):
            assert _answer(read, legacy) == _answer(read, domain), f"case {i}"
    finally:
        w.close()


# ---------------------------------------------------------------- side effects (domain path)


def _commit_fails(w: World) -> MemoryStore:
    """The world's data, through a store whose commits fail (disk full, lost connection...)."""
    assert isinstance(w.store, MemoryStore)
    return w.store.failing_commits(OSError("disk I/O error"))


def test_failure_after_stopping_a_worker_is_a_side_effect_failure(tmp_path: Path) -> None:
    w = World(tmp_path, "domain")
    try:
        w.ops.start_camera(CameraRef(w.gate.id))
        broken = DomainOperations(_commit_fails(w), w.sup, w.probe, w.history)
        with pytest.raises(SideEffectFailure) as ei:
            broken.deactivate_camera(CameraRef(w.gate.id))
        assert ei.value.op == "deactivate_camera" and isinstance(ei.value.cause, OSError)
        assert w.sup.status(w.gate.id).state is WorkerState.STOPPED  # the side effect happened
        assert w.admin.get_camera(w.gate.id).active  # the write was rolled back
    finally:
        w.close()


def test_failure_after_a_commit_is_a_side_effect_failure(tmp_path: Path) -> None:
    w = World(tmp_path, "domain")
    try:
        w.sup.fail["status"] = ConnectionError("supervisor gone")
        with pytest.raises(SideEffectFailure) as ei:
            w.ops.activate_camera(CameraRef(w.yard.id))
        assert ei.value.op == "activate_camera"
        assert w.admin.get_camera(w.yard.id).active
    finally:
        w.close()


def test_failures_before_any_side_effect_propagate_unchanged(tmp_path: Path) -> None:
    w = World(tmp_path, "domain")
    try:
        w.sup.fail["status"] = ConnectionError("supervisor gone")
        with pytest.raises(ConnectionError):
            w.ops.start_camera(CameraRef(w.gate.id))
        assert w.sup.calls == []
        broken = DomainOperations(_commit_fails(w), w.sup, w.probe, w.history)
        with pytest.raises(OSError, match="disk I/O"):
            broken.create_rule(CreateRule(rule()))
        assert w.admin.list_rules() == []
        with pytest.raises(OSError, match="disk I/O"):
            broken.activate_camera(CameraRef(w.yard.id))
        assert not w.admin.get_camera(w.yard.id).active
    finally:
        w.close()


def test_spec_for_carries_the_camera_settings(tmp_path: Path) -> None:
    cam = Camera("Dock", "/srv/clip.mp4", loop=True, max_fps=5, stall_timeout=3.0, id=9)
    spec = spec_for(cam, command=("python", "stub.py"))
    assert (spec.camera_id, spec.name, spec.source, spec.loop, spec.max_fps, spec.stall_timeout) == \
        (9, "Dock", "/srv/clip.mp4", True, 5, 3.0)
    assert spec.motion_threshold == 0.02 and spec.extra_args == ("--motion-warmup", "10")
    assert spec.command == ("python", "stub.py")
    with pytest.raises(ValueError, match="no id"):
        spec_for(replace(cam, id=None))


def test_legacy_update_rule_detects_a_write_between_its_read_and_its_update(tmp_path: Path) -> None:
    """The legacy script updates WHERE version = the version it read, so a concurrent change is a conflict."""
    import sqlite3

    from sqlalchemy import event

    w = World(tmp_path, "legacy")
    try:
        r = w.ops.create_rule(CreateRule(rule())).rule
        fired: list[bool] = []

        def meddle(conn, cursor, statement, params, context, executemany) -> None:
            if statement.lstrip().upper().startswith("UPDATE ALERT_RULES") and not fired:
                fired.append(True)
                other = sqlite3.connect(tmp_path / "station.db")
                other.execute("UPDATE alert_rules SET threshold = 42, version = version + 1 WHERE id = ?", (r.id,))
                other.commit()
                other.close()

        event.listen(w.sql.engine, "before_cursor_execute", meddle)
        code, msg = code_of(lambda: w.ops.update_rule(UpdateRule(r.id, {"threshold": 1}, expected_version=1)))
        assert fired and code is ErrorCode.CONFLICT and "meanwhile" in msg
        kept = w.admin.get_rule(r.id)
        assert (kept.threshold, kept.version) == (42.0, 2)  # the other writer's change survives
    finally:
        w.close()


def test_update_rule_patches_notification_settings(world: World) -> None:
    r = world.ops.create_rule(CreateRule(rule(notify=Notify(webhook_url="http://hooks.local/x", sound=True)))).rule
    v2 = world.ops.update_rule(UpdateRule(r.id, {"notify": {"command": ["logger", "fps low"]}})).rule
    assert v2.notify == Notify(webhook_url="http://hooks.local/x", command=("logger", "fps low"), sound=True)
    v3 = world.ops.update_rule(UpdateRule(r.id, {"notify": {"webhook_url": None, "command": None}})).rule
    assert v3.notify == Notify(sound=True)
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"notify": {"command": "rm -rf /"}})))
    assert code is ErrorCode.VALIDATION and "notify.command" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"notify": {"command": ["ok", ""]}})))
    assert code is ErrorCode.VALIDATION and "notify.command" in msg
    code, msg = code_of(lambda: world.ops.update_rule(UpdateRule(r.id, {"notify": "loud"})))
    assert code is ErrorCode.VALIDATION and "notify" in msg
    assert world.admin.get_rule(r.id) == v3


# ---------------------------------------------------------------- another writer between the checks and the commit


def _memory(w: World) -> MemoryStore:
    assert isinstance(w.store, MemoryStore)
    return w.store


def test_a_name_taken_between_the_check_and_the_commit_is_the_same_conflict(tmp_path: Path) -> None:
    w = World(tmp_path, "domain")
    try:
        store = _memory(w)

        def other_writer() -> None:
            with store.uow() as uow:
                uow.rules.add(rule("dup"))
                uow.cameras.add(Camera("Dock", "test://still"))
                uow.commit()

        store.before_next_commit(other_writer)
        code, msg = code_of(lambda: w.ops.create_rule(CreateRule(rule(" DUP "))))
        assert code is ErrorCode.CONFLICT and msg == "an alert rule named 'DUP' already exists"
        assert [r.name for r in w.admin.list_rules()] == ["dup"]
        store.before_next_commit(lambda: w.admin.update_camera(w.yard.id, {"name": "Quay"}))
        code, msg = code_of(lambda: w.admin.add_camera(Camera("quay", "test://moving")))
        assert code is ErrorCode.CONFLICT and msg == "a camera named 'quay' already exists"
        assert [c.name for c in w.admin.list_cameras()] == ["Gate", "Quay", "Dock"]
    finally:
        w.close()


def test_a_rule_changed_between_the_read_and_the_commit_is_a_conflict(tmp_path: Path) -> None:
    w = World(tmp_path, "domain")
    try:
        store = _memory(w)
        r = w.ops.create_rule(CreateRule(rule())).rule

        def other_writer() -> None:
            with store.uow() as uow:
                current = uow.rules.get(r.id)
                assert current is not None
                uow.rules.update(current.with_changes(threshold=42.0, version=2))
                uow.commit()

        store.before_next_commit(other_writer)
        code, msg = code_of(lambda: w.ops.update_rule(UpdateRule(r.id, {"threshold": 1}, expected_version=1)))
        assert code is ErrorCode.CONFLICT and "meanwhile" in msg
        kept = w.admin.get_rule(r.id)
        assert (kept.threshold, kept.version) == (42.0, 2)  # the other writer's change survives
    finally:
        w.close()
