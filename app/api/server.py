"""The local control API server: the FastAPI application on uvicorn, on a thread and loop of its own.

Security and limits (see also app/api/middleware.py):

* a bearer token from the data dir (401 without it), rotated when the station starts after
  an unclean stop (a ``run/api.json`` left by a process that is gone);
* a loopback bind unless ``api.allow_remote`` is set explicitly (true, a real boolean);
* **connections**: at most ``api.max_connections`` at once (uvicorn's ``limit_concurrency``
  answers 503 beyond it; a connection beyond twice that is closed as it is accepted, so no
  number of clients can hold more than a bounded number of the station's descriptors);
* **request deadline**: a request's head must arrive within ``api.request_timeout`` seconds of
  its first byte (or of the connection), and its body within as long again; a connection that
  sends nothing is closed after that time too (one byte every 25 s keeps nothing open);
* **keep-alive**: an idle connection between requests is closed after ``api.keep_alive`` s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.api.backend import StationBackend
from app.api.common import is_loopback
from app.api.errors import ApiConfigError, ApiError, HttpError
from app.api.monitoring import ApiMetrics
from app.api.token import TOKEN_FILENAME, ensure_token, rotate_token

if TYPE_CHECKING:
    from app.station.events import StationEvent
    from app.station.port import StationPort

log = logging.getLogger("edge_station.api")

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 15.0
DISCOVERY_FILENAME = "api.json"
ENV_PORT = "EDGE_STATION_API_PORT"

#: settings keys (table ``settings``) the station reads to start the API
K_ENABLED, K_HOST, K_PORT, K_ALLOW_REMOTE, K_MAX_BODY = (
    "api.enabled", "api.host", "api.port", "api.allow_remote", "api.max_body")
K_MAX_CONNECTIONS, K_REQUEST_TIMEOUT, K_KEEP_ALIVE = "api.max_connections", "api.request_timeout", "api.keep_alive"

__all__ = ["ApiConfigError", "ApiError", "ApiServer", "ApiSettings", "HttpError", "start_for_station"]


# ---------------------------------------------------------------- settings, parsed by type


def _as_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise ApiConfigError(f"setting {key} must be true or false, not {v!r}")


def _as_int(key: str, v: Any, low: int, high: int) -> int:
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v.strip()) < 12:
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiConfigError(f"setting {key} must be a whole number, not {v!r}")
    if not low <= v <= high:
        raise ApiConfigError(f"setting {key} must be from {low} to {high}, not {v}")
    return v


def _as_float(key: str, v: Any, low: float, high: float) -> float:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ApiConfigError(f"setting {key} must be a number of seconds, not {v!r}")
    if not low < v <= high:
        raise ApiConfigError(f"setting {key} must be above {low:g} and at most {high:g}, not {v:g}")
    return float(v)


def _as_host(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 255 or any(c.isspace() for c in v.strip()):
        raise ApiConfigError(f"setting {key} must be a host name or address, not {v!r}")
    return v.strip()


@dataclass(frozen=True)
class ApiSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_remote: bool = False
    max_body: int = DEFAULT_MAX_BODY
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    keep_alive: float = DEFAULT_KEEP_ALIVE

    @classmethod
    def parse(cls, stored: dict[str, Any], env: dict[str, str] | None = None,
              port_override: int | None = None) -> ApiSettings:
        """The settings from stored values, each checked for its type; raises ApiConfigError naming the key.

        The port: ``port_override`` (``--api-port``), else ``$EDGE_STATION_API_PORT``, else ``api.port``.
        """
        d = cls()
        environ: Mapping[str, str] = os.environ if env is None else env
        get = stored.get
        port = _as_int(K_PORT, get(K_PORT, d.port), 0, 65535)
        if environ.get(ENV_PORT):
            port = _as_int(ENV_PORT, environ[ENV_PORT], 0, 65535)
        if port_override is not None:
            port = _as_int("--api-port", port_override, 0, 65535)
        return cls(
            enabled=_as_bool(K_ENABLED, get(K_ENABLED, d.enabled)),
            host=_as_host(K_HOST, get(K_HOST, d.host)),
            port=port,
            allow_remote=_as_bool(K_ALLOW_REMOTE, get(K_ALLOW_REMOTE, d.allow_remote)),
            max_body=_as_int(K_MAX_BODY, get(K_MAX_BODY, d.max_body), 64, 64 * 1024 * 1024),
            max_connections=_as_int(K_MAX_CONNECTIONS, get(K_MAX_CONNECTIONS, d.max_connections), 4, 512),
            request_timeout=_as_float(K_REQUEST_TIMEOUT, get(K_REQUEST_TIMEOUT, d.request_timeout), 0, 300),
            keep_alive=_as_float(K_KEEP_ALIVE, get(K_KEEP_ALIVE, d.keep_alive), 0, 300),
        )

    @classmethod
    def from_station(cls, station: StationPort, port_override: int | None = None) -> ApiSettings:
        return cls.parse(station.get_settings(), port_override=port_override)


def start_for_station(station: StationPort, port_override: int | None = None) -> ApiServer | None:
    """Start the API as the station's settings configure it (the station calls this when it opens;
    ``port_override`` is ``--api-port``).

    Returns None when ``api.enabled`` is off, or when the API cannot start (a busy port, a
    refused address, a setting of the wrong type): that is logged as an error and the station
    runs on without it.
    """
    try:
        server = ApiServer.from_settings(station, port_override=port_override)
        return server.start() if server is not None else None
    except (ApiError, OSError, ValueError) as e:
        log.error("the local API is not available: %s", e)
        return None
    except Exception as e:  # a part missing from an install must not keep the station from running
        log.exception("the local API is not available: unexpected %s: %s", type(e).__name__, e)
        return None


# ---------------------------------------------------------------- the event stream


class EventHub:
    """The station's events (state changes, camera list, alerts, settings) to every SSE client."""

    def __init__(self, station: StationPort):
        self.station = station
        self._clients: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[tuple[str, bytes] | None]]] = set()
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.station.subscribe(self._on_event)

    def close(self) -> None:
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            clients = list(self._clients)
        for loop, q in clients:
            loop.call_soon_threadsafe(q.put_nowait, None)

    def _on_event(self, ev: StationEvent) -> None:  # a station thread
        if ev.kind not in ("state", "cameras", "alert", "settings"):
            return
        frame = _sse(ev)
        with self._lock:
            clients = list(self._clients)
        for loop, q in clients:
            try:
                loop.call_soon_threadsafe(_offer, q, (ev.kind, frame))
            except RuntimeError:  # the loop is closing
                pass

    async def stream(self, kinds: frozenset[str]) -> AsyncIterator[bytes]:
        q: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=1000)
        client = (asyncio.get_running_loop(), q)
        with self._lock:
            self._clients.add(client)
        try:
            yield b"retry: 2000\n: connected\n\n"
            while not self.closed:
                try:
                    item = await asyncio.wait_for(q.get(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    break
                kind, frame = item
                if kind in kinds:
                    yield frame
        finally:
            with self._lock:
                self._clients.discard(client)


def _offer(q: asyncio.Queue[tuple[str, bytes] | None], item: tuple[str, bytes] | None) -> None:
    try:
        q.put_nowait(item)
    except asyncio.QueueFull:  # a client that does not read loses events, never blocks the station
        pass


def _sse(ev: Any) -> bytes:
    from app.api.serialize import SerializeError, to_json

    data = ev.data
    try:
        body = data.to_json() if hasattr(data, "to_json") else to_json(data)
    except (SerializeError, TypeError, ValueError):
        body = str(data)
    doc = {"kind": ev.kind, "camera_id": ev.camera_id, "ts": ev.ts, "data": body}
    text = json.dumps(doc, separators=(",", ":"), default=str)
    return f"event: {ev.kind}\ndata: {text}\n\n".encode()


# ---------------------------------------------------------------- uvicorn's protocol, with a request deadline


def _protocol_class() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        """uvicorn's HTTP protocol with a connection cap at accept and a deadline on each request's head."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            cap = getattr(self.config, "edge_hard_cap", None)
            self._edge_deadline: asyncio.TimerHandle | None = None
            if cap is not None and len(self.connections) >= cap:
                transport.abort()  # over the hard cap: the descriptor is released at once
                self.connections.discard(self)
                self.transport = transport
                self.cycle = None  # type: ignore[assignment]
                return
            super().connection_made(transport)
            self._edge_arm()

        def _edge_arm(self) -> None:
            if self._edge_deadline is None:
                timeout: float = self.config.edge_request_timeout  # type: ignore[attr-defined]  # set on the Config below
                self._edge_deadline = self.loop.call_later(timeout, self._edge_expired)

        def _edge_disarm(self) -> None:
            if self._edge_deadline is not None:
                self._edge_deadline.cancel()
                self._edge_deadline = None

        def _edge_expired(self) -> None:
            self._edge_deadline = None
            if self.cycle is None or self.cycle.response_complete:  # still waiting for a request's head
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._edge_arm()  # a new request begins: its head must arrive in time
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._edge_disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._edge_disarm()
            if getattr(self, "parser", None) is None and self.cycle is None and self not in self.connections:
                return  # refused at accept
            super().connection_lost(exc)

    return GuardedProtocol


# ---------------------------------------------------------------- the server


class ApiServer:
    """``ApiServer(station, host="127.0.0.1", port=8765, token_path=...)``; ``start()`` / ``stop()``.

    ``port=0`` picks a free port (see :attr:`port` after ``start``).
    """

    def __init__(self, station: StationPort, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 token_path: Path | None = None, allow_remote: bool = False, max_body: int = DEFAULT_MAX_BODY,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 keep_alive: float = DEFAULT_KEEP_ALIVE, discovery: bool | Path = True,
                 enabled: bool = True, inline_reads: bool = True):
        if not isinstance(allow_remote, bool):
            raise ApiConfigError(f"allow_remote must be true or false, not {allow_remote!r}")
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
        self.max_connections = int(max_connections)
        self.request_timeout = float(request_timeout)
        self.keep_alive = float(keep_alive)
        #: the status reads answered in front of FastAPI's routing (app/api/inline.py); off: FastAPI answers all
        self.inline_reads = bool(inline_reads)
        self.inline: Any = None  # the InlineReads layer once started
        data_dir = Path(station.paths.data_dir)
        self.token_path = Path(token_path) if token_path is not None else data_dir / TOKEN_FILENAME
        if isinstance(discovery, Path):  # another place than run/api.json (tests)
            self.discovery_path: Path | None = discovery
        else:
            self.discovery_path = data_dir / "run" / DISCOVERY_FILENAME if discovery else None
        self.backend = StationBackend(station)
        self.metrics = ApiMetrics(self.backend)
        self.events = EventHub(station)
        self._token = ""
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    @classmethod
    def from_settings(cls, station: StationPort, *, port_override: int | None = None,
                      **overrides: Any) -> ApiServer | None:
        """The API as the station's settings configure it, or None when ``api.enabled`` is off."""
        s = ApiSettings.from_station(station, port_override=port_override)
        if not s.enabled:
            return None
        kw = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "enabled"}
        return cls(station, **{**kw, **overrides})

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._sock is None:
            raise ApiError("the API server is not started")
        return int(self._sock.getsockname()[1])

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
        import uvicorn

        from app.api.app import build_app
        from app.api.inline import InlineReads
        from app.api.middleware import Guard

        self._token = self._token_for_start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host.strip("[]"), self.requested_port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise ApiConfigError(f"cannot serve the API on {self.host}:{self.requested_port}: "
                                 f"{e.strerror or e}") from e
        sock.setblocking(False)
        self._sock = sock
        self.inline = InlineReads(build_app(self), self, enabled=self.inline_reads)
        app = Guard(self.inline, self)
        config = uvicorn.Config(
            app, http=_protocol_class(), ws="none", lifespan="off", log_config=None, access_log=False,
            limit_concurrency=self.max_connections, timeout_keep_alive=max(1, math.ceil(self.keep_alive)),
            timeout_graceful_shutdown=2, server_header=False, backlog=128, proxy_headers=False,
        )
        config.edge_request_timeout = self.request_timeout  # type: ignore[attr-defined]
        config.edge_hard_cap = 2 * self.max_connections  # type: ignore[attr-defined]
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # the station's, not ours
        self._server = server
        self.events.start()
        self.metrics.start()
        self._thread = threading.Thread(target=self._run, name="edge-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if self._failed is not None or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ApiConfigError(f"the API server did not start: {self._failed or 'timeout'}")
            time.sleep(0.005)
        self._write_discovery()
        log.info("API listening on %s", self.url)
        return self

    def _run(self) -> None:
        try:
            loop_factory = None
            try:
                import uvloop

                loop_factory = uvloop.new_event_loop
            except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio's loop works too
                pass
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(self._server.serve(sockets=[self._sock]))
        except BaseException as e:  # noqa: BLE001 - reported by start()/logged
            self._failed = e
            log.exception("the API server stopped with an error")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.events.close()
        self.metrics.close()
        server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                server.force_exit = True
                self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._remove_discovery()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ token and discovery

    def _token_for_start(self) -> str:
        """The token; a new one when the last station on this data dir did not stop cleanly."""
        if self.discovery_path is not None and self.discovery_path.exists():
            from app.api.client import recorded_station_alive

            try:
                doc = json.loads(self.discovery_path.read_text())
            except (OSError, ValueError):
                doc = {}
            if not recorded_station_alive(doc):
                log.warning("%s was left by a station that did not stop cleanly (pid %s): rotating the API token",
                            self.discovery_path, doc.get("pid"))
                self.discovery_path.unlink(missing_ok=True)
                return rotate_token(self.token_path)
        return ensure_token(self.token_path)

    def _write_discovery(self) -> None:
        if self.discovery_path is None:
            return
        import psutil

        doc = {"url": self.url, "host": self.host, "port": self.port, "pid": os.getpid(),
               "create_time": psutil.Process().create_time(), "token_path": str(self.token_path)}
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
