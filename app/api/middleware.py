"""The API's guard, as one ASGI middleware in front of the application.

In this order, before any endpoint runs:

* **Origin / Host**: a request with ``Origin`` (other than this server's own, which the
  interactive docs send) or ``Sec-Fetch-Site: cross-site`` is refused (403) and no CORS header
  is ever sent; on a loopback bind the ``Host`` must be a loopback name (DNS rebinding);
* **bearer token** on everything but the OpenAPI document and the docs (401), compared in
  constant time;
* **query**: malformed (400) or a parameter given twice (422);
* **body**: chunked (411), above ``max_body`` (413, not read), not ``application/json`` (415),
  read within the request deadline (400 when it ends before its Content-Length), not JSON
  (400), text with a lone surrogate or a number of absurd length (422, naming the field).

It also times every request into the API's metrics and adds ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff`` to every answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from app.api.common import DOCS_PATH, OPENAPI_PATH, GuardServer, is_loopback
from app.api.errors import HttpError, error_payload

log = logging.getLogger("edge_station.api")

MAX_INT_DIGITS = 20  # int64 has 19 digits: anything longer is no number the API takes
MAX_FLOAT_CHARS = 400
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EXTRA_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


class _BadNumber(ValueError):
    pass


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(f"a number of {len(text)} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise _BadNumber(f"a number of {len(text)} characters")
    return float(text)


def _surrogate(value: Any, where: str) -> str | None:
    """The first place (dotted path) holding text that is not valid Unicode, or None."""
    stack = [(value, where)]
    while stack:
        v, w = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return w or "body"
        elif isinstance(v, dict):
            for k, item in v.items():
                path = f"{w}.{k}" if w else str(k)
                try:
                    k.encode("utf-8")
                except UnicodeEncodeError:
                    return path.encode("utf-8", "backslashreplace").decode()
                stack.append((item, path))
        elif isinstance(v, list):
            stack.extend((item, f"{w}[{i}]") for i, item in enumerate(v))
    return None


def check_json(data: bytes) -> None:
    """Raise HttpError unless ``data`` is JSON the API can take (see the module docstring)."""
    try:
        value = json.loads(data.decode("utf-8"), parse_int=_int, parse_float=_float)
    except _BadNumber as e:
        raise HttpError(422, "validation", f"the body holds {e}; numbers here fit in 64 bits",
                        {"errors": [{"field": "body", "message": f"holds {e}"}]}) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HttpError(400, "bad_request", f"the body is not JSON: {e}") from None
    except RecursionError:
        raise HttpError(400, "bad_request", "the body is nested too deeply") from None
    where = _surrogate(value, "")
    if where is not None:
        raise HttpError(422, "validation", f"invalid request: {where}: holds a lone surrogate (not valid Unicode text)",
                        {"errors": [{"field": where, "message": "holds a lone surrogate (not valid Unicode text)"}]})


def is_public(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and (path == OPENAPI_PATH or path == DOCS_PATH
                                          or path.startswith(DOCS_PATH + "/assets/"))


class Guard:
    """``Guard(app, server)``: the middleware (see the module docstring)."""

    def __init__(self, app: Any, server: GuardServer):
        self.app = app
        self.server = server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        close = [False]

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", ())) + _EXTRA_HEADERS
                if close[0]:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
            method = scope["method"]
            self.check_origin(headers)
            if not is_public(method, scope["path"]):
                self.check_token(headers.get("authorization"))
            self.check_query(scope.get("query_string", b""))
            body = b""
            if method in _BODY_METHODS or headers.get("content-length") not in (None, "0") \
                    or "transfer-encoding" in headers:
                body = await self.read_body(headers, receive, close)
        except HttpError as e:
            await self._send_error(e, send_wrapped)
            self._observe(scope, method if "method" in locals() else "?", status[0], t0)
            return
        done = [False]

        async def replay() -> dict[str, Any]:
            if not done[0]:
                done[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        try:
            await self.app(scope, replay, send_wrapped)
        finally:
            self._observe(scope, method, status[0], t0)

    def _observe(self, scope: dict[str, Any], method: str, status: int, t0: float) -> None:
        route = scope.get("route")
        name = getattr(route, "name", None) or getattr(route, "operation_id", None) or "unmatched"
        try:
            self.server.metrics.observe(name, method, status, time.perf_counter() - t0)
        except Exception:
            log.exception("API metrics failed")

    async def _send_error(self, e: HttpError, send: Any) -> None:
        body = json.dumps(error_payload(e.code, e.message, e.details, None), separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in e.headers.items()]
        await send({"type": "http.response.start", "status": e.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------ checks

    def check_origin(self, headers: dict[str, str]) -> None:
        host = (headers.get("host") or "").strip()
        origin = headers.get("origin")
        if origin is not None and not (host and origin == f"http://{host}"):
            raise HttpError(403, "forbidden", "cross-origin requests are not allowed")
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            raise HttpError(403, "forbidden", "cross-origin requests are not allowed")
        if self.server.loopback_only:
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if not name or not is_loopback(name):
                raise HttpError(403, "forbidden", f"Host {host!r} is not a loopback name")

    def check_token(self, header: str | None) -> None:
        server = self.server
        if not header or not header.startswith("Bearer "):
            raise HttpError(401, "unauthorized", "this API needs 'Authorization: Bearer <token>' "
                                                 f"(the token is in {server.token_path})",
                            headers={"WWW-Authenticate": 'Bearer realm="edge-station"'})
        given = header[len("Bearer "):].strip().encode("latin-1", "replace")
        if not hmac.compare_digest(given, server.token.encode()):
            raise HttpError(401, "unauthorized", "the bearer token is not this station's",
                            headers={"WWW-Authenticate": 'Bearer realm="edge-station", error="invalid_token"'})

    @staticmethod
    def check_query(raw: bytes) -> None:
        if not raw:
            return
        try:
            pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, strict_parsing=True, max_num_fields=50)
        except ValueError as e:
            raise HttpError(400, "bad_request", f"malformed query string: {e}") from None
        seen: set[str] = set()
        twice = []
        for name, _ in pairs:
            if name in seen:
                twice.append(name)
            seen.add(name)
        if twice:
            errors = [{"field": n, "message": "is given more than once"} for n in sorted(set(twice))]
            raise HttpError(422, "validation", "invalid query: " + "; ".join(f"{e['field']}: {e['message']}"
                                                                           for e in errors), {"errors": errors})

    async def read_body(self, headers: dict[str, str], receive: Any, close: list[bool]) -> bytes:
        server = self.server
        if headers.get("transfer-encoding"):
            close[0] = True
            raise HttpError(411, "length_required", "send the body with a Content-Length, not chunked",
                            headers={"Connection": "close"})
        raw_len = headers.get("content-length")
        try:
            length = int(raw_len) if raw_len is not None else 0
        except ValueError:
            raise HttpError(400, "bad_request", f"Content-Length {raw_len!r} is not a number",
                            headers={"Connection": "close"}) from None
        if length < 0:
            raise HttpError(400, "bad_request", "negative Content-Length", headers={"Connection": "close"})
        if length > server.max_body:
            raise HttpError(413, "payload_too_large",
                            f"the body is {length} bytes; at most {server.max_body} are accepted",
                            headers={"Connection": "close"})
        chunks: list[bytes] = []
        got = 0
        if length:
            try:
                async with asyncio.timeout(server.request_timeout):
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            raise HttpError(400, "bad_request", "the client went away before sending its body")
                        chunk = message.get("body", b"")
                        chunks.append(chunk)
                        got += len(chunk)
                        if not message.get("more_body", False):
                            break
            except TimeoutError:
                raise HttpError(400, "bad_request",
                                f"the body ended before its Content-Length ({got} of {length} bytes within "
                                f"{server.request_timeout:g} s)", headers={"Connection": "close"}) from None
        data = b"".join(chunks)
        if len(data) != length:
            raise HttpError(400, "bad_request", "the body ended before its Content-Length",
                            headers={"Connection": "close"})
        if not data.strip():
            return data
        ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, "unsupported_media_type", "send the body as application/json")
        check_json(data)
        return data
