"""Small in-memory implementations of StationOperations for the rollout tests (no tests here).

Both paths of a fake station share one :class:`FakeState`, as the real legacy and
domain implementations share one database. Faults are injected per operation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from app.domain import (
    AlertRule,
    CameraState,
    Comparator,
    Conflict,
    InvalidState,
    NotFound,
    Unavailable,
)
from app.domain.errors import FieldError, ValidationError
from app.domain.operations import (
    CameraLogs,
    CameraRef,
    CameraStats,
    CameraStatus,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    ProbeResult,
    RuleResult,
    Snapshot,
    StatsRequest,
    StatusList,
    StopCamera,
    UpdateRule,
)


class NoSample(random.Random):
    """Shadow sampling off unless a test sets the rate to 1.0 (keeps call counts exact)."""

    def random(self) -> float:
        return 0.999999


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@dataclass
class FakeCam:
    name: str
    active: bool = True
    state: CameraState = CameraState.STOPPED
    restarts: int = 0


@dataclass
class FakeState:
    cameras: dict[int, FakeCam] = field(default_factory=dict)
    rules: dict[int, AlertRule] = field(default_factory=dict)
    next_rule: int = 1

    @classmethod
    def with_cameras(cls, n: int, inactive: tuple[int, ...] = ()) -> FakeState:
        st = cls()
        for i in range(1, n + 1):
            st.cameras[i] = FakeCam(f"cam{i}", active=i not in inactive,
                                    state=CameraState.INACTIVE if i in inactive else CameraState.STOPPED)
        return st


class FakeOps:
    """A deterministic station over a :class:`FakeState`; ``fail[op]`` makes ``op`` raise."""

    def __init__(self, state: FakeState, label: str = "fake"):
        self.state = state
        self.label = label
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, Callable[[], BaseException]] = {}
        self.tamper: dict[str, Callable[[Any], Any]] = {}  # op -> result transform (divergence)

    def _enter(self, op: str, req: Any) -> None:
        self.calls.append((op, req))
        if op in self.fail:
            raise self.fail[op]()

    def _out(self, op: str, result: Any) -> Any:
        t = self.tamper.get(op)
        return t(result) if t else result

    def count(self, op: str) -> int:
        return sum(1 for o, _ in self.calls if o == op)

    def _cam(self, cid: int) -> FakeCam:
        cam = self.state.cameras.get(cid)
        if cam is None:
            raise NotFound(f"camera {cid} does not exist")
        return cam

    def _status(self, cid: int) -> CameraStatus:
        cam = self._cam(cid)
        running = cam.state is CameraState.RUNNING
        return CameraStatus(camera_id=cid, name=cam.name, state=cam.state, active=cam.active,
                            pid=4242 if running else None, uptime=1.5 if running else None,
                            restarts=cam.restarts, fps=15.0 if running else None)

    # -- the thirteen operations
    def create_rule(self, req: CreateRule) -> RuleResult:
        self._enter("create_rule", req)
        rule = req.rule.validated()
        if any(r.name == rule.name for r in self.state.rules.values()):
            raise Conflict(f"a rule named {rule.name!r} exists")
        rule = rule.with_changes(id=self.state.next_rule, version=1)
        self.state.rules[rule.id] = rule
        self.state.next_rule += 1
        return self._out("create_rule", RuleResult(rule))

    def update_rule(self, req: UpdateRule) -> RuleResult:
        self._enter("update_rule", req)
        rule = self.state.rules.get(req.rule_id)
        if rule is None:
            raise NotFound(f"rule {req.rule_id} does not exist")
        if req.expected_version is not None and req.expected_version != rule.version:
            raise Conflict(f"rule {req.rule_id} is at version {rule.version}")
        known = {f.name for f in fields(AlertRule)} - {"id", "version"}
        bad = [k for k in req.changes if k not in known]
        if bad:
            raise ValidationError([FieldError(k, "unknown field") for k in bad], subject="changes")
        new = rule.with_changes(**req.changes).validated().with_changes(version=rule.version + 1)
        self.state.rules[rule.id] = new
        return self._out("update_rule", RuleResult(new))

    def start_camera(self, req: CameraRef) -> CameraStatus:
        self._enter("start_camera", req)
        cam = self._cam(req.camera_id)
        if not cam.active:
            raise InvalidState(f"camera {req.camera_id} is inactive")
        cam.state = CameraState.RUNNING
        return self._out("start_camera", self._status(req.camera_id))

    def stop_camera(self, req: StopCamera) -> CameraStatus:
        self._enter("stop_camera", req)
        cam = self._cam(req.camera_id)
        if cam.active:
            cam.state = CameraState.STOPPED
        return self._out("stop_camera", self._status(req.camera_id))

    def restart_camera(self, req: CameraRef) -> CameraStatus:
        self._enter("restart_camera", req)
        cam = self._cam(req.camera_id)
        if not cam.active:
            raise InvalidState(f"camera {req.camera_id} is inactive")
        cam.state = CameraState.RUNNING
        cam.restarts += 1
        return self._out("restart_camera", self._status(req.camera_id))

    def camera_status(self, req: CameraRef) -> CameraStatus:
        self._enter("camera_status", req)
        return self._out("camera_status", self._status(req.camera_id))

    def list_status(self, req: ListStatus) -> StatusList:
        self._enter("list_status", req)
        items = tuple(self._status(i) for i, c in sorted(self.state.cameras.items())
                      if c.active or not req.active_only)
        return self._out("list_status", StatusList(items))

    def activate_camera(self, req: CameraRef) -> CameraStatus:
        self._enter("activate_camera", req)
        cam = self._cam(req.camera_id)
        if not cam.active:
            cam.active, cam.state = True, CameraState.STOPPED
        return self._out("activate_camera", self._status(req.camera_id))

    def deactivate_camera(self, req: CameraRef) -> CameraStatus:
        self._enter("deactivate_camera", req)
        cam = self._cam(req.camera_id)
        cam.active, cam.state = False, CameraState.INACTIVE
        return self._out("deactivate_camera", self._status(req.camera_id))

    def camera_logs(self, req: LogsRequest) -> CameraLogs:
        self._enter("camera_logs", req)
        self._cam(req.camera_id)
        return self._out("camera_logs", CameraLogs(req.camera_id, ()))

    def camera_snapshot(self, req: CameraRef) -> Snapshot:
        self._enter("camera_snapshot", req)
        cam = self._cam(req.camera_id)
        if cam.state is not CameraState.RUNNING:
            raise Unavailable(f"camera {req.camera_id} has no frame")
        return self._out("camera_snapshot", Snapshot(req.camera_id, 320, 180, 1.0, len(self.calls), PNG))

    def probe_camera(self, req: ProbeRequest) -> ProbeResult:
        self._enter("probe_camera", req)
        self._cam(req.camera_id)
        return self._out("probe_camera", ProbeResult(req.camera_id, True, "h264", 640, 360, 15.0, "yuv420p",
                                                     elapsed=0.01 * len(self.calls)))

    def camera_stats(self, req: StatsRequest) -> CameraStats:
        self._enter("camera_stats", req)
        cam = self._cam(req.camera_id)
        running = cam.state is CameraState.RUNNING
        return self._out("camera_stats", CameraStats(req.camera_id, req.window_s, running,
                                                     pid=4242 if running else None, cpu_percent=3.0))


def sample_rule(name: str = "low fps") -> AlertRule:
    return AlertRule(name=name, metric="fps", comparator=Comparator.LT, threshold=5.0)


def fake_pair(n_cameras: int = 8) -> tuple[FakeOps, FakeOps, FakeState]:
    st = FakeState.with_cameras(n_cameras)
    return FakeOps(st, "legacy"), FakeOps(st, "domain"), st


def keys_for(state: FakeState) -> Callable[[], dict[str, list[str]]]:
    def provide() -> dict[str, list[str]]:
        return {"camera": [f"camera:{i}" for i in state.cameras], "rule": [f"rule:{i}" for i in state.rules]}

    return provide
