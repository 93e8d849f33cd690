"""Refusals: auth, every error code with its HTTP status, limits, cross-origin, binding."""

from __future__ import annotations

import http.client
import json
import os
import stat
import uuid

import pytest

from app.api import ApiClient, ApiConfigError, ApiServer, ApiSettings
from app.api.token import TokenError, ensure_token, read_token
from tests.api.conftest import ROUTES, SchemaMismatch, check_response

MISSING = 424242


def _concrete(path: str, camera: int) -> str:
    return path.replace("{id}", str(camera))


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.public], ids=lambda r: f"{r.method} {r.path}")
def test_every_endpoint_refuses_a_missing_or_wrong_token(client, live, route):
    path = _concrete(route.path, live.demo["Lobby"])
    for token in (None, "not-the-token-" + "x" * 20):
        r = client.request(route.method, path, token=token, body={} if route.body else None)
        assert r.status == 401, (route.name, r.status)
        assert r.error["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", [r for r in ROUTES if "{id}" in r.path], ids=lambda r: f"{r.method} {r.path}")
def test_unknown_camera_or_rule_is_404(client, route):
    body = {"update_rule": {"changes": {"threshold": 1}}, "update_camera": {"location": "x"},
            "resolve_problem_report": {"note": "x"}}.get(route.name)
    r = client.request(route.method, _concrete(route.path, MISSING), body=body)
    assert r.status == 404, r.json
    assert r.error["code"] == "not_found"
    if route.op:  # an operation's answer says how it was routed
        assert r.route["operation"] == route.op and r.headers["x-edge-path"] in ("legacy", "domain")


@pytest.mark.parametrize("force", [None, "legacy", "domain"])
def test_invalid_state_is_409(client, live, force):
    lobby, gate = live.demo["Lobby"], live.demo["Front gate"]
    r = client.camera("stop", lobby, force=force)  # not running
    assert r.status == 409 and r.error["code"] == "invalid_state"
    r = client.camera("start", gate, force=force)  # inactive
    assert r.status == 409 and r.error["code"] == "invalid_state" and "inactive" in r.error["message"]
    r = client.camera("snapshot", lobby, force=force)  # no live frame
    assert r.status == 409 and r.error["code"] == "invalid_state"


def test_conflicts_are_409(client):
    name = f"dup {uuid.uuid4().hex[:6]}"
    body = {"name": name, "metric": "fps", "comparator": "<", "threshold": 1}
    first = client.request("POST", "/api/v1/alerts/rules", body=body)
    assert first.status == 201
    dup = client.request("POST", "/api/v1/alerts/rules", body=body)
    assert dup.status == 409 and dup.error["code"] == "conflict"
    rid = first.data["rule"]["id"]
    stale = client.request("PUT", f"/api/v1/alerts/rules/{rid}", body={"changes": {"threshold": 2}, "expected_version": 7})
    assert stale.status == 409 and stale.error["code"] == "conflict" and stale.error["details"]["version"] == 1


