"""The two status reads answered in front of FastAPI's routing, with the same bytes.

``GET /api/v1/cameras`` and ``GET /api/v1/cameras/{id}/status`` are what a dashboard polls,
many times a second across a fleet. Their call is in memory (a few microseconds: the store's
snapshot and the supervisor's, docs/architecture.md), so what an answer cost was FastAPI's
own path: its middleware stack, its routing over every route of the API, the dependency solver
for the query model, and serialising the same statuses again for each request (about 85 % of an
answer under 16 clients). :class:`InlineReads` sits between the guard (which has checked the
Host, the token, the query and the body by then) and FastAPI and answers those two requests
itself:

* the query is validated by the route's own pydantic model (the same ``ListQuery`` / ``Force``);
  anything it does not take as it is — an unknown or malformed parameter, a camera id that is not
  a plain number in range, a body, any other method — goes on to FastAPI, which answers it as it
  always did (the same 4xx, the same error envelope);
* the call goes through the same backend (the rollout router, ``force_domain``, the audit);
* the answer is the one FastAPI's endpoint builds (``{"data": …, "route": …}``, the
  ``X-Edge-Path`` / ``X-Edge-Reason`` headers, the error envelope of a failed call), with each
  camera's status encoded once per status object: the domain hands out the same object while a
  camera's state is unchanged (app/domain/operations.py), so an unchanged status is bytes
  already made;
* the guard still times the request under the route's name in the API's metrics.

The routes stay in FastAPI (the OpenAPI document, the interactive docs, and every request the
fast path passes on); tests check both paths give the same answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.responses import Response

from app.api.app import Force, ListQuery
from app.api.backend import CallFailed
from app.api.common import ACTOR, PREFIX, AppServer, failure
from app.api.routes import RouteInfo
from app.api.serialize import INT64_MAX, to_json
from app.domain.operations import CameraRef, ListStatus

__all__ = ["InlineReads", "StatusEncoder"]

_LIST_PATH = f"{PREFIX}/cameras"
_STATUS_PATH = re.compile(rf"^{re.escape(PREFIX)}/cameras/([1-9][0-9]{{0,18}})/status$")
_MEMO_MAX = 4096  # encoded statuses kept (a new object per change; the old ones are let go in bulk)


def _dumps(value: Any) -> bytes:
    # the options of app/api/common.json_response, so that the bytes are the same
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


class StatusEncoder:
    """JSON bytes of a status object, made once per object (the object is kept with its bytes,
    so that its id cannot be reused while the entry lives)."""

    def __init__(self, max_entries: int = _MEMO_MAX) -> None:
        self.max_entries = max_entries
        self._memo: dict[int, tuple[Any, bytes]] = {}
        self._routes: dict[Any, bytes] = {}

    def status(self, obj: Any) -> bytes:
        hit = self._memo.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        data = _dumps(to_json(obj))
        if len(self._memo) >= self.max_entries:
            self._memo.clear()
        self._memo[id(obj)] = (obj, data)
        return data

    def route(self, info: Any) -> bytes:
        data = self._routes.get(info)
        if data is None:
            data = _dumps(to_json(info))
            if len(self._routes) >= 256:
                self._routes.clear()
            self._routes[info] = data
        return data

    def list_answer(self, result: Any, info: Any) -> bytes:
        items = b",".join(self.status(s) for s in result.items)
        return b'{"data":{"items":[' + items + b']},"route":' + self.route(info) + b"}"

    def status_answer(self, result: Any, info: Any) -> bytes:
        return b'{"data":' + self.status(result) + b',"route":' + self.route(info) + b"}"


class InlineReads:
    """``InlineReads(app, server)``: the ASGI layer between the guard and FastAPI (module docstring)."""

    def __init__(self, app: Any, server: AppServer, *, enabled: bool = True) -> None:
        self.app = app
        self.backend = server.backend
        self.enabled = enabled
        self.encoder = StatusEncoder()
        self.answered = 0  # requests answered here, not by FastAPI (on the server's loop only)
        routes = {getattr(r, "operation_id", None): r for r in getattr(app, "routes", ())}
        self._routes = {op: routes.get(op) for op in ("list_status", "camera_status")}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.enabled and scope["type"] == "http" and scope["method"] == "GET":
            answer = self._answer(scope)
            if answer is not None:
                self.answered += 1
            if isinstance(answer, tuple):
                body, info = answer
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"),
                    (b"x-edge-path", info.served_by.encode("latin-1")),
                    (b"x-edge-reason", info.reason.encode("latin-1"))]})
                await send({"type": "http.response.body", "body": body})
                return
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: dict[str, Any]) -> tuple[bytes, RouteInfo] | Response | None:
        """The answer's body and route, an error answer, or None to let FastAPI answer."""
        path = scope["path"]
        model: type[Force]
        if path == _LIST_PATH:
            op, camera_id, model = "list_status", 0, ListQuery
        else:
            m = _STATUS_PATH.match(path)
            if m is None:
                return None
            camera_id = int(m.group(1))
            if camera_id > INT64_MAX:
                return None
            op, model = "camera_status", Force
        for name, value in scope.get("headers", ()):
            if name in (b"content-length", b"transfer-encoding") and value.strip() not in (b"", b"0"):
                return None  # a body on a GET: FastAPI's no-body check answers it
        query = _query(scope.get("query_string", b""))
        if query is None:
            return None
        try:
            q = model.model_validate(query)
        except PydanticValidationError:
            return None  # FastAPI names the field, in the API's error envelope
        force = None if q.force_domain is None else ("domain" if q.force_domain else "legacy")
        request: Any = ListStatus(active_only=q.active_only) if isinstance(q, ListQuery) else CameraRef(camera_id)
        route = self._routes.get(op)
        if route is not None:
            scope["route"] = route  # the guard's metrics name the request by its route
        try:
            result, info = self.backend.call(op, request, force, ACTOR)
        except CallFailed as e:
            return failure(e.cause, e.route)
        body = self.encoder.list_answer(result, info) if op == "list_status" \
            else self.encoder.status_answer(result, info)
        return body, info


def _query(raw: bytes) -> dict[str, str] | None:
    """The query's parameters (the guard refused malformed and repeated ones), None if unusual."""
    if not raw:
        return {}
    out: dict[str, str] = {}
    for pair in raw.split(b"&"):
        name, sep, value = pair.partition(b"=")
        if not sep or b"%" in pair or b"+" in pair:
            return None  # escapes and bare names: FastAPI's parser decides
        try:
            out[name.decode("ascii")] = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return out
