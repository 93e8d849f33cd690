"""What the API's application, its guard and its evidence routes share, low in the package.

The paths and the audit actor, the path parameters, the error answers (:func:`failure`, the
responses every endpoint documents), and the server as each of them sees it: :class:`AppServer`
for the application and its routes, :class:`GuardServer` for the middleware. ``app/api/server.py``
builds both from its ``ApiServer``; nothing here imports it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Path, Request
from starlette.responses import Response

from app.api.errors import STATUS_OF_CODE, HttpError, error_payload, route_headers
from app.api.models import INT64_MAX, ErrorBody
from app.domain.errors import OperationError

if TYPE_CHECKING:
    from app.api.backend import StationBackend
    from app.api.monitoring import ApiMetrics
    from app.station.port import StationPort

log = logging.getLogger("edge_station.api")

PREFIX = "/api/v1"
ACTOR = "api"
DOCS_PATH = f"{PREFIX}/docs"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
#: readable without the token (the document describes every station alike; the docs page is a
#: browser's, which cannot send a bearer token with a page load). Host/Origin checks still apply.
PUBLIC_PATHS = (OPENAPI_PATH, DOCS_PATH)

#: answers every endpoint may give besides its own (the middleware's and the validation's)
COMMON_ERRORS = (400, 401, 403, 413, 415, 422, 500)
OP_ERRORS = (404, 409, 422, 503)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: the error envelope for ``codes`` and for :data:`COMMON_ERRORS`."""
    return {c: {"model": ErrorBody, "description": HTTPStatus(c).phrase} for c in sorted({*codes, *COMMON_ERRORS})}


@functools.lru_cache(maxsize=512)  # the guard asks for every request's Host
def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- the server, as its parts see it


class EventStream(Protocol):
    """The station's events to one SSE client (the server's event hub)."""

    def stream(self, kinds: frozenset[str]) -> AsyncIterator[bytes]: ...


class AppServer(Protocol):
    """What the application and its routes read from the server."""

    @property
    def station(self) -> StationPort: ...

    @property
    def backend(self) -> StationBackend: ...

    @property
    def metrics(self) -> ApiMetrics: ...

    @property
    def events(self) -> EventStream: ...


class GuardServer(Protocol):
    """What the guard (app/api/middleware.py) reads from the server: its limits, token and metrics."""

    @property
    def metrics(self) -> ApiMetrics: ...

    @property
    def loopback_only(self) -> bool: ...

    @property
    def token(self) -> str: ...

    @property
    def token_path(self) -> FilePath: ...

    @property
    def max_body(self) -> int: ...

    @property
    def request_timeout(self) -> float: ...


# ---------------------------------------------------------------- path parameters, bodies

CamId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the camera's id")]
RuleId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the rule's id")]
EventId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the alert event's id")]
ReportId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the problem report's id")]


async def no_body(request: Request) -> None:
    """Endpoints without a body refuse one (an empty body or ``{}`` is fine)."""
    body = await request.body()
    if body.strip() not in (b"", b"{}"):
        raise HttpError(422, "validation", f"{request.method} {request.url.path} takes no body",
                        {"errors": [{"field": "body", "message": "must be empty"}]})


NoBody = [Depends(no_body)]


# ---------------------------------------------------------------- answers


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def failure(e: BaseException, info: Any) -> Response:
    """The error envelope and status for what an operation or a facade call raised."""
    from app.rollout.errors import GateRefused, RolloutError, RolloutSettingsError

    headers = route_headers(info)
    if isinstance(e, HttpError):
        return json_response(e.status, error_payload(e.code, e.message, e.details, info), {**headers, **e.headers})
    if isinstance(e, OperationError):
        return json_response(STATUS_OF_CODE.get(e.code, 500), error_payload(str(e.code), e.message, e.details, info),
                             headers)
    if isinstance(e, RolloutSettingsError):
        return json_response(422, error_payload("validation", str(e), {}, info), headers)
    if isinstance(e, GateRefused):
        details = e.result.as_dict() if hasattr(e.result, "as_dict") else {}
        return json_response(409, error_payload("invalid_state", str(e), details, info), headers)
    if isinstance(e, RolloutError):
        return json_response(409, error_payload("invalid_state", str(e), {}, info), headers)
    log.error("API request failed", exc_info=e)
    return json_response(500, error_payload("internal", f"unexpected {type(e).__name__}: {e}"[:500], {}, info),
                         headers)
