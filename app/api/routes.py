"""The API's one route table: the server dispatches on it and the OpenAPI document is built from it.

Operation routes map a URL to one of the thirteen operations: the route names
the operation, its path and query parameters, its request body type and how to
build the typed request. Every operation route accepts ``force_domain``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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
from app.domain.rules import AlertRule

PREFIX = "/api/v1"

# ---------------------------------------------------------------- API-only bodies and documents


@dataclass(frozen=True)
class RouteInfo:
    """How the call was routed: the path chosen, why, and which path served it (legacy after a fallback)."""

    operation: str
    path: str
    reason: str
    served_by: str
    forced: bool
    fallback: bool = False
    fallback_cause: str = ""
    key: str = ""
    percent: int = 0


@dataclass(frozen=True)
class UpdateRuleBody:
    """The fields to change (names as in the rule) and, optionally, the version the change is based on."""

    changes: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class RolloutUpdate:
    """A change to the rollout. Give any of the settings, or ``rollback``/``advance`` for one step."""

    use_domain: bool | None = None
    percent: int | None = None
    auto_rollback: bool | None = None
    shadow_rate: float | None = None
    thresholds: dict[str, Any] | None = None
    rollback: bool = False
    advance: bool = False
    reason: str = ""
    track: str | None = None  # rules | cameras | all (default: both tracks; advance: each whose gate passes)
    override_reason: str | None = None  # raise a share / advance although the gate holds (audited)


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    dialect: str
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class SupervisorHealth:
    ok: bool
    workers: int
    error: str | None = None


@dataclass(frozen=True)
class CameraHealth:
    camera_id: int
    name: str
    active: bool
    state: str
    ok: bool
    source: str | None = None
    fps: float | None = None
    last_frame_age: float | None = None
    restarts: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class RolloutHealth:
    verdict: str  # ok | alert | inconclusive | unknown
    use_domain: bool
    percent: int
    latched: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthDocument:
    """``ok``: everything fine; ``degraded``: the station runs but a camera or the rollout needs
    attention; ``down``: the database or the supervisor does not work (HTTP 503)."""

    status: str
    checked_at: float
    database: DatabaseHealth
    supervisor: SupervisorHealth
    cameras: tuple[CameraHealth, ...]
    rollout: RolloutHealth


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    description: str
    default: Any = None
    enum: tuple[str, ...] = ()


FORCE = Param("force_domain", bool | None,
              "true: run on the domain path; false: run on the legacy path; absent: the rollout router decides")

Builder = Callable[[Mapping[str, Any], Mapping[str, Any], Any], Any]  # (path params, query, body) -> request


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str  # operationId
    summary: str
    tag: str
    op: str | None = None  # one of the thirteen operations, or None for the API's own endpoints
    build: Builder | None = None
    query: tuple[Param, ...] = ()
    body: Any = None  # request body type (a dataclass) or None
    body_exclude: frozenset[str] = frozenset()
    result: Any = None  # the ``data`` type of a JSON answer
    status: int = 200
    errors: tuple[int, ...] = ()
    content: str = "application/json"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"{(\w+)}", self.path)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        return re.compile(f"^{regex}$")

    @property
    def all_query(self) -> tuple[Param, ...]:
        return (*self.query, FORCE) if self.op else self.query


#: errors every route can answer
COMMON_ERRORS = (400, 401, 403, 413, 415, 500)
OP_ERRORS = (404, 409, 422, 503)


def _cam(p: Mapping[str, Any]) -> int:
    return p["id"]


def _camera_route(method: str, action: str, op: str, summary: str, result: Any = CameraStatus,
                  build: Builder | None = None, query: tuple[Param, ...] = ()) -> Route:
    return Route(method, f"{PREFIX}/cameras/{{id}}/{action}", op, summary, "cameras", op=op,
                 build=build or (lambda p, q, b: CameraRef(_cam(p))), query=query, result=result, errors=OP_ERRORS)


ROUTES: tuple[Route, ...] = (
    Route("GET", f"{PREFIX}/cameras", "list_status", "Every camera's status", "cameras", op="list_status",
          build=lambda p, q, b: ListStatus(active_only=q.get("active_only") or False),
          query=(Param("active_only", bool, "only active cameras", False),), result=StatusList, errors=OP_ERRORS),
    _camera_route("POST", "start", "start_camera", "Start the camera's worker"),
    _camera_route("POST", "stop", "stop_camera", "Stop the camera's worker (TERM, then KILL after the timeout)",
                  build=lambda p, q, b: StopCamera(_cam(p), q.get("timeout")),
                  query=(Param("timeout", float | None, "seconds to wait after TERM (default: the supervisor's)"),)),
    _camera_route("POST", "restart", "restart_camera", "Stop and start the camera's worker"),
    _camera_route("POST", "activate", "activate_camera", "Mark the camera active (it autostarts)"),
    _camera_route("POST", "deactivate", "deactivate_camera", "Stop the camera if running and mark it inactive"),
    _camera_route("POST", "probe", "probe_camera", "Open the camera's source briefly and report what it is",
                  result=ProbeResult, build=lambda p, q, b: ProbeRequest(_cam(p), q.get("timeout", 8.0)),
                  query=(Param("timeout", float, "seconds the probe may take", 8.0),)),
    _camera_route("GET", "status", "camera_status", "The camera's state, process and stream figures"),
    _camera_route("GET", "logs", "camera_logs", "Recent worker log lines and supervisor events",
                  result=CameraLogs, build=lambda p, q, b: LogsRequest(_cam(p), q.get("limit", 200)),
                  query=(Param("limit", int, "at most this many lines", 200),)),
    _camera_route("GET", "snapshot", "camera_snapshot",
                  "The latest frame: JSON with the PNG in base64, or the PNG itself with format=png",
                  result=Snapshot, query=(Param("format", str, "json or png", "json", enum=("json", "png")),)),
    _camera_route("GET", "stats", "camera_stats", "Process and frame figures over a window",
                  result=CameraStats, build=lambda p, q, b: StatsRequest(_cam(p), q.get("window_s", 60.0)),
                  query=(Param("window_s", float, "the window in seconds", 60.0),)),
    Route("POST", f"{PREFIX}/alerts/rules", "create_rule", "Create an alert rule", "alerts", op="create_rule",
          build=lambda p, q, b: CreateRule(b), body=AlertRule, body_exclude=frozenset({"id", "version"}),
          result=RuleResult, status=201, errors=OP_ERRORS),
    Route("PUT", f"{PREFIX}/alerts/rules/{{id}}", "update_rule", "Change an alert rule", "alerts", op="update_rule",
          build=lambda p, q, b: UpdateRule(p["id"], b.changes, b.expected_version), body=UpdateRuleBody,
          result=RuleResult, errors=OP_ERRORS),
    Route("DELETE", f"{PREFIX}/alerts/rules/{{id}}", "delete_rule",
          "Delete an alert rule (station administration, not routed)", "alerts", result=dict, errors=(404,)),
    Route("GET", f"{PREFIX}/rollout", "get_rollout", "The rollout: settings, stage, shares, health, gate", "rollout",
          result=dict),
    Route("PUT", f"{PREFIX}/rollout", "put_rollout", "Change the rollout settings, advance a stage or roll back",
          "rollout", body=RolloutUpdate, result=dict, errors=(409, 422)),
    Route("GET", f"{PREFIX}/monitoring/health", "health", "The station's health (HTTP 503 when down)",
          "monitoring", result=HealthDocument, errors=(503,)),
    Route("GET", f"{PREFIX}/monitoring/metrics", "metrics", "Metrics in the Prometheus text format", "monitoring",
          content="text/plain"),
    Route("GET", f"{PREFIX}/openapi.json", "openapi", "This document", "meta", content="application/openapi+json"),
)

ROUTES_BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """``(route, path params, allowed methods)``; the route is None when the path or the method does not match."""
    allowed: list[str] = []
    for r in ROUTES:
        m = r.pattern.match(path)
        if m is None:
            continue
        if r.method == method:
            return r, m.groupdict(), [r.method]
        allowed.append(r.method)
    return None, {}, allowed
