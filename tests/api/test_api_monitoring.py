"""Monitoring: the Prometheus exposition (read back with prometheus-client's parser) and health."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import wait_for


def _scrape(client) -> dict[str, list]:
    r = client.request("GET", "/api/v1/monitoring/metrics", headers={"Accept": "text/plain"})
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f.samples for f in text_string_to_metric_families(r.body.decode())}
    return families


def _value(samples, name, **labels):
    hits = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def test_metrics_per_camera_per_path_and_alerts(client, live):
    cam = live.demo["Lobby"]
    before = _scrape(client)
    base_domain = sum(s.value for s in before.get("edge_station_operation_calls", [])
                      if s.labels == {"op": "camera_status", "path": "domain"})
    assert client.camera("start", cam, force="domain").status == 200
    wait_for(lambda: client.camera("status", cam, force="domain").data["fps"], what="frames")
    for _ in range(3):
        client.camera("status", cam, force="legacy")
    client.camera("stop", 999999, force="legacy")  # an answer, not a failure
    client.request("POST", "/api/v1/alerts/rules",
                   body={"name": f"m {uuid.uuid4().hex[:6]}", "metric": "fps", "comparator": "<", "threshold": 1,
                         "enabled": False})
    m = _scrape(client)

    # per camera
    assert _value(m["edge_station_camera_up"], "edge_station_camera_up", camera=str(cam)) == 1.0
    assert _value(m["edge_station_camera_state"], "edge_station_camera_state", camera=str(cam), state="running") == 1
    assert _value(m["edge_station_camera_fps"], "edge_station_camera_fps", camera=str(cam)) > 0
    gate = live.demo["Front gate"]
    assert _value(m["edge_station_camera_active"], "edge_station_camera_active", camera=str(gate)) == 0
    assert _value(m["edge_station_camera_rss_bytes"], "edge_station_camera_rss_bytes", camera=str(cam)) > 0

    # per operation and path: counters that moved by what we did
    calls = m["edge_station_operation_calls"]
    assert _value(calls, "edge_station_operation_calls_total", op="camera_status", path="domain") > base_domain
    assert _value(calls, "edge_station_operation_calls_total", op="camera_status", path="legacy") >= 3
    answers = m["edge_station_operation_answers"]
    assert _value(answers, "edge_station_operation_answers_total", op="stop_camera", path="legacy") >= 1
    # latency per operation and path: a histogram (Prometheus computes the quantiles), no quantile gauge
    h = m["edge_station_operation_duration_seconds"]
    count = _value(h, "edge_station_operation_duration_seconds_count", op="camera_status", path="legacy")
    total = _value(h, "edge_station_operation_duration_seconds_sum", op="camera_status", path="legacy")
    inf = _value(h, "edge_station_operation_duration_seconds_bucket", op="camera_status", path="legacy", le="+Inf")
    assert count >= 3 and inf == count and 0 < total / count < 5
    assert "edge_station_operation_latency_seconds" not in m

    # rollout and alerts
    assert _value(m["edge_station_rollout_percent"], "edge_station_rollout_percent") == 0
    assert sum(s.value for s in m["edge_station_rollout_health"]) == 1
    assert _value(m["edge_station_alert_rules"], "edge_station_alert_rules", enabled="false") >= 1

    # the station's own series (sampled once a second)
    series = wait_for(lambda: (x := _scrape(client)).get("edge_station_station_memory_percent") and x,
                      what="the station series")
    assert 0 < _value(series["edge_station_station_memory_percent"], "edge_station_station_memory_percent") <= 100
    assert _value(series["edge_station_camera_offline"], "edge_station_camera_offline", camera=str(cam)) == 0

    # the API's own figures, per endpoint
    reqs = m["edge_station_api_requests"]
    assert _value(reqs, "edge_station_api_requests_total", route="camera_status", method="GET", status="200") >= 4
    assert _value(reqs, "edge_station_api_requests_total", route="stop_camera", method="POST", status="404") >= 1
    hist = m["edge_station_api_request_duration_seconds"]
    assert _value(hist, "edge_station_api_request_duration_seconds_count", route="camera_status") >= 4


def test_health_reports_a_failing_camera_as_degraded(client, live):
    """A camera whose source cannot open: its worker fails and restarts; health says degraded and why."""
    from app.domain import Camera

    cam = live.station.parts().admin.add_camera(Camera(name=f"broken {uuid.uuid4().hex[:4]}",
                                               source="rtsp://127.0.0.1:9/nothing", stall_timeout=2))
    try:
        wait_for(lambda: live.station.camera(cam.id), what="the station to notice the new camera")
        assert client.camera("start", cam.id).status == 200

        def degraded():
            doc = client.request("GET", "/api/v1/monitoring/health").data
            mine = [c for c in doc["cameras"] if c["camera_id"] == cam.id]
            return doc if mine and not mine[0]["ok"] else None

        doc = wait_for(degraded, timeout=30, interval=0.3, what="the camera to be reported unhealthy")
        assert doc["status"] == "degraded"
        # a live worker that never got a frame: the snapshot is "unavailable" (503), not a failure
        snap = wait_for(lambda: (r := client.camera("snapshot", cam.id)).status == 503 and r, timeout=10,
                        what="a 503 snapshot")
        assert snap.error["code"] == "unavailable" and "has not published a frame" in snap.error["message"]
        mine = next(c for c in doc["cameras"] if c["camera_id"] == cam.id)
        assert mine["problem"] in ("source down", "worker failed", "worker restarting after a failure",
                                   "stream stalled")
    finally:
        live.station.stop_all()
        live.station.parts().admin.remove_camera(cam.id)
        wait_for(lambda: live.station.camera(cam.id) is None, what="the station to notice the removal")


def test_the_series_the_fleet_rules_read(client, live):
    """What packaging/prometheus/edge-station.rules.yml needs: the track of every operation series, an
    end-to-end success counter, each track's target and latch, and the station's version."""
    from app import __version__

    cam = live.demo["Lobby"]
    for _ in range(3):
        client.camera("status", cam, force="legacy")
    client.camera("stop", 999999, force="legacy")  # an answer: a success for the caller
    live.router.set(track="rules", use_domain=True, percent=10, actor="api tests", override_reason="api tests")
    m = _scrape(client)

    assert _value(m["edge_station_info"], "edge_station_info", version=__version__) == 1
    calls = m["edge_station_operation_calls"]
    assert {s.labels["track"] for s in calls if s.labels["op"] == "camera_status"} == {"cameras"}
    assert all(s.labels["track"] in ("cameras", "rules") for s in calls)
    ok = m["edge_station_operation_successes"]
    total = _value(calls, "edge_station_operation_calls_total", op="stop_camera", track="cameras", path="legacy")
    assert _value(ok, "edge_station_operation_successes_total", op="stop_camera", path="legacy") == total
    h = m["edge_station_operation_duration_seconds"]
    assert _value(h, "edge_station_operation_duration_seconds_count", op="camera_status", track="cameras",
                  path="legacy") >= 3
    target = m["edge_station_rollout_track_target_percent"]
    assert _value(target, "edge_station_rollout_track_target_percent", track="rules") == 10
    assert _value(target, "edge_station_rollout_track_target_percent", track="cameras") == 0
    latched = m["edge_station_rollout_track_latched"]
    assert {s.labels["track"]: s.value for s in latched} == {"rules": 0.0, "cameras": 0.0}
