"""The FastAPI application: the whole station as resources under ``/api/v1``.

The thirteen operations go through the rollout router (``force_domain`` on each, the decision
in ``route`` and the ``X-Edge-Path``/``X-Edge-Reason`` headers). Everything else is station
administration through the station's facade, audited with actor ``api``. Security, limits,
metrics and the JSON checks of bodies are the middleware's (app/api/middleware.py); the paths,
path parameters and error answers it shares with the evidence routes are app/api/common.py's.

Endpoints are plain functions (FastAPI runs them on its worker threads: the facade blocks on
the database and the supervisor); answers are serialised once, with :func:`to_json`, straight
into the response, and their models document them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route

from app import __version__
from app.api.backend import CallFailed
from app.api.common import (
    ACTOR,
    DOCS_PATH,
    OP_ERRORS,
    OPENAPI_PATH,
    PREFIX,
    PUBLIC_PATHS,
    AppServer,
    CamId,
    EventId,
    NoBody,
    ReportId,
    RuleId,
    error_responses,
    failure,
    json_response,
)
from app.api.errors import HttpError, error_payload, route_headers
from app.api.models import (
    INT64_MAX,
    LOGS_LIMIT_MAX,
    PROBE_TIMEOUT_MAX,
    STATS_WINDOW_MAX,
    STOP_TIMEOUT_MAX,
    UNION_TAGS,
    Acknowledge,
    AuditPage,
    CameraChanges,
    CameraIn,
    CameraList,
    CamerasYaml,
    Data,
    Deleted,
    EventList,
    ImportResult,
    ProblemReportIn,
    ProblemReportResolve,
    RolloutResume,
    RolloutUpdate,
    Routed,
    RuleIn,
    RuleList,
    RuleUpdate,
    SettingsUpdate,
    rollout_change,
)
from app.api.routes import HealthDocument
from app.api.serialize import to_json
from app.domain.alerts import AlertEvent
from app.domain.camera import Camera
from app.domain.errors import FieldError, OperationError, ValidationError
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
    SnapshotRequest,
    StatsRequest,
    StatusList,
    StopCamera,
    UpdateRule,
)
from app.domain.rules import AlertRule

log = logging.getLogger("edge_station.api")


# ---------------------------------------------------------------- query models


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Force(_Query):
    force_domain: bool | None = Field(
        None, description="true: run on the domain path; false: on the legacy path; absent: the rollout router decides")


class ListQuery(Force):
    active_only: bool = Field(False, description="only active cameras")


class StopQuery(Force):
    timeout: float | None = Field(None, gt=0, le=STOP_TIMEOUT_MAX, allow_inf_nan=False,
                                  description="seconds to wait after TERM before KILL (default: the supervisor's)")


class ProbeQuery(Force):
    timeout: float = Field(8.0, gt=0, le=PROBE_TIMEOUT_MAX, allow_inf_nan=False, description="seconds the probe may take")


class LogsQuery(Force):
    limit: int = Field(200, ge=1, le=LOGS_LIMIT_MAX, description="at most this many lines")


class SnapshotQuery(Force):
    format: str = Field("json", pattern="^(json|png|jpeg)$", json_schema_extra={"enum": ["json", "png", "jpeg"]},
                        description="json (the PNG in base64), or png or jpeg (the image itself)")


class StatsQuery(Force):
    window_s: float = Field(60.0, gt=0, le=STATS_WINDOW_MAX, allow_inf_nan=False, description="the window in seconds")


class EventsQuery(_Query):
    limit: int = Field(200, ge=1, le=5000)
    rule_id: int | None = Field(None, ge=1, le=INT64_MAX)
    camera_id: int | None = Field(None, ge=1, le=INT64_MAX)
    unacknowledged: bool = Field(False, description="only events nobody acknowledged")
    active: bool | None = Field(None, description="true: still firing; false: resolved")


class AuditQuery(_Query):
    limit: int = Field(100, ge=1, le=1000)
    before: int | None = Field(None, ge=1, le=INT64_MAX, description="entries older than this id (the next page)")
    op: str | None = Field(None, max_length=100, description="only operations whose name starts with this")


class ReportsQuery(_Query):
    track: Literal["rules", "cameras"] | None = Field(None, description="only this track's reports")
    open_only: bool = Field(False, description="only reports not resolved yet")


class ExportQuery(_Query):
    pass


class StreamQuery(_Query):
    kinds: str = Field("state,cameras,alert,settings", max_length=100,
                       pattern=r"^(state|cameras|alert|settings)(,(state|cameras|alert|settings))*$",
                       description="comma-separated kinds of events to send")


# ---------------------------------------------------------------- answers


def _mask(cam: Camera) -> dict[str, Any]:
    from app.domain import mask_secrets

    d: dict[str, Any] = to_json(cam)
    d["source"] = mask_secrets(cam.source)
    return d


def _force(q: Force) -> str | None:
    return None if q.force_domain is None else ("domain" if q.force_domain else "legacy")


# ---------------------------------------------------------------- the application


#: Operations answered on the server's event loop, not on a thread of the pool: the status reads
#: are in-memory (app/store/catalog.py, the supervisor's snapshot: microseconds; a database read
#: at most after a commit, which SQLite's WAL and PostgreSQL never make wait on a writer), and the
#: hop to a pool thread and back cost more than the call, about half of each answer's time under
#: load. Every other operation may wait (a worker's stop, a probe, a write) and runs on the pool.
INLINE_OPS = frozenset({"list_status", "camera_status"})


def build_app(api: AppServer) -> FastAPI:
    """The station's API; ``api`` is the server (station, backend, metrics, limits)."""
    station = api.station
    backend = api.backend

    app = FastAPI(
        title="Edge Station local control API", version=__version__,
        description=("Local HTTP/JSON control of a running Edge Station. Every request needs "
                     "`Authorization: Bearer <token>` (the file `api-token` in the data dir), except this "
                     "document and the interactive docs."),
        openapi_url=OPENAPI_PATH, docs_url=None, redoc_url=None,
        servers=[{"url": "/"}],
    )

    def routed(op: str, request: Any, q: Force, status: int = 200) -> Response:
        try:
            result, info = backend.call(op, request, _force(q), ACTOR)
        except CallFailed as e:
            return failure(e.cause, e.route)
        return json_response(status, {"data": to_json(result), "route": to_json(info)}, route_headers(info))

    def admin(op: str, key: str, fn: Any, status: int = 200, detail: dict[str, Any] | None = None) -> Response:
        """Run a station administration change and audit it (actor ``api``), also when it is refused."""
        try:
            value = fn()
        except Exception as e:
            outcome = f"error:{e.code}" if isinstance(e, OperationError) else "failed"
            _audit(op, key, outcome, detail)
            return failure(e, None)
        _audit(op, key, "ok", detail)
        return json_response(status, {"data": value})

    def _audit(op: str, key: str, outcome: str, detail: dict[str, Any] | None) -> None:
        try:
            station.record_admin(op, key=key, outcome=outcome, actor=ACTOR, detail=detail)
        except Exception:
            log.exception("auditing %s %s failed", op, key)

    def read(fn: Any) -> Response:
        try:
            return json_response(200, {"data": fn()})
        except Exception as e:
            return failure(e, None)

    # -------------------------------------------------------- cameras: the operations

    tags: list[str | Enum] = ["cameras"]

    @app.get(f"{PREFIX}/cameras", operation_id="list_status", summary="Every camera's status", tags=tags,
             response_model=Routed[StatusList], responses=error_responses(*OP_ERRORS), dependencies=NoBody)
    async def list_status(q: Annotated[ListQuery, Query()]) -> Response:  # in INLINE_OPS
        return routed("list_status", ListStatus(active_only=q.active_only), q)

    def camera_op(method: str, action: str, op: str, summary: str, result: Any = CameraStatus,
                  query: type[Force] = Force, build: Any = None) -> None:
        build = build or (lambda cid, q: CameraRef(cid))
        endpoint: Any

        if op in INLINE_OPS:
            async def endpoint(id: int, q: Force) -> Response:  # noqa: A002 - annotated again below
                return routed(op, build(id, q), q)
        else:
            def endpoint(id: int, q: Force) -> Response:  # noqa: A002 - annotated again below (the query model is this route's)
                return routed(op, build(id, q), q)

        endpoint.__annotations__ = {"id": CamId, "q": Annotated[query, Query()], "return": Response}
        endpoint.__name__ = op
        app.add_api_route(f"{PREFIX}/cameras/{{id}}/{action}", endpoint, methods=[method], operation_id=op,
                          summary=summary, tags=tags, response_model=Routed[result],
                          responses=error_responses(*OP_ERRORS), dependencies=NoBody,
                          description=f"Runs the station operation `{op}` through the rollout router; "
                                      "the answer's `route` tells which path served it.")

    camera_op("POST", "start", "start_camera", "Start the camera's worker")
    camera_op("POST", "stop", "stop_camera", "Stop the camera's worker (TERM, then KILL after the timeout)",
              query=StopQuery, build=lambda cid, q: StopCamera(cid, q.timeout))
    camera_op("POST", "restart", "restart_camera", "Stop and start the camera's worker")
    camera_op("POST", "activate", "activate_camera", "Mark the camera active (it autostarts)")
    camera_op("POST", "deactivate", "deactivate_camera", "Stop the camera if running and mark it inactive")
    camera_op("POST", "probe", "probe_camera", "Open the camera's source briefly and report what it is",
              result=ProbeResult, query=ProbeQuery, build=lambda cid, q: ProbeRequest(cid, q.timeout))
    camera_op("GET", "status", "camera_status", "The camera's state, process and stream figures")
    camera_op("GET", "logs", "camera_logs", "Recent worker log lines and supervisor events", result=CameraLogs,
              query=LogsQuery, build=lambda cid, q: LogsRequest(cid, q.limit))
    camera_op("GET", "stats", "camera_stats", "Process and frame figures over a window", result=CameraStats,
              query=StatsQuery, build=lambda cid, q: StatsRequest(cid, q.window_s))

    snapshot_responses = error_responses(*OP_ERRORS)
    snapshot_responses[200] = {"description": "OK", "content": {
        "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
        "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}}}}

    @app.get(f"{PREFIX}/cameras/{{id}}/snapshot", operation_id="camera_snapshot", tags=tags,
             summary="The latest frame: JSON with the PNG in base64, or the image itself with format=png|jpeg",
             response_model=Routed[Snapshot], responses=snapshot_responses, dependencies=NoBody)
    def camera_snapshot(id: CamId, q: Annotated[SnapshotQuery, Query()]) -> Response:  # noqa: A002
        try:
            request = SnapshotRequest(id, format="jpeg" if q.format == "jpeg" else "png")
            result, info = backend.call("camera_snapshot", request, _force(q), ACTOR)
        except CallFailed as e:
            return failure(e.cause, e.route)
        headers = route_headers(info)
        if q.format in ("png", "jpeg"):
            headers.update({"X-Snapshot-Seq": str(result.seq), "X-Snapshot-Taken-At": repr(result.taken_at)})
            return Response(result.image, media_type=result.content_type, headers=headers)
        return json_response(200, {"data": to_json(result), "route": to_json(info)}, headers)

    # -------------------------------------------------------- cameras: administration

    @app.get(f"{PREFIX}/cameras/config", operation_id="list_cameras", tags=["camera config"],
             summary="Every camera's configuration (passwords masked)", response_model=Data[CameraList],
             responses=error_responses(), dependencies=NoBody)
    def list_cameras() -> Response:
        return read(lambda: {"items": [_mask(c) for c in station.list_cameras()]})

    @app.post(f"{PREFIX}/cameras", operation_id="create_camera", tags=["camera config"], status_code=201,
              summary="Add a camera", response_model=Data[Camera], responses=error_responses(409))
    def create_camera(body: CameraIn) -> Response:
        def do() -> Any:
            cam = station.add_camera(body.to_camera())
            return _mask(cam)
        return admin("admin.create_camera", f"camera:{body.name}", do, 201)

    @app.get(f"{PREFIX}/cameras/export", operation_id="export_cameras", tags=["camera config"],
             summary="Every camera as a cameras file (YAML, passwords masked)", dependencies=NoBody,
             responses={200: {"description": "a cameras file (the format `edge-station import` reads)", "content": {
                 "application/yaml": {"schema": {"type": "object", "required": ["version", "cameras"], "properties": {
                     "version": {"type": "integer"}, "cameras": {"type": "array", "items": {"type": "object"}}}}}}},
                        **error_responses()})
    def export_cameras(q: Annotated[ExportQuery, Query()]) -> Response:
        try:
            return Response(station.export_text(), media_type="application/yaml")
        except Exception as e:
            return failure(e, None)

    @app.post(f"{PREFIX}/cameras/import", operation_id="import_cameras", tags=["camera config"],
              summary="Import a cameras file (YAML text), all or nothing", response_model=Data[ImportResult],
              responses=error_responses(409))
    def import_cameras(body: CamerasYaml) -> Response:
        from app.store.yaml_io import ConfigFileError

        def do() -> Any:
            try:
                report = station.import_text(body.yaml, replace=body.replace)
            except ConfigFileError as e:
                raise ValidationError([FieldError("yaml", p) for p in e.problems], subject="cameras file") from None
            return to_json(report)
        return admin("admin.import_cameras", "cameras", do, detail={"replace": body.replace})

    @app.get(f"{PREFIX}/cameras/{{id}}", operation_id="get_camera", tags=["camera config"],
             summary="One camera's configuration (password masked)", response_model=Data[Camera],
             responses=error_responses(404), dependencies=NoBody)
    def get_camera(id: CamId) -> Response:  # noqa: A002
        return read(lambda: _mask(station.get_camera(id)))

    @app.patch(f"{PREFIX}/cameras/{{id}}", operation_id="update_camera", tags=["camera config"],
               summary="Change a camera's configuration (a running worker keeps the old one until restarted)",
               response_model=Data[Camera], responses=error_responses(404, 409))
    def update_camera(id: CamId, body: CameraChanges) -> Response:  # noqa: A002
        def do() -> Any:
            cam = station.update_camera(id, body.as_changes(station.get_camera(id)))
            return _mask(cam)
        return admin("admin.update_camera", f"camera:{id}", do,
                     detail={"fields": sorted(body.model_fields_set)})

    @app.delete(f"{PREFIX}/cameras/{{id}}", operation_id="delete_camera", tags=["camera config"],
                summary="Delete a stopped camera", response_model=Data[Deleted], responses=error_responses(404, 409),
                dependencies=NoBody)
    def delete_camera(id: CamId) -> Response:  # noqa: A002
        def do() -> Any:
            station.remove_camera(id)
            return {"deleted": id}
        return admin("admin.delete_camera", f"camera:{id}", do)

    # -------------------------------------------------------- alert rules

    tags = ["alert rules"]

    @app.get(f"{PREFIX}/alerts/rules", operation_id="list_rules", tags=tags, summary="Every alert rule",
             response_model=Routed[RuleList], responses=error_responses(*OP_ERRORS), dependencies=NoBody,
             description="Station administration (not one of the thirteen operations). It takes `force_domain` "
                         "like every route: the rules are read from the store by the path named in `route`.")
    def list_rules(q: Annotated[Force, Query()]) -> Response:
        try:
            rules, info = backend.list_rules(_force(q))
        except CallFailed as e:
            return failure(e.cause, e.route)
        return json_response(200, {"data": {"items": [to_json(r) for r in rules]}, "route": to_json(info)},
                             route_headers(info))

    @app.post(f"{PREFIX}/alerts/rules", operation_id="create_rule", tags=tags, status_code=201,
              summary="Create an alert rule", response_model=Routed[RuleResult], responses=error_responses(*OP_ERRORS))
    def create_rule(body: RuleIn, q: Annotated[Force, Query()]) -> Response:
        return routed("create_rule", CreateRule(body.to_rule()), q, 201)

    @app.get(f"{PREFIX}/alerts/rules/{{id}}", operation_id="get_rule", tags=tags, summary="One alert rule",
             response_model=Data[AlertRule], responses=error_responses(404), dependencies=NoBody)
    def get_rule(id: RuleId) -> Response:  # noqa: A002
        return read(lambda: to_json(station.get_rule(id)))

    @app.put(f"{PREFIX}/alerts/rules/{{id}}", operation_id="update_rule", tags=tags, summary="Change an alert rule",
             response_model=Routed[RuleResult], responses=error_responses(*OP_ERRORS))
    def update_rule(id: RuleId, body: RuleUpdate, q: Annotated[Force, Query()]) -> Response:  # noqa: A002
        return routed("update_rule", UpdateRule(id, body.changes.as_changes(), body.expected_version), q)

    @app.delete(f"{PREFIX}/alerts/rules/{{id}}", operation_id="delete_rule", tags=tags,
                summary="Delete an alert rule (station administration, not routed)", response_model=Data[Deleted],
                responses=error_responses(404), dependencies=NoBody)
    def delete_rule(id: RuleId) -> Response:  # noqa: A002
        def do() -> Any:
            station.delete_rule(id)
            return {"deleted": id}
        return admin("admin.delete_rule", f"rule:{id}", do)

    def make_toggle(enabled: bool) -> Any:
        def toggle(id: int) -> Response:  # noqa: A002 - annotated again below
            return admin(f"admin.{'enable' if enabled else 'disable'}_rule", f"rule:{id}",
                         lambda: to_json(station.set_rule_enabled(id, enabled)))

        toggle.__annotations__ = {"id": RuleId, "return": Response}
        toggle.__name__ = f"{'enable' if enabled else 'disable'}_rule"
        return toggle

    for verb, enabled in (("enable", True), ("disable", False)):
        toggle = make_toggle(enabled)
        app.add_api_route(f"{PREFIX}/alerts/rules/{{id}}/{verb}", toggle, methods=["POST"],
                          operation_id=f"{verb}_rule", summary=f"{verb.capitalize()} an alert rule", tags=tags,
                          response_model=Data[AlertRule], responses=error_responses(404), dependencies=NoBody)

    # -------------------------------------------------------- alert events

    tags = ["alert events"]

    @app.get(f"{PREFIX}/alerts/events", operation_id="list_alert_events", tags=tags,
             summary="Alert events, newest first", response_model=Data[EventList], responses=error_responses(),
             dependencies=NoBody)
    def list_alert_events(q: Annotated[EventsQuery, Query()]) -> Response:
        return read(lambda: {"items": to_json(station.alert_events(
            q.limit, rule_id=q.rule_id, camera_id=q.camera_id, unacknowledged=q.unacknowledged, active=q.active))})

    @app.get(f"{PREFIX}/alerts/events/{{id}}", operation_id="get_alert_event", tags=tags, summary="One alert event",
             response_model=Data[AlertEvent], responses=error_responses(404), dependencies=NoBody)
    def get_alert_event(id: EventId) -> Response:  # noqa: A002
        return read(lambda: to_json(station.alert_event(id)))

    @app.post(f"{PREFIX}/alerts/events/{{id}}/acknowledge", operation_id="acknowledge_alert_event", tags=tags,
              summary="Acknowledge an alert event (its repeats stop; the first acknowledgement stays)",
              response_model=Data[AlertEvent], responses=error_responses(404, 503))
    def acknowledge_alert_event(id: EventId, body: Acknowledge | None = None) -> Response:  # noqa: A002
        by = body.by if body is not None else "api"
        return admin("admin.acknowledge_alert", f"alert_event:{id}",
                     lambda: to_json(station.acknowledge_alert(id, by)), detail={"by": by})

    # -------------------------------------------------------- settings, audit

    @app.get(f"{PREFIX}/settings", operation_id="get_settings", tags=["settings"], summary="Every stored setting",
             response_model=Data[dict[str, Any]], responses=error_responses(), dependencies=NoBody)
    def get_settings() -> Response:
        return read(lambda: to_json(station.get_settings()))

    @app.patch(f"{PREFIX}/settings", operation_id="update_settings", tags=["settings"],
               summary="Store the settings an integrator may change (the rollout's go through /rollout)",
               response_model=Data[dict[str, Any]], responses=error_responses())
    def update_settings(body: SettingsUpdate) -> Response:
        values = body.as_values()

        def do() -> Any:
            station.set_settings(values, actor=ACTOR)
            return to_json(station.get_settings())
        return admin("admin.settings", "settings", do, detail={"keys": sorted(values)})

    @app.get(f"{PREFIX}/audit", operation_id="list_audit", tags=["audit"], summary="The audit log, newest first, paged",
             response_model=Data[AuditPage], responses=error_responses(), dependencies=NoBody)
    def list_audit(q: Annotated[AuditQuery, Query()]) -> Response:
        def page() -> Any:
            entries = station.audit_page(q.limit, before=q.before, op_prefix=q.op)
            items = [to_json(e) for e in entries]
            nxt = entries[-1].id if len(entries) == q.limit else None
            return {"items": items, "next_before": nxt}
        return read(page)

    # -------------------------------------------------------- rollout

    tags = ["rollout"]

    @app.get(f"{PREFIX}/rollout", operation_id="get_rollout", tags=tags,
             summary="The rollout: settings, stage, shares, health, gate", response_model=Data[dict[str, Any]],
             responses=error_responses(), dependencies=NoBody)
    def get_rollout() -> Response:
        return read(lambda: to_json(backend.rollout()))

    @app.put(f"{PREFIX}/rollout", operation_id="put_rollout", tags=tags,
             summary="Change the rollout settings, advance a stage or roll back", response_model=Data[dict[str, Any]],
             responses=error_responses(409))
    def put_rollout(body: Annotated[RolloutUpdate, Body()]) -> Response:
        try:
            return json_response(200, {"data": to_json(backend.update_rollout(rollout_change(body), ACTOR))})
        except Exception as e:
            return failure(e, None)

    @app.post(f"{PREFIX}/rollout/resume", operation_id="resume_rollout", tags=tags,
              summary="Clear a track's rollback latch (audited); the track stays at 0 %",
              response_model=Data[dict[str, Any]], responses=error_responses(409))
    def resume_rollout(body: Annotated[RolloutResume, Body()]) -> Response:
        try:
            settings = station.rollout_settings()
            names = ("rules", "cameras") if body.track == "all" else (body.track,)
            if not any(settings.track(n).latched for n in names):
                raise HttpError(409, "invalid_state", f"nothing to resume: the {body.track} track is not "
                                                      "rolled back" if body.track != "all" else
                                "nothing to resume: no track is rolled back")
            station.rollout_resume(track=body.track, reason=body.reason, actor=ACTOR)
            return json_response(200, {"data": to_json(backend.rollout())})
        except Exception as e:
            return failure(e, None)

    @app.get(f"{PREFIX}/rollout/reports", operation_id="list_problem_reports", tags=tags,
             summary="Problem reports against the rollout's stages (open ones hold their track's gate)",
             response_model=Data[list[dict[str, Any]]], responses=error_responses(), dependencies=NoBody)
    def list_problem_reports(q: Annotated[ReportsQuery, Query()]) -> Response:
        return read(lambda: to_json(station.rollout_reports(q.track, open_only=q.open_only)))

    @app.post(f"{PREFIX}/rollout/reports", operation_id="file_problem_report", tags=tags, status_code=201,
              summary="File a problem report against the current stage of a track (holds its gate)",
              response_model=Data[dict[str, Any]], responses=error_responses(409))
    def file_problem_report(body: Annotated[ProblemReportIn, Body()]) -> Response:
        try:
            problems: list[FieldError] = []
            if body.camera_id is not None and station.camera(body.camera_id) is None:
                problems.append(FieldError("camera_id", f"there is no camera {body.camera_id}"))
            if body.rule_id is not None and body.rule_id not in {r.id for r in station.list_rules()}:
                problems.append(FieldError("rule_id", f"there is no rule {body.rule_id}"))
            if problems:
                raise ValidationError(problems, subject="problem report")
            rep = station.file_report(track=body.track, text=body.text, camera_id=body.camera_id,
                                      rule_id=body.rule_id, operator=body.operator)
            return json_response(201, {"data": to_json(rep)})
        except Exception as e:
            return failure(e, None)

    @app.post(f"{PREFIX}/rollout/reports/{{id}}/resolve", operation_id="resolve_problem_report", tags=tags,
              summary="Resolve an open problem report (audited)", response_model=Data[dict[str, Any]],
              responses=error_responses(404, 409))
    def resolve_problem_report(id: ReportId,  # noqa: A002
                               body: Annotated[ProblemReportResolve, Body()]) -> Response:
        try:
            known = {r["id"]: r for r in station.rollout_reports()}
            if id not in known:
                raise HttpError(404, "not_found", f"there is no problem report {id}")
            if not known[id]["open"]:
                raise HttpError(409, "invalid_state", f"problem report {id} is already resolved")
            return json_response(200, {"data": to_json(station.resolve_report(id, note=body.note,
                                                                              operator=body.by))})
        except Exception as e:
            return failure(e, None)

    # -------------------------------------------------------- monitoring

    tags = ["monitoring"]

    @app.get(f"{PREFIX}/monitoring/health", operation_id="health", tags=tags,
             summary="The station's health (HTTP 503 when down)", response_model=Data[HealthDocument],
             responses={**error_responses(), 503: {"model": Data[HealthDocument], "description": "the station is down"}},
             dependencies=NoBody)
    def health() -> Response:
        doc = backend.health()
        return json_response(503 if doc.status == "down" else 200, {"data": to_json(doc)})

    @app.get(f"{PREFIX}/monitoring/metrics", operation_id="metrics", tags=tags,
             summary="Metrics in the Prometheus text format", dependencies=NoBody,
             responses={200: {"description": "Prometheus text exposition format 0.0.4",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}, **error_responses()})
    def metrics() -> Response:
        from app.api.monitoring import CONTENT_TYPE

        return Response(api.metrics.render(), media_type=CONTENT_TYPE)

    @app.get(f"{PREFIX}/events", operation_id="stream_events", tags=tags,
             summary="Server-sent events: camera state changes, camera list changes, alerts, settings",
             dependencies=NoBody,
             responses={200: {"description": "an endless text/event-stream; each event's data is JSON",
                              "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **error_responses()})
    async def stream_events(q: Annotated[StreamQuery, Query()]) -> Response:
        kinds = frozenset(q.kinds.split(","))
        return StreamingResponse(api.events.stream(kinds), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    from app.api.evidence_routes import register_evidence_routes  # alert evidence, clips on demand

    register_evidence_routes(app, api)

    # -------------------------------------------------------- docs (offline: the assets ship in a package)

    import swagger_ui_bundle

    app.mount(f"{DOCS_PATH}/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH, title="Edge Station API",
            swagger_js_url=f"{DOCS_PATH}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_PATH}/assets/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_PATH}/assets/favicon-32x32.png",
        )

    # -------------------------------------------------------- errors

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return failure(ValidationError(fielderror_responses(exc.errors()), subject="request"), None)

    @app.exception_handler(HttpError)
    async def _http_error(request: Request, exc: HttpError) -> Response:
        return json_response(exc.status, error_payload(exc.code, exc.message, exc.details, None), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        message = {404: f"no endpoint {request.url.path}",
                   405: f"{request.url.path} does not allow {request.method}"}.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of every route on this path, not only the first's
            methods = sorted({m for r in app.routes if isinstance(r, Route) and r.methods
                              and r.path_regex.match(request.url.path) for m in r.methods} - {"HEAD"})
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(methods)
            message = f"{request.url.path} allows {headers['Allow']}"
        return json_response(exc.status_code, error_payload(code, message, {}, None), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return failure(exc, None)

    # The API's own document: 422 answers carry the error envelope, not FastAPI's default.
    _patch_openapi(app)
    return app


_MESSAGES = {"extra_forbidden": "is not a known field", "missing": "is required"}


def fielderror_responses(errors: Any) -> list[FieldError]:
    """pydantic's errors as the station's ``[{field, message}]``: ``notify.command[0]``, ``limit``, ``body``."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        where = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else "body"
        if where == "body" and loc and loc[0] in UNION_TAGS:
            loc.pop(0)  # the kind of a rollout change, not a field
        name = ""
        for part in loc:
            if isinstance(part, int):
                name += f"[{part}]"
            else:
                name = f"{name}.{part}" if name else str(part)
        if err.get("type") == "extra_forbidden" and where == "query":
            message = "is not a parameter of this endpoint"
        else:
            message = _MESSAGES.get(err.get("type", ""), str(err.get("msg", "is not valid")))
            message = message.removeprefix("Value error, ")
        out.append(FieldError(name or "body", message))
    return out


def _patch_openapi(app: FastAPI) -> None:
    """FastAPI declares 422 with its own schema when an endpoint has none: every route here declares
    the station's error envelope instead, so nothing is left to patch but the security scheme."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = original()
        doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {"type": "http",
                                                                                        "scheme": "bearer"}
        for path, item in doc.get("paths", {}).items():
            for op in item.values():
                if path not in PUBLIC_PATHS:
                    op["security"] = [{"bearer": []}]
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


async def _none() -> AsyncIterator[bytes]:  # pragma: no cover - placeholder for typing
    if False:
        yield b""
    await asyncio.sleep(0)
