"""The domain-service implementation of the station's thirteen operations.

Style: load entities through a unit of work and its repositories, decide with
the domain's rules, act through the :class:`SupervisorPort`, commit explicitly.
Business refusals are :class:`OperationError` subclasses with stable codes.
Just before a side effect (spawning or signalling a worker, committing) the
operation marks it in the call context (:func:`app.domain.effects.mark_side_effect`):
the rollout router never retries a call on legacy once it is marked, whatever
fails after it. An unexpected exception *after* a side effect is also raised as
:class:`SideEffectFailure`; one *before* any side effect propagates unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import fields, replace
from typing import Any

from app.domain.camera import Camera, CameraState
from app.domain.effects import mark_side_effect
from app.domain.errors import (
    Conflict,
    ConstraintViolation,
    FieldError,
    InvalidState,
    NotFound,
    OperationError,
    StaleWrite,
    ValidationError,
)
from app.domain.operations import (
    SNAPSHOT_TIMEOUT,
    CameraLogs,
    CameraRef,
    CameraStats,
    CameraStatus,
    CreateRule,
    ExitRecord,
    ListStatus,
    LogEntry,
    LogsRequest,
    ProbeRequest,
    ProbeResult,
    RuleResult,
    SideEffectFailure,
    Snapshot,
    SnapshotRequest,
    StatsRequest,
    StatusList,
    StopCamera,
    UpdateRule,
    check_range,
)
from app.domain.ports import HistoryPort, ProbePort, SupervisorPort, UnitOfWork, UnitOfWorkFactory
from app.domain.refusals import no_live_frame, snapshot_refusal, supervisor_refusal
from app.domain.rules import AlertRule, Notify
from app.domain.worker import (
    EvidenceRequestError,
    NotRunning,
    SupervisorError,
    WorkerState,
    WorkerStatus,
)
from app.services.specs import spec_for

Clock = Callable[[], float]

#: bounds of the request parameters: the request types' own (both implementations check them there)
LOGS_LIMIT_MAX = LogsRequest.LIMIT_MAX
PROBE_TIMEOUT_MAX = ProbeRequest.TIMEOUT_MAX
STATS_WINDOW_MAX = StatsRequest.WINDOW_MAX
STOP_TIMEOUT_MAX = StopCamera.TIMEOUT_MAX

__all__ = [
    "LOGS_LIMIT_MAX", "PROBE_TIMEOUT_MAX", "SNAPSHOT_TIMEOUT", "STATS_WINDOW_MAX", "STOP_TIMEOUT_MAX",
    "DomainOperations", "after_side_effect", "camera_state", "check_range", "probe_result",
    "camera_refusal", "rule_changes", "to_camera_status",
]
#: worker states in which a worker process exists (stats, snapshot)
PROCESS_STATES = frozenset({WorkerState.STARTING, WorkerState.RUNNING, WorkerState.STALLED,
                            WorkerState.STOPPING})
#: worker states from which ``start_camera`` may start (a failed worker may be retried by hand)
STARTABLE_STATES = frozenset({WorkerState.STOPPED, WorkerState.FAILED})
#: the rule fields ``update_rule`` may change
RULE_FIELDS = frozenset(f.name for f in fields(AlertRule)) - {"id", "version"}
NOTIFY_FIELDS = frozenset(f.name for f in fields(Notify))


# ---------------------------------------------------------------- shared pieces of the domain path


def camera_state(active: bool, worker: WorkerState) -> CameraState:
    """The camera's state: ``inactive`` when its flag is off and nothing runs, else the worker's."""
    if worker is WorkerState.STOPPED and not active:
        return CameraState.INACTIVE
    return CameraState(worker.value)


def to_camera_status(camera: Camera, ws: WorkerStatus) -> CameraStatus:
    assert camera.id is not None
    last = ws.last_exit
    return CameraStatus(
        camera_id=camera.id,
        name=camera.name,
        state=camera_state(camera.active, ws.state),
        active=camera.active,
        pid=ws.pid,
        uptime=ws.uptime,
        restarts=ws.restarts,
        last_exit=ExitRecord(last.code, last.signal, last.reason, last.at) if last else None,
        source=ws.source,
        fps=ws.fps,
        last_frame_age=ws.last_frame_age,
        motion=ws.motion,
        motion_active=ws.motion_active,
        width=ws.width,
        height=ws.height,
        codec=ws.codec,
        error=ws.error,
    )


def rule_changes(rule_id: int, changes: Mapping[str, Any], current_notify: Notify) -> dict[str, Any]:
    """Check and normalise the ``changes`` of an ``update_rule``.

    Field names must be rule fields (not ``id``/``version``); a ``notify``
    mapping patches the current notification settings (keys it omits keep
    their values) and its ``command`` must be a list of strings.
    """
    subject = f"changes to alert rule {rule_id}"
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError(FieldError("changes", "must name at least one field to change"), subject=subject)
    errs = [FieldError(str(k), "is not a field of an alert rule that can be changed")
            for k in changes if k not in RULE_FIELDS]
    out = dict(changes)
    notify = out.get("notify")
    if isinstance(notify, Mapping):
        patch = dict(notify)
        errs += [FieldError(f"notify.{k}", "is not a notification setting") for k in patch if k not in NOTIFY_FIELDS]
        if "command" in patch:
            cmd = patch["command"]
            if cmd is None:
                patch["command"] = ()
            elif isinstance(cmd, list | tuple):
                patch["command"] = tuple(cmd)
            else:
                errs.append(FieldError("notify.command", "must be a list of non-empty strings"))
        if not errs:
            out["notify"] = replace(current_notify, **patch)
    elif "notify" in out and not isinstance(notify, Notify):
        errs.append(FieldError("notify", "must be a mapping of notification settings"))
    if errs:
        raise ValidationError(errs, subject=subject)
    return out


@contextmanager
def after_side_effect(op: str) -> Iterator[None]:
    """Inside: something already changed, so an unexpected failure is a :class:`SideEffectFailure`."""
    try:
        yield
    except (OperationError, SideEffectFailure):
        raise
    except Exception as e:
        raise SideEffectFailure(op, e) from e


def camera_refusal(camera: Camera, e: SupervisorError) -> OperationError:
    return supervisor_refusal(camera.id, camera.name, e)


# ---------------------------------------------------------------- the implementation


class DomainOperations:
    """:class:`~app.domain.operations.StationOperations` on units of work and the domain's ports.

    ``store`` hands out the units of work (the station passes its ``app.store.Store``;
    the unit tests an in-memory store).
    """

    path = "domain"

    def __init__(
        self,
        store: UnitOfWorkFactory,
        supervisor: SupervisorPort,
        probe_runner: ProbePort,
        history: HistoryPort,
        clock: Clock = time.monotonic,
        *,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        self._store = store
        self._sup = supervisor
        self._probe = probe_runner
        self._history = history
        self._clock = clock
        self._worker_command = tuple(worker_command) if worker_command else None
        self._status_memo: dict[int, tuple[Camera, WorkerStatus | None, CameraStatus]] = {}

    # -- helpers

    def _uow(self) -> UnitOfWork:
        return self._store.uow()

    def _camera(self, camera_id: int) -> Camera:
        with self._uow() as uow:
            camera = uow.cameras.get(camera_id)
        if camera is None:
            raise NotFound(f"camera {camera_id} does not exist")
        return camera

    def _status(self, camera: Camera) -> CameraStatus:
        assert camera.id is not None
        return to_camera_status(camera, self._sup.status(camera.id))

    # -- rules

    def create_rule(self, req: CreateRule) -> RuleResult:
        rule = req.rule
        if not isinstance(rule, AlertRule):
            raise ValidationError(FieldError("rule", "must be an alert rule"), subject="create_rule request")
        rule = rule.with_changes(id=None, version=1).validated()
        with self._uow() as uow:
            self._check_rule_camera(uow, rule)
            if uow.rules.get_by_name(rule.name) is not None:
                raise Conflict(f"an alert rule named {rule.name!r} already exists")
            try:
                saved = uow.rules.add(rule)
                mark_side_effect(f"commit: alert rule {rule.name!r} created")
                uow.commit()
            except ConstraintViolation as e:
                raise Conflict(f"an alert rule named {rule.name!r} already exists") from e
        return RuleResult(saved)

    def update_rule(self, req: UpdateRule) -> RuleResult:
        with self._uow() as uow:
            current = uow.rules.get(req.rule_id)
            if current is None:
                raise NotFound(f"alert rule {req.rule_id} does not exist")
            changes = rule_changes(req.rule_id, req.changes, current.notify)
            if req.expected_version is not None and req.expected_version != current.version:
                raise Conflict(
                    f"alert rule {req.rule_id} is at version {current.version}, not {req.expected_version}: "
                    "someone else changed it; reload and try again",
                    details={"version": current.version, "expected_version": req.expected_version},
                )
            rule = current.with_changes(**changes, version=current.version + 1).validated()
            self._check_rule_camera(uow, rule)
            other = uow.rules.get_by_name(rule.name)
            if other is not None and other.id != current.id:
                raise Conflict(f"an alert rule named {rule.name!r} already exists")
            try:
                saved = uow.rules.update(rule, expected_version=current.version)
                mark_side_effect(f"commit: alert rule {req.rule_id} updated")
                uow.commit()
            except ConstraintViolation as e:
                raise Conflict(f"an alert rule named {rule.name!r} already exists") from e
            except StaleWrite as e:  # the row's version moved between our read and our write
                raise Conflict(f"alert rule {req.rule_id} was changed by someone else meanwhile; "
                               "reload and try again") from e
        return RuleResult(saved)

    @staticmethod
    def _check_rule_camera(uow: UnitOfWork, rule: AlertRule) -> None:
        if rule.camera_id is not None and uow.cameras.get(rule.camera_id) is None:
            raise ValidationError(FieldError("camera_id", f"camera {rule.camera_id} does not exist"),
                                  subject=f"alert rule {rule.name!r}")

    # -- worker lifecycle

    def start_camera(self, req: CameraRef) -> CameraStatus:
        camera = self._camera(req.camera_id)
        if not camera.active:
            raise InvalidState(f"camera {camera.id} ({camera.name}) is inactive; activate it first")
        current = self._sup.status(req.camera_id)
        if current.state not in STARTABLE_STATES:
            raise InvalidState(f"camera {camera.id} ({camera.name}) is already {current.state.value}")
        spec = spec_for(camera, self._worker_command)
        try:
            mark_side_effect(f"spawn: the worker of camera {camera.id}")
            ws = self._sup.start_worker(spec)
        except SupervisorError as e:
            raise camera_refusal(camera, e) from e
        with after_side_effect("start_camera"):
            return to_camera_status(camera, ws)

    def stop_camera(self, req: StopCamera) -> CameraStatus:
        req.validate()
        camera = self._camera(req.camera_id)
        current = self._sup.status(req.camera_id)
        if current.state is WorkerState.STOPPED:
            raise InvalidState(f"camera {camera.id} ({camera.name}) is not running")
        try:
            mark_side_effect(f"signal: stop the worker of camera {camera.id}")
            ws = self._sup.stop_worker(req.camera_id, timeout=req.timeout)
        except SupervisorError as e:
            raise camera_refusal(camera, e) from e
        with after_side_effect("stop_camera"):
            return to_camera_status(camera, ws)

    def restart_camera(self, req: CameraRef) -> CameraStatus:
        camera = self._camera(req.camera_id)
        if not camera.active:
            raise InvalidState(f"camera {camera.id} ({camera.name}) is inactive; activate it first")
        spec = spec_for(camera, self._worker_command)
        try:
            if self._sup.status(req.camera_id).state is WorkerState.STOPPED:
                mark_side_effect(f"spawn: the worker of camera {camera.id}")
                ws = self._sup.start_worker(spec)
            else:
                mark_side_effect(f"signal and spawn: restart the worker of camera {camera.id}")
                ws = self._sup.restart_worker(spec)
        except SupervisorError as e:
            raise camera_refusal(camera, e) from e
        with after_side_effect("restart_camera"):
            return to_camera_status(camera, ws)

    # -- reads

    # The status reads take the cameras from the store's snapshot (no transaction: they are the
    # station's hottest calls) and the workers' states from the supervisor at one moment.

    # A status is made again only when its camera or its worker's status is another object than
    # last time (both are immutable snapshots), so a burst of reads shares the same answers.

    def camera_status(self, req: CameraRef) -> CameraStatus:
        for camera in self._store.camera_snapshot():
            if camera.id == req.camera_id:
                return self._read_status(camera, self._sup.statuses().get(req.camera_id))
        raise NotFound(f"camera {req.camera_id} does not exist")

    def list_status(self, req: ListStatus) -> StatusList:
        workers = self._sup.statuses()
        return StatusList(tuple(self._read_status(c, workers.get(c.id))  # type: ignore[arg-type]
                                for c in self._store.camera_snapshot() if c.active or not req.active_only))

    def _read_status(self, camera: Camera, ws: WorkerStatus | None) -> CameraStatus:
        assert camera.id is not None
        memo = self._status_memo.get(camera.id)
        if memo is not None and memo[0] is camera and memo[1] is ws:
            return memo[2]
        status = to_camera_status(camera, ws if ws is not None else WorkerStatus(camera.id, WorkerState.STOPPED))
        if len(self._status_memo) > 4096:  # removed cameras' entries
            self._status_memo.clear()
        self._status_memo[camera.id] = (camera, ws, status)
        return status

    # -- activation

    def activate_camera(self, req: CameraRef) -> CameraStatus:
        with self._uow() as uow:
            camera = uow.cameras.get(req.camera_id)
            if camera is None:
                raise NotFound(f"camera {req.camera_id} does not exist")
            changed = not camera.active
            if changed:
                camera = uow.cameras.update(camera.with_changes(active=True))
                mark_side_effect(f"commit: camera {req.camera_id} activated")
                uow.commit()
        with after_side_effect("activate_camera") if changed else nullcontext():
            return self._status(camera)

    def deactivate_camera(self, req: CameraRef) -> CameraStatus:
        camera = self._camera(req.camera_id)
        changed = False
        if self._sup.status(req.camera_id).state is not WorkerState.STOPPED:
            try:
                mark_side_effect(f"signal: stop the worker of camera {camera.id}")
                self._sup.stop_worker(req.camera_id)
                changed = True
            except NotRunning:
                pass  # it ended on its own meanwhile: nothing to stop
            except SupervisorError as e:
                raise camera_refusal(camera, e) from e
        with after_side_effect("deactivate_camera") if changed else nullcontext():
            if camera.active:
                with self._uow() as uow:
                    fresh = uow.cameras.get(req.camera_id)
                    if fresh is None:
                        raise NotFound(f"camera {req.camera_id} does not exist")
                    camera = uow.cameras.update(fresh.with_changes(active=False))
                    mark_side_effect(f"commit: camera {req.camera_id} deactivated")
                    uow.commit()
                changed = True
        with after_side_effect("deactivate_camera") if changed else nullcontext():
            return self._status(camera)

    # -- observation

    def camera_logs(self, req: LogsRequest) -> CameraLogs:
        req.validate()
        camera = self._camera(req.camera_id)
        lines = self._sup.logs(req.camera_id, req.limit)
        assert camera.id is not None
        return CameraLogs(camera.id, tuple(LogEntry(ln.ts, ln.source, ln.level, ln.text) for ln in lines))

    def camera_snapshot(self, req: CameraRef | SnapshotRequest) -> Snapshot:
        fmt = SnapshotRequest.format_of(req)
        camera = self._camera(req.camera_id)
        ws = self._sup.status(req.camera_id)
        if ws.state not in PROCESS_STATES:
            raise no_live_frame(camera.id, camera.name)
        try:
            answer, data = self._sup.take_snapshot(req.camera_id, fmt, SNAPSHOT_TIMEOUT)
        except EvidenceRequestError as e:
            raise snapshot_refusal(camera.id, camera.name, e) from None
        return Snapshot(camera_id=req.camera_id, width=int(answer["width"]), height=int(answer["height"]),
                        taken_at=float(answer["taken_at"]), seq=int(answer.get("seq", 0)), format=fmt,
                        png=data if fmt == "png" else b"", jpeg=data if fmt == "jpeg" else b"")

    def probe_camera(self, req: ProbeRequest) -> ProbeResult:
        req.validate()
        camera = self._camera(req.camera_id)
        t0 = self._clock()
        answer = self._probe.probe(camera.source, req.timeout)
        elapsed = self._clock() - t0
        return probe_result(req.camera_id, answer, elapsed)

    def camera_stats(self, req: StatsRequest) -> CameraStats:
        req.validate()
        self._camera(req.camera_id)
        ws = self._sup.status(req.camera_id)
        running = ws.state in PROCESS_STATES and ws.pid is not None
        ps = self._sup.stats(req.camera_id) if running else None
        hb = self._history.summary(req.camera_id, req.window_s)
        return CameraStats(
            camera_id=req.camera_id, window_s=float(req.window_s), running=running,
            pid=ps.pid if ps else ws.pid if running else None,
            cpu_percent=ps.cpu_percent if ps else None,
            rss_bytes=ps.rss_bytes if ps else None,
            threads=ps.threads if ps else None,
            children=ps.children if ps else None,
            fps_avg=hb.fps_avg, fps_min=hb.fps_min, motion_avg=hb.motion_avg, samples=hb.samples,
            decoded=ws.decoded, dropped=ws.dropped,
        )


def probe_result(camera_id: int, answer: Mapping[str, Any], elapsed: float) -> ProbeResult:
    ok = answer.get("ok") is True

    def num(key: str, cast: type) -> Any:
        v = answer.get(key)
        return cast(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    def text(key: str) -> str | None:
        v = answer.get(key)
        return str(v) if v is not None else None

    return ProbeResult(
        camera_id=camera_id, ok=ok,
        codec=text("codec") if ok else None,
        width=num("width", int) if ok else None,
        height=num("height", int) if ok else None,
        fps=num("fps", float) if ok else None,
        pix_fmt=text("pix_fmt") if ok else None,
        error=None if ok else (text("error") or "the probe failed without saying why"),
        elapsed=elapsed,
    )
