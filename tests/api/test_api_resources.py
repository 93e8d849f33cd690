"""The station as resources: camera configuration, rules, alert events, settings, audit, the event
stream, the docs; each change audited with actor ``api``."""

from __future__ import annotations

import http.client
import json
import queue
import shutil
import subprocess
import threading
import time
import uuid

from app.domain.alerts import AlertEvent, EventState
from app.domain.rules import Severity


def _audited(live, op: str, key: str) -> list:
    return [e for e in live.station.audit_page(200, op_prefix=op) if e.key == key and e.actor == "api"]


def test_camera_configuration_crud(client, live):
    name = f"Yard {uuid.uuid4().hex[:4]}"
    r = client.request("POST", "/api/v1/cameras", body={"name": name, "source": "rtsp://admin:Sup3r@10.0.0.9/s",
                                                        "active": False, "tags": ["outdoor"]})
    assert r.status == 201, r.json
    cam = r.data
    assert cam["name"] == name and "Sup3r" not in cam["source"]  # passwords never in an answer
    cid = cam["id"]
    assert live.station.camera(cid) is not None  # the station knows it at once
    listed = client.request("GET", "/api/v1/cameras/config").data["items"]
    assert name in {c["name"] for c in listed} and not any("Sup3r" in c["source"] for c in listed)
    assert client.request("GET", f"/api/v1/cameras/{cid}").data["name"] == name
    r = client.request("PATCH", f"/api/v1/cameras/{cid}", body={"location": "north fence", "motion": {"threshold": 0.1}})
    assert r.status == 200 and r.data["location"] == "north fence" and r.data["motion"]["threshold"] == 0.1
    assert r.data["motion"]["warmup_frames"] == 10  # a patch: the rest kept
    dup = client.request("POST", "/api/v1/cameras", body={"name": name, "source": "test://still"})
    assert dup.status == 409 and dup.error["code"] == "conflict"
    bad = client.request("PATCH", f"/api/v1/cameras/{cid}", body={})
    assert bad.status == 422
    bad = client.request("POST", "/api/v1/cameras", body={"name": "x", "source": "ftp://nope", "max_fps": 0})
    assert bad.status == 422 and {e["field"] for e in bad.error["details"]["errors"]} == {"source", "max_fps"}
    assert client.request("DELETE", f"/api/v1/cameras/{cid}").status == 200
    assert client.request("GET", f"/api/v1/cameras/{cid}").status == 404
    assert live.station.camera(cid) is None
    for op in ("admin.create_camera", "admin.update_camera", "admin.delete_camera"):
        assert live.station.audit_page(200, op_prefix=op), op
    assert _audited(live, "admin.delete_camera", f"camera:{cid}")


def test_a_running_camera_cannot_be_deleted(client, live):
    lobby = live.demo["Lobby"]
    assert client.camera("start", lobby).status == 200
    r = client.request("DELETE", f"/api/v1/cameras/{lobby}")
    assert r.status == 409 and r.error["code"] == "invalid_state"
    assert _audited(live, "admin.delete_camera", f"camera:{lobby}")[0].outcome == "error:invalid_state"


def test_export_and_import_yaml(client, live):
    r = client.request("GET", "/api/v1/cameras/export")
    assert r.status == 200 and r.headers["content-type"].startswith("application/yaml")
    text = r.body.decode()
    assert "Lobby" in text
    name = f"Imported {uuid.uuid4().hex[:4]}"
    extra = f"- name: {name}\n  source: test://still\n  active: false\n"
    r = client.request("POST", "/api/v1/cameras/import", body={"yaml": text + extra})
    assert r.status == 200, r.json
    assert r.data["added"] == [name]
    assert name in {c.name for c in live.station.cameras()}
    bad = client.request("POST", "/api/v1/cameras/import", body={"yaml": "cameras:\n  - name: x\n    source: 5\n"})
    assert bad.status == 422 and bad.error["details"]["errors"][0]["field"] == "yaml"
    cid = next(c.id for c in live.station.cameras() if c.name == name)
    assert client.request("DELETE", f"/api/v1/cameras/{cid}").status == 200


