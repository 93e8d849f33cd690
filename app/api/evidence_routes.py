"""Alert evidence over the API: an event's snapshots and clip, its evidence list, a clip on demand.

Registered from :func:`app.api.app.build_app` with :func:`register_evidence_routes`. Files are
served as they are on disk (JPEG or PNG snapshots, MP4 clips); a missing one is the error
envelope with 404. Saving a clip is station administration, audited with actor ``api``.
Endpoints are plain functions: FastAPI runs them on its worker threads, so a clip that takes
its post-roll to write never blocks the event loop.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.api.common import (
    ACTOR,
    PREFIX,
    AppServer,
    CamId,
    EventId,
    NoBody,
    error_responses,
    failure,
    json_response,
)
from app.api.errors import HttpError
from app.api.models import Data
from app.api.serialize import to_json
from app.domain.evidence import Evidence
from app.evidence import EvidenceError

#: the longest pre- or post-roll a clip may ask for, in seconds
CLIP_SECONDS_MAX = 60.0


class ClipIn(BaseModel):
    """A clip of the camera now; either part absent: the station's ``evidence.*`` setting."""

    model_config = ConfigDict(extra="forbid")
    pre: float | None = Field(None, ge=0, le=CLIP_SECONDS_MAX, allow_inf_nan=False,
                              description="seconds before now (the pre-roll the worker keeps)")
    post: float | None = Field(None, ge=0, le=CLIP_SECONDS_MAX, allow_inf_nan=False,
                               description="seconds after now (the request waits this long)")


class MomentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    moment: Literal["fired", "resolved"] = Field("fired", description="the snapshot taken when the alert "
                                                                     "fired, or when it resolved")


class EventEvidence(BaseModel):
    event_id: int
    items: list[Evidence] = Field(description="every snapshot and clip of the event, oldest first")
    failures: list[str] = Field(description="why evidence of the event is missing (since the station started)")


def _binary(*types: str) -> dict[str, Any]:
    return {"description": "OK", "content": {t: {"schema": {"type": "string", "contentMediaType": t}}
                                             for t in types}}


def evidence_status(e: Exception, blocked: bool) -> tuple[int, str]:
    """An ``EvidenceError`` as (HTTP status, code): 503 when the disk stops writing, else 409."""
    text = str(e)
    if blocked or "floor" in text or "budget" in text:
        return 503, "unavailable"
    return 409, "invalid_state"


def register_evidence_routes(app: FastAPI, api: AppServer) -> None:
    """Add the evidence routes to the station's API (called once by ``build_app``)."""
    station = api.station
    tags: list[str | Enum] = ["alerts"]

    def _event_or_404(event_id: int) -> None:
        station.alert_event(event_id)  # NotFound: 404

    @app.get(f"{PREFIX}/alerts/events/{{id}}/snapshot", operation_id="alert_event_snapshot", tags=tags,
             summary="The event's snapshot (JPEG, or PNG as it was stored), when it fired or resolved",
             response_class=Response, responses={**error_responses(404), 200: _binary("image/jpeg", "image/png")},
             dependencies=NoBody)
    def alert_event_snapshot(id: EventId, q: Annotated[MomentQuery, Query()]) -> Response:  # noqa: A002
        try:
            found = station.event_snapshot(id, q.moment)
        except Exception as e:
            return failure(e, None)
        if found is None:
            return failure(HttpError(404, "not_found", f"alert event {id} has no {q.moment} snapshot",
                                     {"event_id": id, "moment": q.moment}), None)
        data, ctype = found
        return Response(data, media_type=ctype, headers={"Cache-Control": "no-store"})

    @app.get(f"{PREFIX}/alerts/events/{{id}}/clip", operation_id="alert_event_clip", tags=tags,
             summary="The event's newest clip (MP4, H.264)", response_class=Response,
             responses={**error_responses(404), 200: _binary("video/mp4")}, dependencies=NoBody)
    def alert_event_clip(id: EventId) -> Response:  # noqa: A002
        try:
            path = station.event_clip_path(id)
        except Exception as e:
            return failure(e, None)
        if path is None:
            return failure(HttpError(404, "not_found", f"alert event {id} has no clip", {"event_id": id}), None)
        return FileResponse(path, media_type="video/mp4", filename=f"event-{id}.mp4",
                            headers={"Cache-Control": "no-store"})

    @app.get(f"{PREFIX}/alerts/events/{{id}}/evidence", operation_id="alert_event_evidence", tags=tags,
             summary="The event's snapshots and clips, and why any is missing",
             response_model=Data[EventEvidence], responses=error_responses(404), dependencies=NoBody)
    def alert_event_evidence(id: EventId) -> Response:  # noqa: A002
        try:
            _event_or_404(id)
            doc = {"event_id": id, "items": to_json(station.evidence_for_event(id)),
                   "failures": list(station.evidence_failures(id))}
        except Exception as e:
            return failure(e, None)
        return json_response(200, {"data": doc})

    @app.post(f"{PREFIX}/cameras/{{id}}/clip", operation_id="save_camera_clip", tags=["cameras"], status_code=201,
              summary="Save a clip of the camera now (pre-roll + post-roll); answers once it is written",
              response_model=Data[Evidence], responses=error_responses(404, 409, 503))
    def save_camera_clip(id: CamId, body: ClipIn | None = None) -> Response:  # noqa: A002
        pre, post = (body.pre, body.post) if body is not None else (None, None)
        detail = {"pre": pre, "post": post}
        if station.camera(id) is None:
            return failure(HttpError(404, "not_found", f"camera {id} does not exist", {"camera_id": id}), None)
        try:
            ev = station.save_clip(id, pre=pre, post=post)
        except EvidenceError as e:
            status, code = evidence_status(e, station.evidence_blocked() is not None)
            _audit("admin.save_clip", id, f"error:{code}", detail)
            return failure(HttpError(status, code, str(e), {"camera_id": id}), None)
        except Exception as e:
            _audit("admin.save_clip", id, "failed", detail)
            return failure(e, None)
        _audit("admin.save_clip", id, "ok", {**detail, "evidence_id": ev.id})
        return json_response(201, {"data": to_json(ev)})

    def _audit(op: str, camera_id: int, outcome: str, detail: dict[str, Any]) -> None:
        try:
            station.record_admin(op, key=f"camera:{camera_id}", outcome=outcome, actor=ACTOR, detail=detail)
        except Exception:
            import logging

            logging.getLogger("edge_station.api").exception("auditing %s %s failed", op, camera_id)
