"""``edge-station ctl`` and ``verify --live``: the CLI client against the running station, through its API."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

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

    # raising a share goes through each track's gate: no back door through the one-track API
    code, out, err = run(capsys, live, "rollout", "--use-domain", "on", "--percent", "10")
    assert code == 1 and "cannot raise the rules track from 0 % to 10 %" in err and "verify" in err
    code, out, _ = run(capsys, live, "rollout", "--use-domain", "off", "--percent", "0")
    assert code == 0 and "domain off, 0 %" in out
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
    with live.station.parts().store.uow() as uow:
        assert not [r for r in uow.rules.list() if r.name.startswith("verify-live-")]  # its rules are gone
    client.close()


def test_verify_live_reports_a_mismatch(live, monkeypatch):
    """The comparison can fail: make one path's answers differ and the report says so."""
    domain = live.router.domain
    real = domain.camera_stats

    def skewed(req):  # the domain path's stats disagree with legacy's on something compared
        res = real(req)
        return dataclasses.replace(res, running=not res.running)

    monkeypatch.setattr(domain, "camera_stats", skewed)
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _headless(data_dir, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", "headless", "--data-dir", str(data_dir), "--no-demo",
                             "--status-interval", "0", "--duration", "60", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


@pytest.mark.slow
def test_api_port_option_and_a_killed_station_leaves_no_token_to_phish(tmp_path):
    """``headless --api-port``; after a SIGKILL the client refuses the stale run/api.json and the next
    start makes a new token."""
    from app.api import ClientError
    from app.api.token import read_token

    port = _free_port()
    first = _headless(tmp_path, "--api-port", str(port))
    try:
        disc = tmp_path / "run" / "api.json"
        wait_for(disc.exists, timeout=60, what="the headless station's API")
        c = ApiClient.for_data_dir(tmp_path)
        assert c.port == port and c.cameras().status == 200
        c.close()
        token = read_token(tmp_path / "api-token")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    assert disc.exists()  # left behind by the kill
    with pytest.raises(ClientError, match="is not running"):
        ApiClient.for_data_dir(tmp_path)
    env_port = _free_port()
    second = _headless(tmp_path, env={**os.environ, "EDGE_STATION_API_PORT": str(env_port)})
    try:
        def second_up() -> bool:
            try:
                return ApiClient.for_data_dir(tmp_path).port == env_port
            except ClientError:  # the stale file, until the new station replaces it
                return False

        wait_for(second_up, timeout=60, what="the second start on $EDGE_STATION_API_PORT")
        assert read_token(tmp_path / "api-token") != token  # rotated after the unclean stop
        c = ApiClient.for_data_dir(tmp_path)
        assert c.cameras().status == 200
        c.close()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert not disc.exists()  # a clean stop removes it


def test_ctl_rollout_names_a_track_and_ctl_clip_saves_a_clip_now(capsys, live, tmp_path):
    code, out, err = run(capsys, live, "rollout", "--use-domain", "on", "--percent", "100", "--track", "rules")
    assert code == 1 and "cannot raise the rules track" in err and "override reason" in err  # the gate holds
    code, out, _ = run(capsys, live, "rollout", "--use-domain", "on", "--percent", "10", "--track", "rules",
                       "--override-reason", "ctl test")
    assert code == 0 and "rules: domain on, 10 %" in out and "cameras: domain off, 0 %" in out
    assert live.router.settings.track("cameras").percent == 0

    code, out, _ = run(capsys, live, "start", "Lobby")
    assert code == 0
    wait_for(lambda: live.station.parts().supervisor.status(live.demo["Lobby"]).source == "up", what="Lobby's video")
    code, out, err = run(capsys, live, "clip", "Lobby", "--pre", "1", "--post", "1")
    assert code == 0, err
    assert out.startswith("saved clip ") and " bytes, evidence/" in out
    rel = out.split("evidence/", 1)[1].split(" in the data dir", 1)[0]
    clip = live.data_dir / "evidence" / rel
    assert clip.suffix == ".mp4" and clip.stat().st_size > 0
    code, out, err = run(capsys, live, "clip", "No such camera")
    assert code == 1 and "no camera named" in err