def test_rules_list_get_enable_disable_delete(client, live):
    r = client.request("POST", "/api/v1/alerts/rules", body={"name": f"r {uuid.uuid4().hex[:6]}", "metric": "fps",
                                                             "comparator": "<", "threshold": 2})
    rid = r.data["rule"]["id"]
    for force in ("true", "false"):
        listed = client.request("GET", f"/api/v1/alerts/rules?force_domain={force}")
        assert listed.status == 200
        assert listed.route["served_by"] == ("domain" if force == "true" else "legacy")
        assert listed.headers["x-edge-path"] == listed.route["served_by"]
        assert rid in {x["id"] for x in listed.data["items"]}
    unforced = client.request("GET", "/api/v1/alerts/rules")
    assert unforced.route["served_by"] == "legacy" and unforced.route["reason"] == "domain_off"
    assert client.request("GET", f"/api/v1/alerts/rules/{rid}").data["enabled"] is True
    assert client.request("POST", f"/api/v1/alerts/rules/{rid}/disable").data["enabled"] is False
    assert client.request("POST", f"/api/v1/alerts/rules/{rid}/enable").data["enabled"] is True
    assert _audited(live, "admin.disable_rule", f"rule:{rid}")
    assert client.request("DELETE", f"/api/v1/alerts/rules/{rid}").status == 200
    assert client.request("GET", f"/api/v1/alerts/rules/{rid}").status == 404


def test_alert_events_list_filter_get_acknowledge(client, live):
    from datetime import UTC, datetime

    from app.alerts.events import StoreEventSink

    sink = StoreEventSink(live.station.parts().store)
    ev = sink.save([AlertEvent(rule_name="api test", severity=Severity.WARNING, state=EventState.FIRING,
                               threshold=1.0, started_at=datetime.now(UTC), camera_id=live.demo["Lobby"])])[0]
    r = client.request("GET", "/api/v1/alerts/events", query={"camera_id": live.demo["Lobby"], "unacknowledged": True})
    assert r.status == 200 and ev.id in {e["id"] for e in r.data["items"]}
    r = client.request("GET", "/api/v1/alerts/events", query={"camera_id": live.demo["Front gate"]})
    assert ev.id not in {e["id"] for e in r.data["items"]}
    assert client.request("GET", f"/api/v1/alerts/events/{ev.id}").data["rule_name"] == "api test"
    r = client.request("POST", f"/api/v1/alerts/events/{ev.id}/acknowledge", body={"by": "night shift"})
    assert r.status == 200 and r.data["acknowledged_by"] == "night shift"
    r = client.request("GET", "/api/v1/alerts/events", query={"unacknowledged": True})
    assert ev.id not in {e["id"] for e in r.data["items"]}
    assert client.request("POST", "/api/v1/alerts/events/987654/acknowledge").status == 404
    assert _audited(live, "admin.acknowledge_alert", f"alert_event:{ev.id}")


def test_settings_read_and_write(client, live):
    r = client.request("GET", "/api/v1/settings")
    assert r.status == 200 and isinstance(r.data, dict)
    r = client.request("PATCH", "/api/v1/settings", body={"api.max_connections": 32})
    assert r.status == 200 and r.data["api.max_connections"] == 32
    for bad in ({"api.max_connections": "32"}, {"api.max_connections": 1}, {"rollout.percent": 50}, {}):
        r = client.request("PATCH", "/api/v1/settings", body=bad)
        assert r.status == 422, bad
    with live.station.parts().store.uow() as uow:
        uow.settings.set("api.max_connections", 64)
        uow.commit()
    assert live.station.audit_page(50, op_prefix="settings.set")[0].actor == "api"