BAD_RULES = {
    "missing fields": ({"name": "x"}, {"metric", "comparator", "threshold"}),
    "wrong types": ({"name": "x", "metric": "fps", "comparator": "<", "threshold": "high", "enabled": "yes"},
                    {"threshold", "enabled"}),
    "unknown field": ({"name": "x", "metric": "fps", "comparator": "<", "threshold": 1, "colour": "red"}, {"colour"}),
    "bad enum": ({"name": "x", "metric": "fps", "comparator": "about", "threshold": 1}, {"comparator"}),
    "id not settable": ({"name": "x", "metric": "fps", "comparator": "<", "threshold": 1, "id": 5}, {"id"}),
    "domain rule": ({"name": "x", "metric": "no-such", "comparator": "<", "threshold": 1}, {"metric"}),
    "camera target without camera": ({"name": "x", "metric": "fps", "comparator": "<", "threshold": 1,
                                      "target": "camera"}, {"camera_id"}),
    "nested notify": ({"name": "x", "metric": "fps", "comparator": "<", "threshold": 1,
                       "notify": {"command": "rm -rf /"}}, {"notify.command"}),
    "not an object": ([1, 2, 3], {"body"}),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_validation_is_422_and_names_every_field(client, case):
    body, fields = BAD_RULES[case]
    r = client.request("POST", "/api/v1/alerts/rules", body=body)
    assert r.status == 422, r.json
    assert r.error["code"] == "validation"
    assert {e["field"] for e in r.error["details"]["errors"]} >= fields


def test_validation_of_query_path_and_changes(client, live):
    lobby = live.demo["Lobby"]
    cases = [
        ("GET", f"/api/v1/cameras/{lobby}/logs?limit=many", "limit"),
        ("GET", f"/api/v1/cameras/{lobby}/logs?limit=0", "limit"),  # the operation's own range check
        ("GET", f"/api/v1/cameras/{lobby}/stats?window_s=nan", "window_s"),
        ("POST", f"/api/v1/cameras/{lobby}/probe?timeout=-1", "timeout"),
        ("GET", f"/api/v1/cameras/{lobby}/status?force_domain=maybe", "force_domain"),
        ("GET", f"/api/v1/cameras/{lobby}/status?verbose=1", "verbose"),
        ("GET", f"/api/v1/cameras/{lobby}/status?force_domain=true&force_domain=false", "force_domain"),
        ("GET", f"/api/v1/cameras/{lobby}/snapshot?format=gif", "format"),
        ("GET", "/api/v1/cameras/lobby/status", "id"),
    ]
    for method, path, field in cases:
        r = client.request(method, path)
        assert r.status == 422, (path, r.json)
        assert field in {e["field"] for e in r.error["details"]["errors"]}, (path, r.json)
    rid = client.request("POST", "/api/v1/alerts/rules",
                         body={"name": f"q {uuid.uuid4().hex[:6]}", "metric": "fps", "comparator": "<",
                               "threshold": 1}).data["rule"]["id"]
    r = client.request("PUT", f"/api/v1/alerts/rules/{rid}", body={"changes": {"camera_id": "three", "tags": []}})
    assert r.status == 422
    assert {e["field"] for e in r.error["details"]["errors"]} == {"changes.camera_id", "changes.tags"}
    r = client.request("PUT", f"/api/v1/alerts/rules/{rid}", body={"changes": {"tags": []}})
    assert r.status == 422 and r.error["details"]["errors"][0]["field"] == "changes.tags"
    r = client.request("PUT", f"/api/v1/alerts/rules/{rid}", body={"changes": {}})
    assert r.status == 422


def test_body_limits_and_media_type(client, live):
    big = {"name": "x" * (live.api.max_body + 10), "metric": "fps", "comparator": "<", "threshold": 1}
    r = client.request("POST", "/api/v1/alerts/rules", body=big)
    assert r.status == 413 and r.error["code"] == "payload_too_large"
    r = client.request("POST", "/api/v1/alerts/rules", raw_body=b"name=x", headers={"Content-Type": "text/plain"})
    assert r.status == 415 and r.error["code"] == "unsupported_media_type"
    r = client.request("POST", "/api/v1/alerts/rules", raw_body=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error["code"] == "bad_request"
    r = client.request("POST", f"/api/v1/cameras/{live.demo['Lobby']}/stop", body={"unexpected": 1})
    assert r.status == 422
    # the connection is still usable after every refusal
    assert client.cameras().status == 200


def test_unknown_path_and_method(client):
    r = client.request("GET", "/api/v1/nothing-here")
    assert r.status == 404 and r.error["code"] == "not_found"
    r = client.request("DELETE", "/api/v1/cameras")
    assert r.status == 405 and r.headers["allow"] == "GET, POST" and r.error["code"] == "method_not_allowed"


def test_no_cross_origin_access(client, live):
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        r = client.request("GET", "/api/v1/cameras", headers=headers)
        assert r.status == 403 and r.error["code"] == "forbidden"
        assert not any(h.startswith("access-control-") for h in r.headers)
    r = client.request("OPTIONS", "/api/v1/cameras", headers={"Origin": "http://evil.example",
                                                               "Access-Control-Request-Method": "POST"})
    assert r.status == 403 and not any(h.startswith("access-control-") for h in r.headers)
    # DNS rebinding: a loopback-bound API answers loopback host names only
    conn = http.client.HTTPConnection("127.0.0.1", live.api.port, timeout=10)
    conn.request("GET", "/api/v1/cameras", headers={"Host": f"evil.example:{live.api.port}",
                                                     "Authorization": f"Bearer {live.api.token}"})
    resp = conn.getresponse()
    assert resp.status == 403 and json.loads(resp.read())["error"]["code"] == "forbidden"
    conn.close()


def test_non_loopback_bind_needs_explicit_configuration(live):
    for host in ("0.0.0.0", "192.0.2.10", "example.com"):
        with pytest.raises(ApiConfigError, match="not a loopback address"):
            ApiServer(live.station, host=host, port=0)
    ApiServer(live.station, host="0.0.0.0", port=0, allow_remote=True, discovery=False)  # allowed when explicit


def test_token_file_is_private_and_kept(tmp_path):
    path = tmp_path / "d" / "api-token"
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 32
    assert ensure_token(path) == token  # the same token across restarts
    os.chmod(path, 0o644)
    assert ensure_token(path) == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short")
    with pytest.raises(TokenError, match="does not hold a token"):
        read_token(path)
    with pytest.raises(TokenError, match="no API token"):
        read_token(tmp_path / "none")


def test_client_without_a_running_station(tmp_path):
    from app.api import ClientError

    with pytest.raises(ClientError, match="no running station"):
        ApiClient.for_data_dir(tmp_path)


def test_the_schema_check_can_fail(client, live):
    """The answer checker used by every test really rejects an answer that breaks the document."""
    r = client.cameras()
    r._json = {"data": {"items": [{"camera_id": "one"}]}, "route": r.route}
    with pytest.raises(SchemaMismatch):
        check_response("GET", "/api/v1/cameras", r)
    r.status = 418
    with pytest.raises(SchemaMismatch, match="does not declare"):
        check_response("GET", "/api/v1/cameras", r)


def test_settings_configure_the_server(live):
    from app.api.server import K_ENABLED, K_MAX_BODY, K_PORT

    with live.station.parts().store.uow() as uow:
        uow.settings.set_many({K_PORT: 0, K_MAX_BODY: 100})
        uow.commit()
    try:
        server = ApiServer.from_settings(live.station, token_path=live.data_dir / "api-token", discovery=False)
        assert server is not None and server.max_body == 100
        with server:
            assert server.port != live.api.port and server.port > 0
            c = ApiClient(server.url, server.token)
            r = c.request("POST", "/api/v1/alerts/rules", body={"name": "x" * 200})
            assert r.status == 413
            assert c.cameras().status == 200
            c.close()
        with live.station.parts().store.uow() as uow:
            uow.settings.set(K_ENABLED, False)
            uow.commit()
        assert ApiServer.from_settings(live.station) is None
    finally:  # back to the defaults
        d = ApiSettings()
        with live.station.parts().store.uow() as uow:
            uow.settings.set_many({K_ENABLED: d.enabled, K_PORT: d.port, K_MAX_BODY: d.max_body})
            uow.commit()


def test_a_busy_port_is_a_clear_error(live):
    with pytest.raises(ApiConfigError, match=f"cannot serve the API on 127.0.0.1:{live.api.port}"):
        ApiServer(live.station, port=live.api.port, discovery=False).start()


def test_start_for_station_logs_and_returns_none_when_it_cannot_start(live, caplog):
    from app.api import start_for_station
    from app.api.server import K_HOST, K_PORT

    with live.station.parts().store.uow() as uow:
        uow.settings.set_many({K_PORT: live.api.port})  # taken by the running API
        uow.commit()
    try:
        assert start_for_station(live.station) is None
        assert "the local API is not available" in caplog.text and str(live.api.port) in caplog.text
        with live.station.parts().store.uow() as uow:
            uow.settings.set_many({K_PORT: 0, K_HOST: "0.0.0.0"})  # not loopback, not allowed
            uow.commit()
        assert start_for_station(live.station) is None and "not a loopback address" in caplog.text
        with live.station.parts().store.uow() as uow:
            uow.settings.set(K_HOST, "127.0.0.1")
            uow.commit()
        server = start_for_station(live.station)
        assert server is not None
        c = ApiClient(server.url, server.token)
        try:
            assert c.cameras().status == 200
        finally:
            c.close()
            server.stop()
            live.api._write_discovery()  # that server took over and removed the shared station's run/api.json
    finally:
        d = ApiSettings()
        with live.station.parts().store.uow() as uow:
            uow.settings.set_many({K_PORT: d.port, K_HOST: d.host})
            uow.commit()


def test_unencodable_bodies_are_422_not_500(client, live):
    rule = {"metric": "fps", "comparator": "<", "threshold": 1}
    for raw in (b'{"name": "bad \\ud800 name", "metric": "fps", "comparator": "<", "threshold": 1}',
                b'{"name": "ok", "metric": "fps", "comparator": "<", "threshold": 1, "notify": {"command": ["\\udfff"]}}'):
        r = client.request("POST", "/api/v1/alerts/rules", raw_body=raw, headers={"Content-Type": "application/json"})
        assert r.status == 422 and r.error["code"] == "validation", r.json
        assert r.error["details"]["errors"][0]["field"] in ("name", "notify.command[0]")
    huge = b'{"name": "n", "metric": "fps", "comparator": "<", "threshold": ' + b"9" * 5000 + b"}"
    r = client.request("POST", "/api/v1/alerts/rules", raw_body=huge, headers={"Content-Type": "application/json"})
    assert r.status == 422 and "digits" in r.error["message"]
    r = client.request("PUT", "/api/v1/alerts/rules/1", raw_body=b'{"changes": {"threshold": 1' + b"0" * 5000 + b"}}",
                       headers={"Content-Type": "application/json"})
    assert r.status == 422
    # nothing was stored, and the audit log still takes entries
    assert not [x for x in live.station.list_rules() if x.name.startswith("bad")]
    assert client.request("POST", "/api/v1/alerts/rules",
                          body={**rule, "name": f"after {uuid.uuid4().hex[:6]}"}).status == 201


def test_an_unknown_method_is_a_json_405(client):
    for method in ("TRACE", "PATCH", "PROPFIND"):
        r = client.request(method, "/api/v1/cameras")
        assert r.status == 405, (method, r.body[:200])
        assert r.headers["content-type"] == "application/json" and r.error["code"] == "method_not_allowed"


def test_settings_are_parsed_by_type():
    from app.api.server import ApiSettings

    s = ApiSettings.parse({"api.allow_remote": "false", "api.host": "0.0.0.0"}, env={})
    assert s.allow_remote is False
    with pytest.raises(ApiConfigError, match="not a loopback address"):
        ApiServer(type("S", (), {"paths": type("P", (), {"data_dir": "/tmp"})})(), host=s.host,
                  allow_remote=s.allow_remote)
    for stored, key in (({"api.allow_remote": "nein"}, "api.allow_remote"), ({"api.port": "http"}, "api.port"),
                        ({"api.port": 70000}, "api.port"), ({"api.enabled": 1}, "api.enabled"),
                        ({"api.max_connections": True}, "api.max_connections"),
                        ({"api.request_timeout": "nan"}, "api.request_timeout")):
        with pytest.raises(ApiConfigError, match=key.replace(".", r"\.")):
            ApiSettings.parse(stored, env={})
    assert ApiSettings.parse({"api.port": 9000}, env={"EDGE_STATION_API_PORT": "8000"}).port == 8000
    assert ApiSettings.parse({}, env={"EDGE_STATION_API_PORT": "8000"}, port_override=8100).port == 8100
    with pytest.raises(ApiConfigError, match="EDGE_STATION_API_PORT"):
        ApiSettings.parse({}, env={"EDGE_STATION_API_PORT": "eighty"})


def test_the_client_sends_no_token_to_a_port_a_dead_station_left(tmp_path):
    """After a SIGKILL, run/api.json stays behind; whatever listens on its port now gets no token."""
    import socket
    import subprocess
    import sys
    import threading

    from app.api import ClientError

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(5)
    port = squatter.getsockname()[1]
    received: list[bytes] = []

    def listen() -> None:
        squatter.settimeout(3)
        try:
            conn, _ = squatter.accept()
            received.append(conn.recv(65536))
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=listen)
    t.start()
    ensure_token(tmp_path / "api-token")
    (tmp_path / "run").mkdir()
    for doc in ({"url": f"http://127.0.0.1:{port}", "pid": dead.pid, "create_time": 1.0},
                {"url": f"http://127.0.0.1:{port}", "pid": os.getpid(), "create_time": 12345.0},  # pid reused
                {"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}):  # from an older station: no start time
        (tmp_path / "run" / "api.json").write_text(json.dumps(doc))
        with pytest.raises(ClientError, match="is not running"):
            ApiClient.for_data_dir(tmp_path).cameras()
    t.join(5)
    squatter.close()
    assert received == []


def test_the_token_is_rotated_after_an_unclean_stop(live, tmp_path):
    import subprocess
    import sys

    token_path = tmp_path / "api-token"
    disc = tmp_path / "api.json"
    old = ensure_token(token_path)
    with ApiServer(live.station, port=0, token_path=token_path, discovery=disc) as server:
        assert server.token == old  # a clean start keeps the token
        doc = json.loads(disc.read_text())
        assert doc["pid"] == os.getpid() and doc["create_time"] > 0
    assert not disc.exists()  # a clean stop removes the discovery file
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    disc.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": dead.pid, "create_time": 1.0}))
    with ApiServer(live.station, port=0, token_path=token_path, discovery=disc) as server:
        assert server.token != old and read_token(token_path) == server.token
