"""The local control API: HTTP/JSON on 127.0.0.1, bearer token, one route table.

Stdlib ``ThreadingHTTPServer`` on a thread of its own (Qt-free). Security:

* a bearer token from the data dir on every request (401 without it),
* no cross-origin access: a request carrying ``Origin`` (or ``Sec-Fetch-Site:
  cross-site``) is refused with 403 and no CORS header is ever sent; on a loopback
  bind the ``Host`` must be a loopback name (DNS rebinding),
* request bodies must be ``application/json`` and at most ``max_body`` bytes (413),
* a non-loopback bind only with ``allow_remote=True`` (explicit configuration).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from app.api.backend import CallFailed, StationBackend
from app.api.monitoring import CONTENT_TYPE as PROM_CONTENT_TYPE
from app.api.monitoring import ApiMetrics
from app.api.openapi import openapi_document
from app.api.routes import Param, RolloutUpdate, Route, RouteInfo, UpdateRuleBody, match
from app.api.serialize import INT64_MAX, INT64_MIN, decode_value, from_json, to_json, type_hints
from app.api.token import TOKEN_FILENAME, ensure_token
from app.domain.errors import ErrorCode, FieldError, OperationError, ValidationError
from app.domain.rules import AlertRule, Notify

log = logging.getLogger("edge_station.api")

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 64 * 1024
DISCOVERY_FILENAME = "api.json"
ACTOR = "api"

#: settings keys (table ``settings``) the station reads to start the API
K_ENABLED, K_HOST, K_PORT, K_ALLOW_REMOTE, K_MAX_BODY = (
    "api.enabled", "api.host", "api.port", "api.allow_remote", "api.max_body")

STATUS_OF_CODE = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.VALIDATION: 422,
    ErrorCode.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """Base of the API package's errors."""


class ApiConfigError(ApiError):
    """The API cannot start with this configuration (address, port, token)."""


class HttpError(ApiError):
    """An answer other than success, with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class ApiSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_remote: bool = False
    max_body: int = DEFAULT_MAX_BODY

    @classmethod
    def from_store(cls, store: Any) -> ApiSettings:
        with store.uow() as uow:
            stored = uow.settings.all()
        d = cls()
        return cls(enabled=bool(stored.get(K_ENABLED, d.enabled)), host=str(stored.get(K_HOST, d.host)),
                   port=int(stored.get(K_PORT, d.port)), allow_remote=bool(stored.get(K_ALLOW_REMOTE, d.allow_remote)),
                   max_body=int(stored.get(K_MAX_BODY, d.max_body)))


def start_for_station(station: Any) -> ApiServer | None:
    """Start the API as the station's settings configure it (the station calls this when it opens).

    Returns None when ``api.enabled`` is off, or when the API cannot start (a busy port, a
    refused address): that is logged as an error and the station runs on without it.
    """
    try:
        server = ApiServer.from_settings(station)
        return server.start() if server is not None else None
    except (ApiError, OSError, ValueError) as e:
        log.error("the local API is not available: %s", e)
        return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- request parsing


def _parse_query_value(p: Param, raw: str) -> Any:
    tp = p.type
    base = {bool | None: bool, float | None: float, int | None: int}.get(tp, tp)
    if p.enum:
        if raw not in p.enum:
            raise ValidationError(FieldError(p.name, f"must be one of {', '.join(p.enum)}"), subject="query")
        return raw
    if base is bool:
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValidationError(FieldError(p.name, f"must be true or false, not {raw!r}"), subject="query")
    if base is int:
        try:
            value = int(raw, 10)
        except ValueError:
            raise ValidationError(FieldError(p.name, f"must be an integer, not {raw!r}"), subject="query") from None
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(FieldError(p.name, "must be a 64-bit integer"), subject="query")
        return value
    if base is float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(FieldError(p.name, f"must be a finite number, not {raw!r}"), subject="query")
        return value
    return raw


def parse_query(route: Route, raw: str) -> dict[str, Any]:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw), max_num_fields=50)
    except ValueError as e:
        raise HttpError(400, "bad_request", f"malformed query string: {e}") from None
    known = {p.name: p for p in route.all_query}
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for name, value in pairs:
        p = known.get(name)
        if p is None:
            errors.append(FieldError(name, "is not a parameter of this endpoint"))
        elif name in out:
            errors.append(FieldError(name, "is given more than once"))
        else:
            try:
                out[name] = _parse_query_value(p, value)
            except ValidationError as e:
                errors += e.errors
    if errors:
        raise ValidationError(errors, subject="query")
    return out


def decode_rule_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check the names and types of the ``changes`` of an update against the rule's fields, reporting
    every problem at once (the operation then judges the values: ranges, metric, schedule...)."""
    hints = type_hints(AlertRule)
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, value in changes.items():
        tp = hints.get(key)
        if tp is None or key in ("id", "version"):
            errors.append(FieldError(str(key), "is not a field of an alert rule that can be changed"))
            continue
        try:
            if key == "notify" and isinstance(value, Mapping):
                out[key] = _decode_notify_patch(value)
            else:
                out[key] = decode_value(tp, value, f"changes.{key}")
        except ValidationError as e:
            errors += e.errors
    if errors:
        raise ValidationError(errors, subject="changes")
    return out


