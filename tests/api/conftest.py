"""A real station (temp data dir, demo cameras on test:// sources, real workers) with its API on an
ephemeral port, shared by the API tests; every test puts the cameras back as it found them.

``client`` checks every answer against the OpenAPI document the station serves: the status must
be declared for that endpoint and the JSON body must match its schema.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.api import ApiClient, ApiServer, Response
from app.api.openapi import openapi_document
from app.domain.operations import CameraRef
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions


@dataclass
class Live:
    station: Station
    api: ApiServer
    router: Any
    data_dir: Path
    demo: dict[str, int]  # demo camera name -> id
    active: dict[int, bool]  # the demo cameras' active flags at the start


class SchemaMismatch(AssertionError):
    pass


class CheckedClient(ApiClient):
    """An ApiClient whose every answer must match the OpenAPI document."""

    doc = openapi_document()
    _validators: dict[tuple[str, str, str, str], jsonschema.protocols.Validator] = {}

    def request(self, method: str, path: str, **kw: Any) -> Response:
        r = super().request(method, path, **kw)
        check_response(method, path, r)
        return r


def _validator(method: str, template: str | None, status: str, ctype: str) -> jsonschema.protocols.Validator | None:
    key = (method, template or "", status, ctype)
    v = CheckedClient._validators.get(key)
    if v is None:
        doc = CheckedClient.doc
        if template is None:
            schema = {"$ref": "#/components/schemas/ErrorBody"}
        else:
            responses = doc["paths"][template][method.lower()]["responses"]
            if status not in responses:
                raise SchemaMismatch(f"{method} {template} answered {status}, which the document does not declare "
                                     f"(declared: {', '.join(responses)})")
            content = responses[status]["content"]
            if ctype not in content:
                raise SchemaMismatch(f"{method} {template} {status} answered {ctype}, declared {', '.join(content)}")
            schema = content[ctype]["schema"]
        v = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
        CheckedClient._validators[key] = v
    return v


def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in openapi_document()["paths"]:
        parts = re.split(r"{(\w+)}", template)
        regex = "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts))
        out.append((re.compile(f"^{regex}$"), template))
    # literal paths first: /cameras/config before /cameras/{id}
    return sorted(out, key=lambda t: t[1].count("{"))


TEMPLATES = _templates()


def match(method: str, path: str) -> str | None:
    """The document's path template for ``method path``, or None when it does not declare it."""
    paths = openapi_document()["paths"]
    for rx, template in TEMPLATES:
        if rx.match(path) and method.lower() in paths[template]:
            return template
    return None


def check_response(method: str, path: str, r: Response) -> None:
    template = match(method, path.split("?")[0])
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    if path.split("?")[0] == "/api/v1/openapi.json" and r.ok:
        assert ctype == "application/json"
        return
    v = _validator(method, template, str(r.status), ctype)
    if ctype in ("application/json",):
        errors = sorted(v.iter_errors(r.json), key=lambda e: list(e.path))
        if errors:
            raise SchemaMismatch(f"{method} {path} -> {r.status}: the body does not match the document: "
                                 + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))
    elif r.ok and ctype in ("text/plain", "application/yaml", "text/event-stream"):
        pass
    elif r.ok and ctype == "image/png":
        assert r.body[:8] == b"\x89PNG\r\n\x1a\n"
    elif r.ok and ctype == "image/jpeg":
        assert r.body[:3] == b"\xff\xd8\xff"
    elif r.ok and ctype == "video/mp4":
        assert r.body[4:8] == b"ftyp"
    else:
        raise SchemaMismatch(f"{method} {path} -> {r.status}: unexpected content type {ctype!r}")


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("api-station")
    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True, autostart=False,
                                     watch_interval=0.2)).open()
    router = station.parts().router
    # The latency health check compares paths over whatever these tests happen to call (bursts of 50
    # concurrent writes on one path, say) and a latched rollback overrides every force: not the subject here.
    router.set_options({"auto_rollback": False}, actor="api tests")
    api = ApiServer(station, port=0).start()
    cams = station.cameras()
    try:
        yield Live(station, api, router, data_dir, {c.name: c.id for c in cams},  # type: ignore[misc]
                   {c.id: c.active for c in cams})  # type: ignore[misc]
    finally:
        api.stop()
        station.close()


@pytest.fixture(autouse=True)
def _put_cameras_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: every worker stopped, the demo cameras' active flags as they were, rollout off."""
    yield
    if "live" not in request.fixturenames:
        return
    live: Live = request.getfixturevalue("live")
    st = live.station
    st.stop_all()
    for cam_id, active in live.active.items():
        cam = st.camera(cam_id)
        if cam is not None and cam.active != active:
            (st.parts().domain_ops.activate_camera if active else st.parts().domain_ops.deactivate_camera)(CameraRef(cam_id))
    if hasattr(live.router, "control") and live.router.control is not None:
        s = live.router.settings
        if s.latched:  # only an audited resume clears a rollback latch
            live.router.resume(track="all", actor="test cleanup", reason="test cleanup")
        if s.use_domain or s.percent or s.latched:
            live.router.set(use_domain=False, percent=0, actor="test cleanup")
        assert not live.router.settings.latched


@pytest.fixture
def client(live: Live) -> Iterator[CheckedClient]:
    c = CheckedClient(live.api.url, live.api.token, timeout=30)
    yield c
    c.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class DocRoute:
    """One operation of the served OpenAPI document (what the tests iterate over)."""

    method: str
    path: str
    name: str  # operationId
    op: str | None  # one of the thirteen operations, or None
    body: bool
    public: bool


def doc_routes() -> list[DocRoute]:
    from app.domain.operations import OPERATIONS

    out = []
    for path, item in openapi_document()["paths"].items():
        for method, spec in item.items():
            name = spec["operationId"]
            out.append(DocRoute(method.upper(), path, name, name if name in OPERATIONS else None,
                                "requestBody" in spec and spec["requestBody"].get("required", False),
                                "security" not in spec))
    return out


ROUTES = doc_routes()
