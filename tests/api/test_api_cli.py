"""``edge-station ctl`` and ``verify --live``: the CLI client against the running station, through its API."""

from __future__ import annotations

import json
import subprocess
import sys

from app.api.cli import main as ctl
from app.api.client import ApiClient
from app.api.live_verify import run_live_verification
from tests.api.conftest import wait_for


def run(capsys, live, *args: str) -> tuple[int, str, str]:
    code = ctl([*args, "--data-dir", str(live.data_dir)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ctl_operations(capsys, live, tmp_path):
    code, out, _ = run(capsys, live, "list")
    assert code == 0 and "Lobby: stopped" in out and "Front gate: " in out and "(inactive)" in out

    code, out, _ = run(capsys, live, "start", "Lobby", "--force-domain")
    assert code == 0 and "served by domain: force_domain" in out
    code, out, _ = run(capsys, live, "status", "lobby", "--force-legacy", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["route"]["path"] == "legacy" and doc["data"]["name"] == "Lobby"

    def frame_saved():
        return ctl(["snapshot", "Lobby", "-o", str(tmp_path / "lobby.png"), "--data-dir", str(live.data_dir)]) == 0
    wait_for(frame_saved, what="a snapshot")
    assert (tmp_path / "lobby.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()

    code, out, _ = run(capsys, live, "logs", "Lobby", "--limit", "5")
    assert code == 0 and 0 < len(out.strip().splitlines()) <= 6
    code, out, _ = run(capsys, live, "stop_camera", str(live.demo["Lobby"]))  # full operation names work too
    assert code == 0 and "stopped" in out

    code, out, err = run(capsys, live, "stop", "Lobby")
    assert code == 1 and "[invalid_state]" in err
    code, out, err = run(capsys, live, "status", "No such camera")
    assert code == 1 and "no camera named" in err

    code, out, _ = run(capsys, live, "create-rule", "--rule",
                       '{"name": "ctl rule", "metric": "fps", "comparator": "<", "threshold": 4}')
    assert code == 0 and "'ctl rule' v1" in out
    rid = out.split()[1]
    code, out, _ = run(capsys, live, "update-rule", rid, "--set", "threshold=2", "--set", "description=from ctl",
                       "--expected-version", "1")
    assert code == 0 and "v2" in out and "< 2" in out
    code, out, err = run(capsys, live, "update-rule", rid, "--set", "threshold=high")
    assert code == 1 and "[validation]" in err and "threshold" in err

    code, out, _ = run(capsys, live, "rollout", "--use-domain", "on", "--percent", "10")
    assert code == 0 and "domain on, 10 %" in out
    code, out, _ = run(capsys, live, "health")
    assert code == 0 and out.startswith("station: ")
    code, out, _ = run(capsys, live, "metrics")
    assert code == 0 and "edge_station_camera_up" in out


def test_ctl_as_a_process_without_a_station(tmp_path):
    p = subprocess.run([sys.executable, "-m", "app.api.cli", "list", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "no running station" in p.stderr and "Traceback" not in p.stderr


def test_ctl_as_a_process(live):
    p = subprocess.run([sys.executable, "-m", "app.api.cli", "status", "Server room", "--force-legacy",
                        "--data-dir", str(live.data_dir)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Server room: stopped" in p.stdout and "served by legacy: force_legacy" in p.stdout


def test_ctl_verify_records_the_result_for_the_gate(capsys, live):
    code, out, _ = run(capsys, live, "verify", "--camera", "Server room")
    assert code == 0 and "PASSED" in out, out
    assert live.router.reload().last_verify["passed"] is True


def test_verify_live_runs_every_operation_on_both_paths(live):
    client = ApiClient.for_data_dir(live.data_dir)
    cam = live.demo["Server room"]
    before = client.camera("status", cam).data
    report = run_live_verification(client, "Server room")
    assert report.passed, report.table()
    ops = {s.op for s in report.results["domain"]}
    assert len(ops) == 13  # all thirteen operations
    for path in ("legacy", "domain"):
        # every call reached its path, except input the API's schema refuses before any routing
        assert all(s.served_by == path or (s.served_by is None and s.outcome == "validation")
                   for s in report.results[path]), report.table()
        assert sum(s.served_by == path and s.outcome == "validation" for s in report.results[path]) >= 1
    after = client.camera("status", cam).data
    assert (after["active"], after["state"]) == (before["active"], before["state"])  # put back as it was
    with live.station.store.uow() as uow:
        assert not [r for r in uow.rules.list() if r.name.startswith("verify-live-")]  # its rules are gone
    client.close()


def test_verify_live_reports_a_mismatch(live, monkeypatch):
    """The comparison can fail: make one path's answers differ and the report says so."""
    import app.api.live_verify as lv

    real = lv._norm
    calls = {"n": 0}

    def one_path_only(op, data):
        if op == "camera_stats":
            calls["n"] += 1
            if calls["n"] == 2:  # the domain run's stats
                return {"skewed": True}
        return real(op, data)

    monkeypatch.setattr(lv, "_norm", one_path_only)
    client = ApiClient.for_data_dir(live.data_dir)
    report = run_live_verification(client, "Server room")
    client.close()
    assert not report.passed and report.mismatches == 1
    assert "MISMATCH" in report.table() and "FAILED" in report.table()


def test_verify_live_refuses_a_latched_rollout(capsys, live):
    c = ApiClient.for_data_dir(live.data_dir)
    assert c.request("PUT", "/api/v1/rollout", body={"rollback": True, "reason": "test"}).status == 200
    c.close()
    code, out, err = run(capsys, live, "verify")
    assert code == 1 and "latched" in err
