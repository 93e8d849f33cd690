"""The shipped Prometheus rules, scrape configuration and Grafana dashboard, checked by Debian's promtool
(``check rules``, the rules' unit tests, ``check config``) and read for what an import needs. A missing
promtool fails these tests: CI installs it (.ci/run)."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import yaml

from tests.support.prometheus import (
    DASHBOARD,
    EXAMPLE_CONFIG,
    PROMETHEUS_DIR,
    RULES,
    RULES_TEST,
    tool,
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120,
                          cwd=PROMETHEUS_DIR)


def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_accepts_the_rules() -> None:
    p = _promtool("check", "rules", "--lint=all", str(RULES))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in p.stdout


def test_the_rules_unit_tests_pass() -> None:
    p = _promtool("test", "rules", str(RULES_TEST))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts == {"EdgeStationDomainErrorRateHigh", "EdgeStationSuccessRateLow", "EdgeStationDomainLatencyHigh",
                      "EdgeStationCameraOffline", "EdgeStationDown", "EdgeStationRolloutLatched"}
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires == alerts, alerts - fires
    assert silent == alerts, alerts - silent


def test_the_recording_rules_cover_the_plan() -> None:
    recorded = {r["record"] for r in _rules() if "record" in r}
    for what in ("error_ratio", "success_ratio", "domain_share", "fallback_ratio", "p50", "p95", "p99"):
        assert any(what in name for name in recorded), what
    # one level:metric:operation name each (Prometheus's recording-rule convention)
    assert all(re.fullmatch(r"[a-z_]+:edge_station_[a-z_]+:[a-z0-9_]+", name) for name in recorded), recorded


def test_the_example_scrape_configuration_is_valid_and_names_the_rules() -> None:
    # --syntax-only: the example's token file and file_sd directory are a fleet's, not this machine's (the
    # live test runs the full check on the same file pointed at real ones)
    p = _promtool("check", "config", "--syntax-only", str(EXAMPLE_CONFIG))
    assert p.returncode == 0, p.stdout + p.stderr
    cfg = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    assert cfg["rule_files"] == [RULES.name]
    (job,) = cfg["scrape_configs"]
    assert job["job_name"] == "edge-station"  # what EdgeStationDown selects
    assert "up{job=\"edge-station\"}" in next(r["expr"] for r in _rules() if r.get("alert") == "EdgeStationDown")
    assert job["metrics_path"] == "/api/v1/monitoring/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    (sd,) = job["file_sd_configs"]
    assert all(f.endswith(".json") for f in sd["files"])


def test_the_example_file_sd_targets_name_their_stations() -> None:
    groups = json.loads((PROMETHEUS_DIR / "targets.example.json").read_text())
    assert groups and all(set(g) == {"targets", "labels"} for g in groups)
    stations = [g["labels"]["station"] for g in groups]
    assert len(set(stations)) == len(stations)  # one name per station
    assert all(re.fullmatch(r"[^:/\s]+:\d+", t) for g in groups for t in g["targets"])


# ---------------------------------------------------------------- the dashboard


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def test_the_dashboard_imports_with_a_prometheus_datasource_input() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["__inputs"] == [{"name": "DS_PROMETHEUS", "label": "Prometheus",
                                 "description": "the Prometheus that scrapes the stations", "type": "datasource",
                                 "pluginId": "prometheus", "pluginName": "Prometheus"}]
    assert "id" not in dash or dash["id"] is None  # an import makes its own
    ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for p in _panels(dash):
        assert p["datasource"] == ds, p["title"]
        assert p["targets"], p["title"]
        assert all(t["datasource"] == ds and t["expr"].strip() for t in p["targets"]), p["title"]
    for var in dash["templating"]["list"]:
        assert var["datasource"] == ds, var["name"]
    assert [v["name"] for v in dash["templating"]["list"]] == ["station", "track"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    needed = {p["type"] for p in _panels(dash)}
    assert needed <= {r["id"] for r in dash["__requires"] if r["type"] == "panel"}


def test_the_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in json.loads(DASHBOARD.read_text())["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_the_dashboard_shows_what_the_plan_asks_for() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in _panels(dash)}
    everything = " ".join(exprs.values())
    heatmaps = [p for p in _panels(dash) if p["type"] == "heatmap"]
    assert len(heatmaps) == 1
    (target,) = heatmaps[0]["targets"]
    assert target["format"] == "heatmap" and "edge_station_operation_duration_seconds_bucket" in target["expr"]
    assert "sum by (le)" in target["expr"]
    for needed in ("error_ratio", "success_ratio", "domain_share", "fallback_ratio", "p95_rate5m",
                   "edge_station_camera_up", "edge_station_camera_fps", 'up{job="edge-station"'):
        assert needed in everything, needed
    assert any("errors_total" in e and "by (station, track, op)" in e for e in exprs.values())  # per operation
    # every recorded series a panel reads is one the rules record
    recorded = {r["record"] for r in _rules() if "record" in r}
    used = set(re.findall(r"[a-z_]+:edge_station_[a-z_]+:[a-z0-9_]+", everything))
    assert used and used <= recorded, used - recorded
