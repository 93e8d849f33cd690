"""A small client of the local control API (the CLI's ``ctl``, ``verify --live``, tests, benchmarks).

``ApiClient.for_data_dir(data_dir)`` finds a running station through the
discovery file it writes (``run/api.json``) and reads the token from the data
dir. One client keeps one keep-alive connection per thread.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from app.api.token import TokenError, read_token, token_path

DISCOVERY = Path("run") / "api.json"


class ClientError(Exception):
    """The station could not be reached or gave an answer that is not the API's."""


def recorded_station_alive(doc: dict[str, Any]) -> bool:
    """Whether the process a discovery file names still runs: same pid *and* same start time.

    A file left behind by a killed station names a pid that is gone, or reused by another
    process (whose start time differs); the token must then not be sent to that port.
    """
    import psutil

    pid, created = doc.get("pid"), doc.get("create_time")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(created, int | float):
        return False
    try:
        return abs(psutil.Process(pid).create_time() - float(created)) < 1.0
    except (psutil.Error, OSError, ValueError):
        return False


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    _json: Any = field(default=None, repr=False)

    @property
    def json(self) -> Any:
        if self._json is None:
            try:
                self._json = json.loads(self.body)
            except ValueError as e:
                raise ClientError(f"the answer (HTTP {self.status}) is not JSON: {self.body[:200]!r}") from e
        return self._json

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def data(self) -> Any:
        return self.json["data"]

    @property
    def route(self) -> dict[str, Any] | None:
        route: dict[str, Any] | None = self.json.get("route")
        return route

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self.json.get("error") if not self.ok else None
        return error


class ApiClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ClientError(f"{url!r} is not an http:// URL of a station")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, url: str | None = None, timeout: float = 30.0) -> ApiClient:
        data_dir = Path(data_dir)
        if url is None:
            disc = data_dir / DISCOVERY
            try:
                doc = json.loads(disc.read_text())
                url = doc["url"]
            except FileNotFoundError:
                raise ClientError(f"no running station found for {data_dir} (no {disc}); start it, or give --url") from None
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ClientError(f"cannot read {disc}: {e}") from e
            if not recorded_station_alive(doc):
                raise ClientError(f"the station recorded in {disc} (pid {doc.get('pid')}) is not running: it did not "
                                  "stop cleanly; the token is not sent to whatever listens on its port now. "
                                  "Start the station, or give --url") from None
        try:
            token = read_token(token_path(data_dir))
        except TokenError as e:
            raise ClientError(str(e)) from e
        return cls(url, token, timeout=timeout)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None, token: str | None | bool = True, raw_body: bytes | None = None,
                ) -> Response:
        """One request. ``token=True`` sends the client's token, ``None``/``False`` none, a string that one."""
        if query:
            q = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items() if v is not None}
            path = f"{path}?{urlencode(q)}" if q else path
        hdrs = {"Accept": "application/json", **(headers or {})}
        tok = self.token if token is True else (token or None)
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        data = raw_body
        if body is not None and data is None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: retry once on a new one
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if attempt == 2:
                    raise ClientError(f"{method} {self.url}{path}: the station closed the connection ({e})") from e
                continue
            except OSError as e:
                self.close()
                raise ClientError(f"cannot reach the station at {self.url}: {e}") from e
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ conveniences

    def op(self, method: str, path: str, *, force: str | None = None, query: dict[str, Any] | None = None,
           body: Any = None) -> Response:
        q = dict(query or {})
        if force is not None:
            q["force_domain"] = force == "domain"
        return self.request(method, f"/api/v1{path}", query=q, body=body)

    def cameras(self, **kw: Any) -> Response:
        return self.op("GET", "/cameras", **kw)

    def camera(self, action: str, camera_id: int | str, **kw: Any) -> Response:
        method = "GET" if action in ("status", "logs", "snapshot", "stats") else "POST"
        return self.op(method, f"/cameras/{camera_id}/{action}", **kw)
