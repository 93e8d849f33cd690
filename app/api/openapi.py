"""The OpenAPI 3.1 document, generated from the route table and the dataclasses it names."""

from __future__ import annotations

from functools import lru_cache
from http import HTTPStatus
from typing import Any

from app import __version__
from app.api.routes import COMMON_ERRORS, ROUTES, ErrorInfo, Param, Route, RouteInfo
from app.api.serialize import json_schema
from app.domain.errors import ErrorCode

#: API-level error codes besides the operations' own (see docs/api.md)
API_ERROR_CODES = ("bad_request", "unauthorized", "forbidden", "method_not_allowed", "length_required",
                   "payload_too_large", "unsupported_media_type", "internal")
ERROR_CODES = tuple(c.value for c in ErrorCode) + API_ERROR_CODES


def _param(p: Param, where: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = json_schema(p.type, components)
    if p.enum:
        schema = {"type": "string", "enum": list(p.enum)}
    if p.default is not None:
        schema = {**schema, "default": p.default}
    return {"name": p.name, "in": where, "required": where == "path", "description": p.description,
            "schema": schema}


def _envelope(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    data = json_schema(route.result, components) if route.result is not None else {}
    props: dict[str, Any] = {"data": data}
    required = ["data"]
    if route.op:
        props["route"] = {"$ref": "#/components/schemas/RouteInfo"}
        required.append("route")
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    params = [_param(Param(n, int, "the camera's id" if "cameras" in route.path else "the rule's id"), "path",
                     components) for n in route.path_params]
    params += [_param(p, "query", components) for p in route.all_query]
    responses: dict[str, Any] = {}
    if route.content == "application/json":
        responses[str(route.status)] = {"description": HTTPStatus(route.status).phrase,
                                        "content": {"application/json": {"schema": _envelope(route, components)}}}
        if route.name == "camera_snapshot":
            responses[str(route.status)]["content"]["image/png"] = {
                "schema": {"type": "string", "contentMediaType": "image/png"}}
    elif route.content == "text/plain":
        responses["200"] = {"description": "Prometheus text exposition format 0.0.4",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}
    else:
        responses["200"] = {"description": "OpenAPI document", "content": {route.content: {"schema": {"type": "object"}}}}
    for code in sorted({*route.errors, *COMMON_ERRORS}):
        if route.name == "health" and code == 503:
            responses["503"] = {"description": "the station is down",
                                "content": {"application/json": {"schema": _envelope(route, components)}}}
            continue
        responses[str(code)] = {"description": HTTPStatus(code).phrase,
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "tags": [route.tag],
                          "parameters": params, "responses": responses}
    if route.op:
        op["description"] = (f"Runs the station operation `{route.op}` through the rollout router. "
                             "The answer's `route` tells which path served it.")
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": json_schema(route.body, components, exclude=route.body_exclude, request=True)}}}
    return op


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    json_schema(RouteInfo, components)
    err = json_schema(ErrorInfo, components)  # noqa: F841 - registers ErrorInfo
    components["ErrorInfo"]["properties"]["code"] = {"type": "string", "enum": list(ERROR_CODES)}
    components["Error"] = {
        "type": "object", "additionalProperties": False, "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/ErrorInfo"},
                       "route": {"anyOf": [{"$ref": "#/components/schemas/RouteInfo"}, {"type": "null"}]}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Edge Station local control API", "version": __version__,
                 "description": "Local HTTP/JSON control of a running Edge Station. "
                                "Every request needs `Authorization: Bearer <token>` (the token file in the data dir)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
