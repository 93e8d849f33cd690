"""Every endpoint, for real: HTTP on 127.0.0.1 to a station whose workers decode lavfi test video."""

from __future__ import annotations

import base64
import struct
import uuid

import psutil

from tests.api.conftest import wait_for


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def _state(client, cam):
    return client.camera("status", cam).data["state"]


def test_list_cameras(client, live):
    r = client.cameras()
    assert r.status == 200
    names = {i["name"]: i for i in r.data["items"]}
    assert set(names) == set(live.demo)
    assert all(i["state"] in ("stopped", "inactive") for i in names.values())
    active = client.cameras(query={"active_only": True}).data["items"]
    assert {i["name"] for i in active} == {n for n, cid in live.demo.items() if live.active[cid]}
    assert r.route["operation"] == "list_status"


def test_camera_lifecycle_and_reads(client, live):
    cam = live.demo["Lobby"]
    r = client.camera("start", cam)
    assert r.status == 200 and r.data["state"] in ("starting", "running")
    pid = wait_for(lambda: client.camera("status", cam).data["pid"], what="a pid")
    assert psutil.pid_exists(pid)
    wait_for(lambda: _state(client, cam) == "running" and client.camera("status", cam).data["fps"], what="running")

    snap = wait_for(lambda: (s := client.camera("snapshot", cam)).ok and s, what="a frame")
    png = base64.b64decode(snap.data["png"])
    assert _png_size(png) == (snap.data["width"], snap.data["height"])
    raw = client.camera("snapshot", cam, query={"format": "png"})
    assert raw.headers["content-type"] == "image/png" and raw.headers["x-edge-path"] in ("legacy", "domain")
    assert _png_size(raw.body)[0] == snap.data["width"] and int(raw.headers["x-snapshot-seq"]) >= snap.data["seq"]

    logs = client.camera("logs", cam, query={"limit": 20})
    assert logs.status == 200 and 0 < len(logs.data["lines"]) <= 20
    assert {ln["source"] for ln in logs.data["lines"]} <= {"worker", "supervisor"}

    stats = wait_for(lambda: (s := client.camera("stats", cam, query={"window_s": 30})).data["samples"] and s,
                     what="stats samples")
    assert stats.data["running"] and stats.data["pid"] == pid and stats.data["rss_bytes"] > 0

    probe = client.camera("probe", cam, query={"timeout": 10})
    assert probe.status == 200 and probe.data["ok"], probe.data
    assert probe.data["width"] > 0 and probe.data["codec"]

    r = client.camera("restart", cam)
    assert r.status == 200
    new_pid = wait_for(lambda: (p := client.camera("status", cam).data["pid"]) and p != pid and p, what="a new pid")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    r = client.camera("stop", cam, query={"timeout": 5})
    assert r.status == 200 and r.data["state"] == "stopped" and r.data["pid"] is None
    assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == psutil.STATUS_ZOMBIE


def test_activate_and_deactivate(client, live):
    gate = live.demo["Front gate"]  # inactive in the demo set
    assert client.camera("status", gate).data["active"] is False
    r = client.camera("activate", gate)
    assert r.status == 200 and r.data["active"] is True
    assert live.station.camera(gate).active is True or wait_for(lambda: live.station.camera(gate).active)
    r = client.camera("start", gate)
    assert r.status == 200
    r = client.camera("deactivate", gate)
    assert r.status == 200 and r.data["active"] is False and r.data["state"] in ("inactive", "stopped")
    assert client.camera("status", gate).data["pid"] is None


def test_create_and_update_rule(client, live):
    name = f"low fps {uuid.uuid4().hex[:6]}"
    body = {"name": name, "metric": "fps", "comparator": "<", "threshold": 5, "target": "camera",
            "camera_id": live.demo["Lobby"], "for_seconds": 10, "severity": "critical",
            "notify": {"webhook_url": "http://127.0.0.1:9/hook", "command": ["true"], "desktop": False}}
    r = client.request("POST", "/api/v1/alerts/rules", body=body)
    assert r.status == 201, r.json
    rule = r.data["rule"]
    assert rule["id"] > 0 and rule["version"] == 1 and rule["threshold"] == 5.0 and rule["severity"] == "critical"
    assert rule["notify"]["command"] == ["true"]
    r = client.request("PUT", f"/api/v1/alerts/rules/{rule['id']}",
                       body={"changes": {"threshold": 2.5, "notify": {"desktop": True}}, "expected_version": 1})
    assert r.status == 200, r.json
    assert r.data["rule"]["version"] == 2 and r.data["rule"]["threshold"] == 2.5 and r.data["rule"]["notify"]["desktop"]
    with live.station.parts().store.uow() as uow:
        stored = uow.rules.get(rule["id"])
    assert stored.version == 2 and stored.threshold == 2.5
    r = client.request("DELETE", f"/api/v1/alerts/rules/{rule['id']}")
    assert r.status == 200 and r.data == {"deleted": rule["id"]}
    assert client.request("DELETE", f"/api/v1/alerts/rules/{rule['id']}").status == 404


