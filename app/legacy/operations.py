"""The legacy implementation of the station's thirteen operations.

Transaction-script style: each operation is one function that runs SQLAlchemy
Core statements against the tables of :mod:`app.store.tables`, calls the
supervisor directly and validates inline. It reuses the domain's validation
rules (``AlertRule.problems()``/``validated()``) and raises the same typed
errors with the same codes and messages as the domain path, so the rollout
comparison sees identical answers.

This package must not import ``app.services`` (the two implementations are
independent); the supervisor, the probe runner and the heartbeat history come in
through the domain's ports (:mod:`app.domain.ports`), as for the domain path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.domain.camera import CameraState, name_key
from app.domain.errors import (
    Conflict,
    FieldError,
    InvalidState,
    NotFound,
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
    Snapshot,
    SnapshotRequest,
    StatsRequest,
    StatusList,
    StopCamera,
    UpdateRule,
)
from app.domain.ports import HistoryPort, ProbePort, SupervisorPort
from app.domain.refusals import no_live_frame, snapshot_refusal, supervisor_refusal
from app.domain.rules import (
    AlertRule,
    Comparator,
    NoDataPolicy,
    Notify,
    Severity,
    TargetKind,
)
from app.domain.worker import (
    EvidenceRequestError,
    NotRunning,
    SupervisorError,
    WorkerSpec,
    WorkerState,
    WorkerStatus,
)
from app.store.catalog import ReadModel
from app.store.scope import visible
from app.store.tables import alert_rules, cameras

Clock = Callable[[], float]


_UPDATABLE = {f.name for f in fields(AlertRule)} - {"id", "version"}
_NOTIFY_KEYS = {f.name for f in fields(Notify)}
_WITH_PROCESS = (WorkerState.STARTING, WorkerState.RUNNING, WorkerState.STALLED, WorkerState.STOPPING)


class LegacyOperations:
    """:class:`~app.domain.operations.StationOperations` as transaction scripts on an engine."""

    path = "legacy"

    def __init__(self, engine: Engine, supervisor: SupervisorPort, probe_runner: ProbePort, history: HistoryPort,
                 clock: Clock = time.monotonic, *, worker_command: Sequence[str] | None = None,
                 station_id: str | None = None) -> None:
        self.engine = engine
        # the station's cameras and rules only (app/store/scope.py); names stay unique in the fleet
        self.station_id = station_id
        self._cams = visible(cameras.c.station_id, station_id)
        self._rules = visible(alert_rules.c.station_id, station_id)
        self.supervisor = supervisor
        self.probe_runner = probe_runner
        self.history = history
        self.clock = clock
        self.worker_command = tuple(worker_command) if worker_command else None
        self._rows = ReadModel(engine, self._load_rows)
        self._memo: dict[int, tuple[RowMapping, WorkerStatus | None, CameraStatus]] = {}

    # ------------------------------------------------------------ rules

    def create_rule(self, req: CreateRule) -> RuleResult:
        if not isinstance(req.rule, AlertRule):
            raise ValidationError(FieldError("rule", "must be an alert rule"), subject="create_rule request")
        rule = req.rule.with_changes(id=None, version=1).validated()
        with self.engine.begin() as conn:
            if rule.camera_id is not None and conn.execute(
                    select(cameras.c.id).where(cameras.c.id == rule.camera_id, self._cams)).first() is None:
                raise ValidationError(FieldError("camera_id", f"camera {rule.camera_id} does not exist"),
                                      subject=f"alert rule {rule.name!r}")
            if _rule_name_taken(conn, rule.name):
                raise Conflict(f"an alert rule named {rule.name!r} already exists")
            try:
                key = conn.execute(insert(alert_rules).values(**_rule_values(rule), station_id=self.station_id)).inserted_primary_key
            except IntegrityError as e:
                raise Conflict(f"an alert rule named {rule.name!r} already exists") from e
            assert key is not None, "an INSERT of one row reports its primary key"
            new_id = key[0]
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == new_id)).mappings().one()
        return RuleResult(_rule_from(row))

    def list_rules(self) -> list[AlertRule]:
        """Every alert rule, read the legacy way (a read for the API's list, not one of the thirteen)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_rules).where(self._rules).order_by(alert_rules.c.id)).mappings().all()
        return [_rule_from(r) for r in rows]

    def update_rule(self, req: UpdateRule) -> RuleResult:
        with self.engine.begin() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == req.rule_id, self._rules)).mappings().first()
            if row is None:
                raise NotFound(f"alert rule {req.rule_id} does not exist")
            subject = f"changes to alert rule {req.rule_id}"
            changes = req.changes
            if not isinstance(changes, Mapping) or not changes:
                raise ValidationError(FieldError("changes", "must name at least one field to change"),
                                      subject=subject)
            changes = dict(changes)
            bad = [FieldError(str(k), "is not a field of an alert rule that can be changed")
                   for k in changes if k not in _UPDATABLE]
            if "notify" in changes:
                n = changes["notify"]
                if isinstance(n, Mapping):
                    bad += [FieldError(f"notify.{k}", "is not a notification setting")
                            for k in n if k not in _NOTIFY_KEYS]
                    # a patch: the settings it leaves out keep their stored values
                    old = row["notify"] or {}
                    merged = {"webhook_url": old.get("webhook_url"), "command": old.get("command") or [],
                              "desktop": bool(old.get("desktop", True)), "sound": bool(old.get("sound", False)),
                              **{k: v for k, v in n.items() if k in _NOTIFY_KEYS}}
                    cmd = merged["command"]
                    if cmd is not None and not isinstance(cmd, list | tuple):
                        bad.append(FieldError("notify.command", "must be a list of non-empty strings"))
                    elif not bad:
                        changes["notify"] = Notify(webhook_url=merged["webhook_url"], command=tuple(cmd or ()),
                                                   desktop=merged["desktop"], sound=merged["sound"])
                elif not isinstance(n, Notify):
                    bad.append(FieldError("notify", "must be a mapping of notification settings"))
            if bad:
                raise ValidationError(bad, subject=subject)
            version = row["version"]
            if req.expected_version is not None and req.expected_version != version:
                raise Conflict(
                    f"alert rule {req.rule_id} is at version {version}, not {req.expected_version}: "
                    "someone else changed it; reload and try again",
                    details={"version": version, "expected_version": req.expected_version},
                )
            rule = _rule_from(row).with_changes(**changes, version=version + 1).validated()
            if rule.camera_id is not None and conn.execute(
                    select(cameras.c.id).where(cameras.c.id == rule.camera_id, self._cams)).first() is None:
                raise ValidationError(FieldError("camera_id", f"camera {rule.camera_id} does not exist"),
                                      subject=f"alert rule {rule.name!r}")
            if _rule_name_taken(conn, rule.name, other_than=req.rule_id):
                raise Conflict(f"an alert rule named {rule.name!r} already exists")
            try:
                res = conn.execute(update(alert_rules)
                                   .where(alert_rules.c.id == req.rule_id, alert_rules.c.version == version)
                                   .values(**_rule_values(rule)))
            except IntegrityError as e:
                raise Conflict(f"an alert rule named {rule.name!r} already exists") from e
            if res.rowcount != 1:
                raise Conflict(f"alert rule {req.rule_id} was changed by someone else meanwhile; reload and try again")
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == req.rule_id)).mappings().one()
        return RuleResult(_rule_from(row))

    # ------------------------------------------------------------ worker lifecycle

    def start_camera(self, req: CameraRef) -> CameraStatus:
        cam = self._camera_row(req.camera_id)
        if not cam["active"]:
            raise InvalidState(f"camera {cam['id']} ({cam['name']}) is inactive; activate it first")
        ws = self.supervisor.status(cam["id"])
        if ws.state not in (WorkerState.STOPPED, WorkerState.FAILED):
            raise InvalidState(f"camera {cam['id']} ({cam['name']}) is already {ws.state.value}")
        try:
            ws = self.supervisor.start_worker(self._spec(cam))
        except SupervisorError as e:
            raise _refusal(cam, e) from e
        return _status(cam, ws)

    def stop_camera(self, req: StopCamera) -> CameraStatus:
        req.validate()
        cam = self._camera_row(req.camera_id)
        if self.supervisor.status(cam["id"]).state == WorkerState.STOPPED:
            raise InvalidState(f"camera {cam['id']} ({cam['name']}) is not running")
        try:
            ws = self.supervisor.stop_worker(cam["id"], timeout=req.timeout)
        except SupervisorError as e:
            raise _refusal(cam, e) from e
        return _status(cam, ws)

    def restart_camera(self, req: CameraRef) -> CameraStatus:
        cam = self._camera_row(req.camera_id)
        if not cam["active"]:
            raise InvalidState(f"camera {cam['id']} ({cam['name']}) is inactive; activate it first")
        try:
            if self.supervisor.status(cam["id"]).state == WorkerState.STOPPED:
                ws = self.supervisor.start_worker(self._spec(cam))
            else:
                ws = self.supervisor.restart_worker(self._spec(cam))
        except SupervisorError as e:
            raise _refusal(cam, e) from e
        return _status(cam, ws)

    # ------------------------------------------------------------ reads

    # The status reads use a snapshot of the camera rows, read again after a commit that wrote
    # the cameras table (app/store/catalog.py): they are the station's hottest calls.

    def _camera_rows(self) -> dict[int, RowMapping]:
        return self._rows.get()

    def _load_rows(self) -> dict[int, RowMapping]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(cameras).where(self._cams).order_by(cameras.c.id)).mappings().all()
        return {r["id"]: r for r in rows}

    def camera_status(self, req: CameraRef) -> CameraStatus:
        cam = self._camera_rows().get(req.camera_id)
        if cam is None:
            raise NotFound(f"camera {req.camera_id} does not exist")
        return self._row_status(cam, self.supervisor.statuses().get(req.camera_id))

    def list_status(self, req: ListStatus) -> StatusList:
        workers = self.supervisor.statuses()
        return StatusList(tuple(self._row_status(r, workers.get(cid))
                                for cid, r in self._camera_rows().items() if r["active"] or not req.active_only))

    def _row_status(self, cam: RowMapping, ws: WorkerStatus | None) -> CameraStatus:
        """The status of a row, made again only when the row or the worker status changed."""
        cid = cam["id"]
        memo = self._memo.get(cid)
        if memo is not None and memo[0] is cam and memo[1] is ws:
            return memo[2]
        status = _status(cam, ws if ws is not None else WorkerStatus(camera_id=cid, state=WorkerState.STOPPED))
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[cid] = (cam, ws, status)
        return status

    # ------------------------------------------------------------ activation

    def activate_camera(self, req: CameraRef) -> CameraStatus:
        with self.engine.begin() as conn:
            conn.execute(update(cameras).where(cameras.c.id == req.camera_id, cameras.c.active.is_(False), self._cams)
                         .values(active=True))
            cam = conn.execute(select(cameras).where(cameras.c.id == req.camera_id, self._cams)).mappings().first()
        if cam is None:
            raise NotFound(f"camera {req.camera_id} does not exist")
        return _status(cam, self.supervisor.status(cam["id"]))

    def deactivate_camera(self, req: CameraRef) -> CameraStatus:
        cam = self._camera_row(req.camera_id)
        if self.supervisor.status(cam["id"]).state != WorkerState.STOPPED:
            try:
                self.supervisor.stop_worker(cam["id"])
            except NotRunning:
                pass
            except SupervisorError as e:
                raise _refusal(cam, e) from e
        with self.engine.begin() as conn:
            conn.execute(update(cameras).where(cameras.c.id == cam["id"], cameras.c.active.is_(True), self._cams)
                         .values(active=False))
            fresh = conn.execute(select(cameras).where(cameras.c.id == cam["id"], self._cams)).mappings().first()
        if fresh is None:
            raise NotFound(f"camera {req.camera_id} does not exist")
        return _status(fresh, self.supervisor.status(fresh["id"]))

    # ------------------------------------------------------------ observation

    def camera_logs(self, req: LogsRequest) -> CameraLogs:
        req.validate()
        cam = self._camera_row(req.camera_id)
        lines = self.supervisor.logs(cam["id"], req.limit)
        return CameraLogs(cam["id"], tuple(LogEntry(x.ts, x.source, x.level, x.text) for x in lines))

    def camera_snapshot(self, req: CameraRef | SnapshotRequest) -> Snapshot:
        fmt = SnapshotRequest.format_of(req)
        cam = self._camera_row(req.camera_id)
        ws = self.supervisor.status(cam["id"])
        if ws.state not in _WITH_PROCESS:
            raise no_live_frame(cam["id"], cam["name"])
        try:
            answer, data = self.supervisor.take_snapshot(cam["id"], fmt, SNAPSHOT_TIMEOUT)
        except EvidenceRequestError as e:
            raise snapshot_refusal(cam["id"], cam["name"], e) from None
        png, jpeg = (data, b"") if fmt == "png" else (b"", data)
        return Snapshot(cam["id"], int(answer["width"]), int(answer["height"]), float(answer["taken_at"]),
                        int(answer.get("seq", 0)), png, fmt, jpeg)

    def probe_camera(self, req: ProbeRequest) -> ProbeResult:
        req.validate()
        cam = self._camera_row(req.camera_id)
        started = self.clock()
        out = self.probe_runner.probe(cam["source"], req.timeout)
        elapsed = self.clock() - started
        if out.get("ok") is True:
            def num(key: str, cast: type) -> Any:
                v = out.get(key)
                return cast(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

            return ProbeResult(
                cam["id"], True,
                codec=None if out.get("codec") is None else str(out["codec"]),
                width=num("width", int), height=num("height", int), fps=num("fps", float),
                pix_fmt=None if out.get("pix_fmt") is None else str(out["pix_fmt"]),
                elapsed=elapsed,
            )
        err = out.get("error")
        return ProbeResult(cam["id"], False, error=str(err) if err is not None else "the probe failed without saying why",
                           elapsed=elapsed)

    def camera_stats(self, req: StatsRequest) -> CameraStats:
        req.validate()
        cam = self._camera_row(req.camera_id)
        ws = self.supervisor.status(cam["id"])
        running = ws.state in _WITH_PROCESS and ws.pid is not None
        ps = self.supervisor.stats(cam["id"]) if running else None
        hb = self.history.summary(cam["id"], req.window_s)
        return CameraStats(
            camera_id=cam["id"], window_s=float(req.window_s), running=running,
            pid=(ps.pid if ps else ws.pid) if running else None,
            cpu_percent=ps.cpu_percent if ps else None, rss_bytes=ps.rss_bytes if ps else None,
            threads=ps.threads if ps else None, children=ps.children if ps else None,
            fps_avg=hb.fps_avg, fps_min=hb.fps_min, decoded=ws.decoded, dropped=ws.dropped,
            motion_avg=hb.motion_avg, samples=hb.samples,
        )

    # ------------------------------------------------------------ helpers

    def _camera_row(self, camera_id: int) -> RowMapping:
        with self.engine.connect() as conn:
            row = conn.execute(select(cameras).where(cameras.c.id == camera_id, self._cams)).mappings().first()
        if row is None:
            raise NotFound(f"camera {camera_id} does not exist")
        return row

    def _spec(self, cam: RowMapping) -> WorkerSpec:
        return WorkerSpec(
            camera_id=cam["id"], name=cam["name"], source=cam["source"], loop=bool(cam["loop"]),
            max_fps=cam["max_fps"], motion_threshold=cam["motion_threshold"],
            stall_timeout=cam["stall_timeout"], extra_args=("--motion-warmup", str(cam["motion_warmup"])),
            command=self.worker_command,
        )


def _refusal(cam: RowMapping, e: SupervisorError) -> Exception:
    return supervisor_refusal(cam["id"], cam["name"], e)


def _status(cam: RowMapping, ws: WorkerStatus) -> CameraStatus:
    if ws.state == WorkerState.STOPPED and not cam["active"]:
        state = CameraState.INACTIVE
    else:
        state = CameraState(ws.state.value)
    ex = ws.last_exit
    return CameraStatus(
        camera_id=cam["id"], name=cam["name"], state=state, active=bool(cam["active"]), pid=ws.pid,
        uptime=ws.uptime, restarts=ws.restarts,
        last_exit=None if ex is None else ExitRecord(ex.code, ex.signal, ex.reason, ex.at),
        source=ws.source, fps=ws.fps, last_frame_age=ws.last_frame_age, motion=ws.motion,
        motion_active=ws.motion_active, width=ws.width, height=ws.height, codec=ws.codec, error=ws.error,
    )


def _rule_values(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name, "target": str(rule.target), "camera_id": rule.camera_id, "metric": rule.metric,
        "comparator": str(rule.comparator), "threshold": rule.threshold, "for_seconds": rule.for_seconds,
        "keep_firing_for": rule.keep_firing_for, "severity": str(rule.severity), "cooldown": rule.cooldown,
        "repeat_interval": rule.repeat_interval, "no_data": str(rule.no_data), "schedule": rule.schedule,
        "enabled": rule.enabled,
        "notify": {"webhook_url": rule.notify.webhook_url, "command": list(rule.notify.command),
                   "desktop": rule.notify.desktop, "sound": rule.notify.sound},
        "description": rule.description, "template": rule.template, "version": rule.version,
    }


def _rule_from(row: RowMapping) -> AlertRule:
    n = row["notify"] or {}
    return AlertRule(
        id=row["id"], name=row["name"], target=TargetKind(row["target"]), camera_id=row["camera_id"],
        metric=row["metric"], comparator=Comparator(row["comparator"]), threshold=row["threshold"],
        for_seconds=row["for_seconds"], keep_firing_for=row["keep_firing_for"],
        severity=Severity(row["severity"]), cooldown=row["cooldown"], repeat_interval=row["repeat_interval"],
        no_data=NoDataPolicy(row["no_data"]), schedule=row["schedule"], enabled=row["enabled"],
        notify=Notify(webhook_url=n.get("webhook_url"), command=tuple(n.get("command") or ()),
                      desktop=bool(n.get("desktop", True)), sound=bool(n.get("sound", False))),
        description=row["description"], template=row["template"], version=row["version"],
    )


def _rule_name_taken(conn: Any, name: str, other_than: int | None = None) -> bool:
    """Whether another rule has this name, compared case-insensitively (``name_key``)."""
    key = name_key(name)
    return any(name_key(n) == key and rid != other_than
               for rid, n in conn.execute(select(alert_rules.c.id, alert_rules.c.name)))