def _decode_notify_patch(patch: Mapping[str, Any]) -> dict[str, Any]:
    """A ``notify`` change is a patch (the settings it leaves out keep their values): check the
    types of the settings it names and pass it on as a mapping."""
    hints = type_hints(Notify)
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, value in patch.items():
        tp = hints.get(key)
        if tp is None:
            errors.append(FieldError(f"notify.{key}", "is not a notification setting"))
            continue
        try:
            out[key] = decode_value(tp, value, f"changes.notify.{key}")
        except ValidationError as e:
            errors += e.errors
    if errors:
        raise ValidationError(errors, subject="changes")
    return out


# ---------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    api: ApiServer

    def __init__(self, addr: tuple[str, int], handler: type, family: int):
        self.address_family = family
        super().__init__(addr, handler)


class ApiServer:
    """``ApiServer(station, host="127.0.0.1", port=8765, token_path=...)``; ``start()`` / ``stop()``.

    ``port=0`` picks a free port (see :attr:`port` after ``start``). ``router`` overrides
    the station's own router (anything with ``call_with_decision``/``snapshot``/``set``...).
    """

    def __init__(self, station: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 token_path: Path | None = None, allow_remote: bool = False, max_body: int = DEFAULT_MAX_BODY,
                 router: Any = None, discovery: bool = True):
        if not is_loopback(host) and not allow_remote:
            raise ApiConfigError(f"refusing to serve the API on {host}: it is not a loopback address; "
                                 "set api.allow_remote to serve it beyond this machine")
        if not 0 <= int(port) <= 65535:
            raise ApiConfigError(f"API port {port} is out of range (0-65535)")
        self.station = station
        self.host = host
        self.requested_port = int(port)
        self.allow_remote = allow_remote
        self.loopback_only = is_loopback(host)
        self.max_body = int(max_body)
        data_dir = Path(station.paths.data_dir)
        self.token_path = Path(token_path) if token_path is not None else data_dir / TOKEN_FILENAME
        self.discovery_path = data_dir / "run" / DISCOVERY_FILENAME if discovery else None
        self.backend = StationBackend(station, router)
        self.metrics = ApiMetrics(self.backend)
        self._token = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    @classmethod
    def from_settings(cls, station: Any, **overrides: Any) -> ApiServer | None:
        """The API as the station's settings configure it, or None when ``api.enabled`` is off."""
        s = ApiSettings.from_store(station.store)
        if not s.enabled:
            return None
        kw = {"host": s.host, "port": s.port, "allow_remote": s.allow_remote, "max_body": s.max_body, **overrides}
        return cls(station, **kw)

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise ApiError("the API server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self._token

    def start(self) -> ApiServer:
        if self._server is not None:
            return self
        self._token = ensure_token(self.token_path)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            server = _Server((self.host, self.requested_port), _Handler, family)
        except OSError as e:
            raise ApiConfigError(f"cannot serve the API on {self.host}:{self.requested_port}: "
                                 f"{e.strerror or e}") from e
        server.api = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edge-api", daemon=True)
        self._thread.start()
        self._write_discovery()
        log.info("API listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections: wake their threads up
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._remove_discovery()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_discovery(self) -> None:
        if self.discovery_path is None:
            return
        doc = {"url": self.url, "host": self.host, "port": self.port, "pid": os.getpid(),
               "token_path": str(self.token_path)}
        try:
            self.discovery_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.discovery_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.discovery_path)
        except OSError as e:
            log.warning("cannot write %s (the CLI will need --url): %s", self.discovery_path, e)

    def _remove_discovery(self) -> None:
        if self.discovery_path is None:
            return
        try:
            if json.loads(self.discovery_path.read_text()).get("pid") == os.getpid():
                self.discovery_path.unlink()
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------ connection tracking

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ------------------------------------------------------------ handling (called from handler threads)

    def check_token(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer "):
            raise HttpError(401, "unauthorized", "this API needs 'Authorization: Bearer <token>' "
                                                 f"(the token is in {self.token_path})",
                            headers={"WWW-Authenticate": 'Bearer realm="edge-station"'})
        given = header[len("Bearer "):].strip().encode()
        if not hmac.compare_digest(given, self._token.encode()):
            raise HttpError(401, "unauthorized", "the bearer token is not this station's",
                            headers={"WWW-Authenticate": 'Bearer realm="edge-station", error="invalid_token"'})

    def check_origin(self, headers: Mapping[str, str]) -> None:
        if headers.get("Origin") is not None or headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise HttpError(403, "forbidden", "cross-origin requests are not allowed")
        if self.loopback_only:
            host = (headers.get("Host") or "").strip()
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if not name or not is_loopback(name):
                raise HttpError(403, "forbidden", f"Host {host!r} is not a loopback name")

    def handle(self, route: Route, params: dict[str, str], query: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        """``(status, payload, headers)``; payload is a JSON-ready value, bytes, or raises HttpError."""
        q = parse_query(route, query)
        path_values: dict[str, int] = {}
        errors: list[FieldError] = []
        for name, raw in params.items():
            try:
                path_values[name] = int(raw, 10)
            except ValueError:
                errors.append(FieldError(name, f"must be an integer id, not {raw!r}"))
                continue
            if not INT64_MIN <= path_values[name] <= INT64_MAX:
                errors.append(FieldError(name, "must be a 64-bit integer"))
        if errors:
            raise ValidationError(errors, subject="path")
        if route.op is not None:
            return self._operation(route, path_values, q, body)
        if route.name == "delete_rule":
            self.station.admin.delete_rule(path_values["id"])
            return 200, {"data": {"deleted": path_values["id"]}}, {}
        if route.name == "get_rollout":
            return 200, {"data": to_json(self.backend.rollout())}, {}
        if route.name == "put_rollout":
            change = from_json(RolloutUpdate, body)
            return 200, {"data": to_json(self.backend.update_rollout(change, ACTOR))}, {}
        if route.name == "health":
            doc = self.backend.health()
            return (503 if doc.status == "down" else 200), {"data": to_json(doc)}, {}
        if route.name == "metrics":
            return 200, self.metrics.render(), {"Content-Type": PROM_CONTENT_TYPE}
        if route.name == "openapi":
            return 200, openapi_document(), {"Content-Type": "application/openapi+json"}
        raise HttpError(500, "internal", f"route {route.name} has no handler")

    def _operation(self, route: Route, path_values: dict[str, int], q: dict[str, Any],
                   body: Any) -> tuple[int, Any, dict[str, str]]:
        typed_body: Any = None
        if route.body is AlertRule:
            typed_body = from_json(AlertRule, body, exclude=route.body_exclude)
        elif route.body is UpdateRuleBody:
            typed_body = from_json(UpdateRuleBody, body)
            typed_body = UpdateRuleBody(decode_rule_changes(typed_body.changes), typed_body.expected_version)
        request = route.build(path_values, q, typed_body)  # type: ignore[misc]
        fd = q.get("force_domain")
        force = None if fd is None else ("domain" if fd else "legacy")
        result, info = self.backend.call(route.op, request, force, ACTOR)  # type: ignore[arg-type]
        headers = _route_headers(info)
        if route.name == "camera_snapshot" and q.get("format") == "png":
            headers.update({"Content-Type": "image/png", "X-Snapshot-Seq": str(result.seq),
                            "X-Snapshot-Taken-At": repr(result.taken_at)})
            return route.status, result.png, headers
        return route.status, {"data": to_json(result), "route": to_json(info)}, headers


def _route_headers(info: RouteInfo | None) -> dict[str, str]:
    if info is None:
        return {}
    return {"X-Edge-Path": info.served_by, "X-Edge-Reason": info.reason}


def _error_payload(code: str, message: str, details: dict | None, info: RouteInfo | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": to_json(details or {})},
            "route": to_json(info) if info is not None else None}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EdgeStation"
    sys_version = ""
    timeout = 30  # seconds an idle keep-alive connection is kept
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without NODELAY, Nagle + delayed ACK add ~40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        api = self.server.api
        t0 = time.perf_counter()
        split = urlsplit(self.path)
        route, params, allowed = match(self.command, split.path)
        label = route.name if route is not None else "unmatched"
        status = 500
        info: RouteInfo | None = None
        self._body_read = False
        try:
            api.check_origin(self.headers)
            api.check_token(self.headers.get("Authorization"))
            if route is None:
                if allowed:
                    raise HttpError(405, "method_not_allowed", f"{split.path} allows {', '.join(allowed)}",
                                    headers={"Allow": ", ".join(allowed)})
                raise HttpError(404, "not_found", f"no endpoint {split.path}")
            body = self._read_body(route)
            status, payload, headers = api.handle(route, params, split.query, body)
        except HttpError as e:
            if not self._body_read and self.headers.get("Content-Length", "0") not in ("", "0"):
                self.close_connection = True  # the unread body would be taken for the next request
            status, headers = e.status, e.headers
            payload = _error_payload(e.code, e.message, e.details, None)
        except CallFailed as e:
            info = e.route
            status, payload, headers = self._failure(e.cause, info)
        except Exception as e:  # ValidationError from parsing, rollout errors, bugs
            status, payload, headers = self._failure(e, None)
        self._send(status, payload, headers)
        api.metrics.observe(label, self.command, status, time.perf_counter() - t0)

    def _failure(self, e: BaseException, info: RouteInfo | None) -> tuple[int, Any, dict[str, str]]:
        from app.rollout.errors import GateRefused, RolloutError, RolloutSettingsError

        headers = _route_headers(info)
        if isinstance(e, OperationError):
            return STATUS_OF_CODE.get(e.code, 500), _error_payload(str(e.code), e.message, e.details, info), headers
        if isinstance(e, RolloutSettingsError):
            return 422, _error_payload("validation", str(e), {}, info), headers
        if isinstance(e, GateRefused):
            details = e.result.as_dict() if hasattr(e.result, "as_dict") else {}
            return 409, _error_payload("invalid_state", str(e), details, info), headers
        if isinstance(e, RolloutError):
            return 409, _error_payload("invalid_state", str(e), {}, info), headers
        log.exception("API request %s %s failed", self.command, self.path)
        return 500, _error_payload("internal", f"unexpected {type(e).__name__}: {e}"[:500], {}, info), headers

    def _read_body(self, route: Route) -> Any:
        api = self.server.api
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HttpError(411, "length_required", "send the body with a Content-Length, not chunked")
        raw_len = self.headers.get("Content-Length")
        try:
            length = int(raw_len) if raw_len is not None else 0
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "bad_request", f"Content-Length {raw_len!r} is not a number") from None
        if length < 0:
            self.close_connection = True
            raise HttpError(400, "bad_request", "negative Content-Length")
        if length > api.max_body:
            self.close_connection = True
            raise HttpError(413, "payload_too_large", f"the body is {length} bytes; at most {api.max_body} are accepted")
        data = self.rfile.read(length) if length else b""
        self._body_read = True
        if len(data) != length:
            self.close_connection = True
            raise HttpError(400, "bad_request", "the body ended before its Content-Length")
        if route.body is None:
            if data.strip() not in (b"", b"{}"):
                raise HttpError(422, "validation", f"{route.method} {route.path} takes no body",
                                {"errors": [{"field": "body", "message": "must be empty"}]})
            return None
        if not data.strip():
            raise HttpError(422, "validation", f"{route.method} {route.path} needs a JSON body",
                            {"errors": [{"field": "body", "message": "is required"}]})
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, "unsupported_media_type", "send the body as application/json")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HttpError(400, "bad_request", f"the body is not JSON: {e}") from None
        except RecursionError:
            raise HttpError(400, "bad_request", "the body is nested too deeply") from None

    def _send(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
        headers = dict(headers)
        if isinstance(payload, bytes):
            body = payload
            headers.setdefault("Content-Type", "application/octet-stream")
        else:
            body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