def test_rollout_get_and_put(client, live):
    r = client.request("GET", "/api/v1/rollout")
    assert r.status == 200 and r.data["settings"]["use_domain"] is False
    r = client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 25, "reason": "test"})
    assert r.status == 409 and "cannot raise the rules track from 0 % to 25 %" in r.error["message"]  # the gate
    r = client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 25, "reason": "test",
                                                        "override_reason": "api test"})
    assert r.status == 200, r.json
    assert r.data["settings"]["use_domain"] is True and r.data["settings"]["percent"] == 25
    assert {t: d["settings"]["percent"] for t, d in r.data["tracks"].items()} == {"rules": 25, "cameras": 25}
    assert live.router.settings.track("cameras").percent == 25
    with live.station.parts().store.uow() as uow:
        entries = [e for e in uow.audit.recent(limit=50) if e.op == "settings.set" and e.actor == "api"]
        overrides = [e for e in uow.audit.recent(limit=50) if e.op == "rollout.override"]
    assert {e.key for e in entries} >= {f"rollout.{t}.{f}" for t in ("rules", "cameras")
                                        for f in ("use_domain", "percent")}
    assert {(e.key, e.reason) for e in overrides} == {("rules", "api test"), ("cameras", "api test")}
    r = client.request("PUT", "/api/v1/rollout", body={"rollback": True, "reason": "test rollback"})
    assert r.status == 200 and r.data["settings"]["latched"] is True and r.data["settings"]["percent"] == 0
    r = client.request("PUT", "/api/v1/rollout", body={"percent": 101})
    assert r.status == 422 and r.error["code"] == "validation"
    r = client.request("PUT", "/api/v1/rollout", body={})
    assert r.status == 422
    r = client.request("PUT", "/api/v1/rollout", body={"advance": True})  # the gate refuses: no calls, no verify
    assert r.status == 409 and r.error["code"] == "invalid_state" and r.error["details"]


def test_health(client, live):
    r = client.request("GET", "/api/v1/monitoring/health")
    assert r.status == 200
    doc = r.data
    assert doc["status"] in ("ok", "degraded")
    assert doc["database"]["ok"] and doc["database"]["dialect"] == "sqlite"
    assert doc["supervisor"]["ok"]
    assert {c["name"] for c in doc["cameras"]} == set(live.demo)
    assert doc["rollout"]["verdict"] in ("ok", "inconclusive", "alert")


def test_openapi_document_is_served_and_valid(client):
    from openapi_spec_validator import validate

    r = client.request("GET", "/api/v1/openapi.json")
    assert r.status == 200
    doc = r.json
    validate(doc)
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {"start_camera", "stop_camera", "restart_camera", "activate_camera", "deactivate_camera",
            "probe_camera", "camera_status", "camera_logs", "camera_snapshot", "camera_stats", "list_status",
            "create_rule", "update_rule", "get_rollout", "put_rollout", "health", "metrics"} <= ops
    from app.domain.operations import OPERATIONS

    forced = {op["operationId"] for path in doc["paths"].values() for op in path.values()
              for p in op.get("parameters", []) if p["name"] == "force_domain"}
    assert forced == {*OPERATIONS, "list_rules"}  # every routed operation, and the plan's list of rules

    # the bounds the operations enforce are in the document (a schema-valid request is not refused)
    def param(op_id: str, name: str) -> dict:
        return next(p["schema"] for path in doc["paths"].values() for op in path.values()
                    if op["operationId"] == op_id for p in op["parameters"] if p["name"] == name)

    assert (param("camera_logs", "limit")["minimum"], param("camera_logs", "limit")["maximum"]) == (1, 5000)
    assert (param("probe_camera", "timeout")["exclusiveMinimum"], param("probe_camera", "timeout")["maximum"]) == (0, 60)
    assert param("stop_camera", "timeout")["anyOf"][0]["exclusiveMinimum"] == 0
    assert param("camera_stats", "window_s")["maximum"] == 3600
    rule = doc["components"]["schemas"]["RuleIn"]["properties"]
    assert "fps" in rule["metric"]["enum"] and rule["name"]["maxLength"] == 100
    assert doc["components"]["schemas"]["RuleChanges"]["minProperties"] == 1


def test_discovery_file_and_token_mode(live):
    import json
    import stat

    disc = json.loads((live.data_dir / "run" / "api.json").read_text())
    assert disc["url"] == live.api.url and disc["port"] == live.api.port
    mode = stat.S_IMODE((live.data_dir / "api-token").stat().st_mode)
    assert mode == 0o600


def test_a_notify_change_is_a_patch_on_both_paths(client, live):
    for force in ("legacy", "domain"):
        body = {"name": f"patch {force} {uuid.uuid4().hex[:4]}", "metric": "fps", "comparator": "<", "threshold": 1,
                "notify": {"webhook_url": "https://hooks.example/x", "command": ["notify-send", "hi"], "sound": True}}
        rid = client.request("POST", "/api/v1/alerts/rules", body=body).data["rule"]["id"]
        r = client.op("PUT", f"/alerts/rules/{rid}", force=force, body={"changes": {"notify": {"desktop": False}}})
        assert r.status == 200 and r.route["served_by"] == force
        assert r.data["rule"]["notify"] == {"webhook_url": "https://hooks.example/x", "command": ["notify-send", "hi"],
                                            "desktop": False, "sound": True}
        bad = client.op("PUT", f"/alerts/rules/{rid}", force=force,
                        body={"changes": {"notify": {"sound": "loud", "colour": "red"}}})
        assert bad.status == 422
        assert {e["field"] for e in bad.error["details"]["errors"]} == {"changes.notify.sound", "changes.notify.colour"}