def test_audit_retention_and_the_import_limit_are_settings_the_api_stores(client, live):
    from app.store.yaml_io import DEFAULT_MAX_FILE_BYTES, max_file_bytes

    audit = live.router.audit
    before = audit.retention()
    r = client.request("PATCH", "/api/v1/settings",
                       body={"audit.retention_days": 7, "audit.max_rows": 5000, "import.max_bytes": 20_000})
    try:
        assert r.status == 200, r.json
        assert audit.retention() == (7.0, 5000)
        assert max_file_bytes(live.station.parts().store) == 20_000
        for bad in ({"audit.max_rows": "5000"}, {"audit.max_rows": 10}, {"audit.retention_days": 0},
                    {"audit.retention_days": "30"}, {"import.max_bytes": 10}, {"import.max_bytes": 1.5}):
            r = client.request("PATCH", "/api/v1/settings", body=bad)
            assert r.status == 422, bad
            assert r.error["details"]["errors"][0]["field"] == next(iter(bad)), r.json
        assert audit.retention() == (7.0, 5000)
    finally:
        with live.station.parts().store.uow() as uow:
            uow.settings.set_many({"audit.retention_days": before[0], "audit.max_rows": before[1],
                                   "import.max_bytes": DEFAULT_MAX_FILE_BYTES})
            uow.commit()


def test_audit_is_paged(client, live):
    for _ in range(3):
        client.cameras()
    first = client.request("GET", "/api/v1/audit", query={"limit": 2})
    assert first.status == 200 and len(first.data["items"]) == 2
    ids = [e["id"] for e in first.data["items"]]
    assert ids == sorted(ids, reverse=True)
    nxt = client.request("GET", "/api/v1/audit", query={"limit": 2, "before": first.data["next_before"]})
    assert all(e["id"] < min(ids) for e in nxt.data["items"])


def test_event_stream_delivers_a_state_change_within_a_second(live, client):
    lobby = live.demo["Lobby"]
    conn = http.client.HTTPConnection("127.0.0.1", live.api.port, timeout=10)
    conn.request("GET", "/api/v1/events?kinds=state", headers={"Authorization": f"Bearer {live.api.token}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
    frames: queue.Queue = queue.Queue()

    def read() -> None:
        event = None
        try:
            for raw in resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event:
                    frames.put((event, json.loads(line[6:]), time.time()))
        except Exception:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert client.camera("start", lobby).status == 200
        deadline = time.monotonic() + 10
        while True:
            event, data, got = frames.get(timeout=max(0.1, deadline - time.monotonic()))
            if event == "state" and data["camera_id"] == lobby:
                break
        assert got - data["ts"] < 1.0, got - data["ts"]
    finally:
        conn.sock.shutdown(2) if conn.sock else None
        conn.close()
        reader.join(5)


def test_interactive_docs_are_served_offline_without_a_token(live):
    conn = http.client.HTTPConnection("127.0.0.1", live.api.port, timeout=10)
    try:
        conn.request("GET", "/api/v1/docs")
        resp = conn.getresponse()
        html = resp.read().decode()
        assert resp.status == 200 and "swagger-ui-bundle.js" in html
        refs = [part.split('"')[1] for part in html.split("src=")[1:]] + \
               [part.split('"')[1] for part in html.split("href=")[1:]]
        assert refs and all(ref.startswith("/api/v1/") for ref in refs), refs  # nothing from a CDN
        for ref in refs:
            conn.request("GET", ref)
            r = conn.getresponse()
            assert r.status == 200 and len(r.read()) > 100, ref
        conn.request("GET", "/api/v1/openapi.json")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["openapi"].startswith("3.1")
        conn.request("GET", "/api/v1/cameras")  # the API itself still needs the token
        r = conn.getresponse()
        r.read()
        assert r.status == 401
    finally:
        conn.close()


def test_promtool_accepts_a_live_scrape(client):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does)"
    for _ in range(3):
        client.cameras(force="domain")
    body = client.request("GET", "/api/v1/monitoring/metrics").body
    assert b"edge_station_operation_duration_seconds_bucket" in body
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()
