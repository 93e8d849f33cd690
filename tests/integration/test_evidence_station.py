"""Alert evidence through a real station: real workers on lavfi test sources, a real SQLite
store, the alert engine on its own thread; snapshots and clips in the data dir.

Faults: a worker killed while writing a clip, a disk that reaches its free-space floor
(an injected free-space probe; the real full disk is in test_evidence_worker.py), a
camera removed with evidence on disk.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest

from app.domain import Camera
from app.domain.operations import CameraRef, StopCamera
from app.domain.rules import AlertRule, Comparator, Notify, TargetKind
from app.evidence import EvidenceError
from app.evidence.store import MB
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions

pytestmark = pytest.mark.slow
SOURCE = "test://moving?size=640x360&rate=15"


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def station(tmp_path):
    st = Station(StationOptions(paths=resolve_paths(tmp_path / "data"), autostart=False, seed_demo=False))
    st.open()
    st.set_settings({"evidence.preroll_s": 2.0, "evidence.postroll_s": 1.0}, actor="test")
    yield st
    st.close()


def _camera(st: Station, name: str = "Dock", source: str = SOURCE, start: bool = True) -> int:
    cam = st.parts().admin.add_camera(Camera(name=name, source=source))
    st.reload_cameras()
    if start:
        st.call("start_camera", CameraRef(cam.id), actor="test")
        wait_for(lambda: (s := st.parts().supervisor.status(cam.id)).state.value == "running" and s.decoded >= 30, 20,
                 f"{name} decoding")
    return cam.id  # type: ignore[return-value]


def _add_rule(st: Station, rule: AlertRule) -> AlertRule:
    with st.parts().store.uow() as uow:
        saved = uow.rules.add(rule)
        uow.commit()
    st.reload_cameras()  # reloads the rules too
    return saved


def _motion_rule(camera_id: int, **kw) -> AlertRule:
    return AlertRule(name=kw.pop("name", "Motion at Dock"), metric="motion_active", comparator=Comparator.GE,
                     threshold=1.0, target=TargetKind.CAMERA, camera_id=camera_id, for_seconds=0.0, cooldown=0.0,
                     **kw).validated()


def test_a_camera_alert_gets_a_snapshot_and_a_clip_and_its_resolution_a_snapshot(station: Station) -> None:
    cid = _camera(station)
    rule = _add_rule(station, _motion_rule(cid))
    event = wait_for(lambda: next((e for e in station.parts().alerts.history(50) if e.rule_id == rule.id and e.id), None),
                     15, "the motion alert to fire")
    items = wait_for(lambda: (ev := station.evidence_for_event(event.id)) and
                     {e.kind for e in ev} == {"snapshot", "clip"} and ev, 20, "snapshot and clip")
    snap = next(e for e in items if e.kind == "snapshot")
    clip = next(e for e in items if e.kind == "clip")
    assert (snap.moment, snap.width, snap.height, snap.camera_name) == ("fired", 640, 360, "Dock")
    assert clip.moment == "fired" and clip.reencoded and "re-encoded" in clip.note
    assert 2.0 <= (clip.preroll or 0) and (clip.duration or 0) >= 2.5
    for e in items:
        path = station.parts().evidence_store.path_of(e)
        assert path.is_relative_to(station.paths.data_dir / "evidence")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_size == e.bytes
    data, ctype = station.event_snapshot(event.id)
    assert ctype == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    with av.open(str(station.event_clip_path(event.id))) as c:
        assert c.streams.video[0].codec_context.name == "h264" and sum(1 for _ in c.decode(video=0)) >= 30
    assert station.parts().evidence_recorder.latencies and station.parts().evidence_recorder.latencies[0] < 5.0

    # The rule goes away: the alert resolves, and the resolution has its own snapshot.
    with station.parts().store.uow() as uow:
        uow.rules.remove(rule.id)
        uow.commit()
    station.reload_cameras()
    wait_for(lambda: station.event_snapshot_path(event.id, "resolved"), 15, "the resolution snapshot")

    # Export for handing to someone: the event as JSON, the snapshots and the clip.
    out = station.export_event(event.id, station.paths.data_dir.parent)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        doc = json.loads(zf.read(f"event-{event.id}.json"))
    assert doc["event"]["id"] == event.id and doc["event"]["rule"] == "Motion at Dock"
    assert {Path(e["file"]).name for e in doc["evidence"]} | {f"event-{event.id}.json"} == names
    assert {(e["kind"], e["moment"]) for e in doc["evidence"]} == {("snapshot", "fired"), ("clip", "fired"),
                                                                   ("snapshot", "resolved")}
    usage = station.evidence_usage()
    assert [(u.camera_name, u.snapshots, u.clips) for u in usage] == [("Dock", 2, 1)]
    assert usage[0].bytes == sum(e.bytes for e in station.list_evidence(cid))


def test_an_alert_on_a_camera_without_frames_says_why_it_has_no_evidence(station: Station) -> None:
    cid = _camera(station, source="http://127.0.0.1:9/nothing.ts", start=False)  # nothing listens on port 9
    station.call("start_camera", CameraRef(cid), actor="test")
    rule = _add_rule(station, AlertRule(name="Dock offline", metric="offline", comparator=Comparator.GE,
                                        threshold=1.0, target=TargetKind.CAMERA, camera_id=cid).validated())
    event = wait_for(lambda: next((e for e in station.parts().alerts.history(50) if e.rule_id == rule.id and e.id), None),
                     15, "the offline alert")
    why = wait_for(lambda: station.evidence_failures(event.id), 10, "the reason")
    assert any("no frame decoded yet" in w for w in why), why
    assert station.evidence_for_event(event.id) == []


def test_save_clip_on_demand_and_a_worker_killed_mid_clip_lists_nothing(station: Station) -> None:
    cid = _camera(station)
    ev = station.save_clip(cid, pre=1.0, post=0.5)
    assert ev.kind == "clip" and ev.moment == "manual" and ev.event_id is None
    assert station.parts().evidence_store.path_of(ev).exists()

    result: dict = {}

    def long_clip() -> None:
        try:
            result["ev"] = station.save_clip(cid, pre=1.0, post=10.0)
        except EvidenceError as e:
            result["error"] = str(e)

    t = threading.Thread(target=long_clip)
    t.start()
    cam_dir = station.parts().evidence_store.root / f"cam-{cid}"
    part = wait_for(lambda: next(iter(cam_dir.glob("*.part")), None), 10, "the clip being written")
    pid = station.parts().supervisor.status(cid).pid
    os.kill(pid, signal.SIGKILL)
    t.join(20)
    assert not t.is_alive() and "exited" in result.get("error", ""), result
    listed = station.list_evidence(cid)
    assert [e.id for e in listed] == [ev.id]  # only the complete clip of before
    assert all(not e.path.endswith(".part") for e in listed)
    assert part.exists()  # the dead worker's half file is there, unlisted, until the sweep
    assert station.parts().evidence_store.sweep(parts_older_than=0.0) == 1 and not part.exists()
    # The supervisor restarts the worker; clips work again.
    wait_for(lambda: (s := station.parts().supervisor.status(cid)).state.value == "running" and s.pid != pid
             and s.decoded >= 30, 30, "the restarted worker")
    assert station.save_clip(cid, pre=1.0, post=0.5).kind == "clip"


def test_the_free_space_floor_stops_writing_and_alerts(station: Station) -> None:
    cid = _camera(station)
    floor = station.evidence_settings().min_free_mb * MB
    # 150 kB above the floor: a clip of a busy pattern outgrows it half-way and is dropped.
    station.parts().evidence_store.free_space = lambda _p: int(floor + 150_000)
    with pytest.raises(EvidenceError, match="budget"):
        station.save_clip(cid, pre=2.0, post=4.0)
    assert station.list_evidence() == []
    assert not list(station.parts().evidence_store.root.rglob("*.part"))
    # At the floor nothing is written at all, and the station's rule fires.
    station.parts().evidence_store.free_space = lambda _p: int(floor - 1)
    with pytest.raises(EvidenceError, match="floor"):
        station.save_snapshot(cid)
    with pytest.raises(EvidenceError, match="floor"):
        station.save_clip(cid)
    assert station.list_evidence() == []
    firing = wait_for(lambda: [a for a in station.parts().alerts.firing() if "free-space floor" in a.rule_name], 15,
                      "the evidence floor alert")
    assert firing[0].subject == "station"
    # Space comes back: writing resumes.
    station.parts().evidence_store.free_space = lambda _p: int(floor + 500 * MB)
    assert station.save_snapshot(cid).kind == "snapshot"


def test_a_removed_camera_keeps_its_evidence_until_retention_or_loses_it_with_it(station: Station) -> None:
    keep = _camera(station, "Keep")
    drop = _camera(station, "Drop", "test://moving?size=320x180&rate=15")
    kept = station.save_snapshot(keep)
    dropped = [station.save_snapshot(drop), station.save_clip(drop, pre=1.0, post=0.5)]
    files = [station.parts().evidence_store.path_of(e) for e in dropped]
    station.call("stop_camera", StopCamera(keep))
    station.call("stop_camera", StopCamera(drop))
    assert station.remove_camera(keep) == (0, 0)
    count, freed = station.remove_camera(drop, delete_evidence=True)
    assert count == 2 and freed == sum(e.bytes for e in dropped)
    assert not any(f.exists() for f in files)
    left = station.list_evidence()
    assert [(e.id, e.camera_id, e.camera_name) for e in left] == [(kept.id, keep, "Keep")]
    assert station.parts().evidence_store.path_of(left[0]).exists()
    # Retention by age removes what the removed camera left.
    settings = station.evidence_settings()
    report = station.parts().evidence_store.enforce(settings, now=time.time() + (settings.max_age_days + 1) * 86400)
    assert report.by_age == 1 and station.list_evidence() == []


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_carries_the_snapshot_url_and_the_api_serves_the_file(station: Station) -> None:
    from app.api import ApiServer

    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.received = []
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    station.api = ApiServer(station, port=0).start()
    try:
        cid = _camera(station)
        url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
        _add_rule(station, _motion_rule(cid, notify=Notify(webhook_url=url)))
        doc = wait_for(lambda: next((d for d in _Hooks.received if d["kind"] == "firing"), None), 20, "the webhook")
        assert doc["snapshot_url"] == f"{station.api.url}/api/v1/alerts/events/{doc['event_id']}/snapshot"
        assert doc["clip_url"].endswith(f"/alerts/events/{doc['event_id']}/clip")
        # The snapshot was on disk before the webhook went out.
        assert station.event_snapshot_path(doc["event_id"]) is not None
    finally:
        station.api.stop()
        station.api = None
        hooks.shutdown()
        hooks.server_close()


def _cli(st: Station, *args: str, code: int = 0) -> str:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(st.paths.data_dir)],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == code, out.stderr
    return out.stdout + out.stderr


def test_the_cli_lists_exports_and_removes_evidence(station: Station, tmp_path: Path) -> None:
    cid = _camera(station)
    rule = _add_rule(station, _motion_rule(cid))
    event = wait_for(lambda: next((e for e in station.parts().alerts.history(50) if e.rule_id == rule.id and e.id), None),
                     15, "the motion alert")
    wait_for(lambda: {e.kind for e in station.evidence_for_event(event.id)} == {"snapshot", "clip"}, 20, "evidence")
    usage = _cli(station, "evidence", "usage")
    assert "Dock: 1 snapshots, 1 clips" in usage
    listing = _cli(station, "evidence", "list", "--camera", "Dock")
    assert listing.count(f"event {event.id}") == 2 and "clip" in listing and "snapshot" in listing
    out = _cli(station, "evidence", "export", str(event.id), "-o", str(tmp_path / "handover.zip"))
    assert "2 files" in out
    with zipfile.ZipFile(tmp_path / "handover.zip") as zf:
        assert len(zf.namelist()) == 3
    # settings: checked first, all or nothing, and the running station follows
    assert "max_total_mb is out of range" in _cli(station, "evidence", "settings", "postroll_s=3",
                                                  "max_total_mb=0", code=2)
    assert "evidence.postroll_s = 3.0" in _cli(station, "evidence", "settings", "postroll_s=3")
    wait_for(lambda: station.evidence_settings().postroll_s == 3.0, 10, "the station to read the new setting")
    station.call("stop_camera", StopCamera(cid))
    out = _cli(station, "cameras", "remove", "Dock", "--delete-evidence")
    assert "deleted its evidence: 2 files" in out
    assert station.list_evidence() == [] and not list((station.parts().evidence_store.root / f"cam-{cid}").glob("*.*"))
