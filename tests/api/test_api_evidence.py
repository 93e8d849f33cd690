"""Alert evidence over real HTTP: a real worker on a lavfi test source, a motion rule that fires,
its snapshot and clip fetched from the API and decoded with PyAV; a clip saved on demand; the
camera snapshot as JPEG; the health document when the database's disk is full or busy.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import av
import pytest

import app.store.db as db
from app.domain import Camera
from app.domain.operations import CameraRef
from app.domain.rules import AlertRule, Comparator, TargetKind
from tests.api.conftest import Live, wait_for

pytestmark = pytest.mark.slow
SOURCE = "test://moving?size=640x360&rate=15"
MISSING = 424242
SETTINGS = {"evidence.preroll_s": 2.0, "evidence.postroll_s": 1.0}


@dataclass(frozen=True)
class Fired:
    camera_id: int
    event_id: int


def _start(live: Live, cid: int) -> None:
    st = live.station
    st.call("start_camera", CameraRef(cid), actor="test")
    wait_for(lambda: (s := st.parts().supervisor.status(cid)).state.value == "running" and s.decoded >= 30, 20,
             what="the camera decoding")


@pytest.fixture(scope="module")
def fired(live: Live) -> Iterator[Fired]:
    """A camera of its own whose motion rule fired, with the fired snapshot and the clip on disk."""
    st = live.station
    before = {k: st.get_settings().get(k) for k in SETTINGS}
    st.set_settings(SETTINGS, actor="api evidence tests")
    st.evidence_settings()  # the worker's pre-roll, for the start below
    cam = st.parts().admin.add_camera(Camera(name=f"Evidence {uuid.uuid4().hex[:6]}", source=SOURCE))
    st.reload_cameras()
    rule = None
    try:
        _start(live, cam.id)  # type: ignore[arg-type]
        with st.parts().store.uow() as uow:
            rule = uow.rules.add(AlertRule(name=f"Motion at {cam.name}", metric="motion_active",
                                           comparator=Comparator.GE, threshold=1.0, target=TargetKind.CAMERA,
                                           camera_id=cam.id, for_seconds=0.0, cooldown=0.0).validated())
            uow.commit()
        st.reload_cameras()
        event = wait_for(lambda: next((e for e in st.parts().alerts.history(50) if e.rule_id == rule.id and e.id), None),
                         20, what="the motion alert to fire")
        wait_for(lambda: {e.kind for e in st.evidence_for_event(event.id)} == {"snapshot", "clip"}, 30,
                 what="the snapshot and the clip")
        yield Fired(cam.id, event.id)  # type: ignore[arg-type]
    finally:
        if rule is not None:
            with st.parts().store.uow() as uow:
                uow.rules.remove(rule.id)
                uow.commit()
        st.stop_all()
        st.remove_camera(cam.id)  # type: ignore[arg-type]
        st.set_settings({k: v for k, v in before.items() if v is not None}, actor="api evidence tests")


def _decode_first(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data)) as c:
        return next(c.decode(video=0))


def test_the_fired_snapshot_is_a_jpeg_of_the_camera(client, live, fired):
    r = client.request("GET", f"/api/v1/alerts/events/{fired.event_id}/snapshot")
    assert r.status == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.body[:3] == b"\xff\xd8\xff"
    frame = _decode_first(r.body)
    assert (frame.width, frame.height) == (640, 360)
    assert r.body == live.station.event_snapshot(fired.event_id)[0]  # type: ignore[index]


def test_the_clip_is_an_mp4_pyav_opens(client, live, fired, tmp_path):
    r = client.request("GET", f"/api/v1/alerts/events/{fired.event_id}/clip")
    assert r.status == 200 and r.headers["content-type"] == "video/mp4"
    assert int(r.headers["content-length"]) == len(r.body) == live.station.event_clip_path(fired.event_id).stat().st_size
    out = tmp_path / "clip.mp4"
    out.write_bytes(r.body)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert sum(1 for _ in c.decode(video=0)) >= 15


def test_the_evidence_list_names_both_files(client, live, fired):
    r = client.request("GET", f"/api/v1/alerts/events/{fired.event_id}/evidence")
    assert r.status == 200
    doc = r.data
    assert doc["event_id"] == fired.event_id and isinstance(doc["failures"], list)
    kinds = {(e["kind"], e["moment"]) for e in doc["items"]}
    assert {("snapshot", "fired"), ("clip", "fired")} <= kinds
    listed = {e.id for e in live.station.evidence_for_event(fired.event_id)}
    assert {e["id"] for e in doc["items"]} == listed
    clip = next(e for e in doc["items"] if e["kind"] == "clip")
    assert clip["camera_id"] == fired.camera_id and clip["bytes"] > 0 and clip["codec"]


def test_missing_evidence_is_404(client, fired):
    for path in (f"/alerts/events/{MISSING}/snapshot", f"/alerts/events/{MISSING}/clip",
                 f"/alerts/events/{MISSING}/evidence"):
        r = client.request("GET", "/api/v1" + path)
        assert r.status == 404 and r.error["code"] == "not_found", (path, r.json)
    r = client.request("GET", f"/api/v1/alerts/events/{fired.event_id}/snapshot", query={"moment": "nope"})
    assert r.status == 422 and r.error["code"] == "validation"


def test_save_clip_now_over_http(client, live, fired, tmp_path):
    st = live.station
    st.stop_all()
    r = client.request("POST", f"/api/v1/cameras/{fired.camera_id}/clip", body={"pre": 1.0, "post": 0.5})
    assert r.status == 409 and r.error["code"] == "invalid_state", r.json  # the camera is stopped
    _start(live, fired.camera_id)

    # The clip waits its post-roll on a worker thread: the API answers other requests meanwhile.
    answer: dict = {}

    def save() -> None:
        from tests.api.conftest import CheckedClient

        c = CheckedClient(live.api.url, live.api.token, timeout=30)
        try:
            answer["r"] = c.request("POST", f"/api/v1/cameras/{fired.camera_id}/clip", body={"pre": 1.0, "post": 3.0})
            answer["done"] = time.monotonic()
        finally:
            c.close()

    t = threading.Thread(target=save)
    t.start()
    wait_for(lambda: any(st.parts().evidence_store.root.rglob("*.part")), 10, what="the clip being written")
    health = client.request("GET", "/api/v1/monitoring/health")
    answered = time.monotonic()
    t.join(30)
    assert not t.is_alive() and health.status in (200, 503)
    assert answered < answer["done"], "the health request waited for the clip"
    r = answer["r"]
    assert r.status == 201, r.json
    ev = r.data
    assert ev["kind"] == "clip" and ev["moment"] == "manual" and ev["camera_id"] == fired.camera_id
    path = st.parts().evidence_store.path_of(next(e for e in st.list_evidence(fired.camera_id) if e.id == ev["id"]))
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 15

    audit = client.request("GET", "/api/v1/audit", query={"op": "admin.save_clip", "limit": 5}).data["items"]
    assert audit[0]["actor"] == "api" and audit[0]["outcome"] == "ok" and audit[0]["key"] == f"camera:{fired.camera_id}"
    assert audit[1]["outcome"] == "error:invalid_state"

    for bad in ({"pre": 61}, {"post": -1}, {"pre": "long"}, {"colour": 1}):
        r = client.request("POST", f"/api/v1/cameras/{fired.camera_id}/clip", body=bad)
        assert r.status == 422 and r.error["code"] == "validation", bad
    r = client.request("POST", f"/api/v1/cameras/{MISSING}/clip", body={})
    assert r.status == 404 and r.error["code"] == "not_found"

    # The live frame in either format, through the router as before.
    for fmt, ctype, magic in (("jpeg", "image/jpeg", b"\xff\xd8\xff"), ("png", "image/png", b"\x89PNG")):
        r = client.request("GET", f"/api/v1/cameras/{fired.camera_id}/snapshot", query={"format": fmt})
        assert r.status == 200 and r.headers["content-type"] == ctype and r.body.startswith(magic)
        assert r.headers["x-edge-path"] in ("legacy", "domain")
        assert (_decode_first(r.body).width, _decode_first(r.body).height) == (640, 360)
    r = client.request("GET", f"/api/v1/cameras/{fired.camera_id}/snapshot",
                       query={"format": "jpeg", "force_domain": "true"})
    assert r.status == 200 and r.headers["x-edge-path"] == "domain" and r.body[:3] == b"\xff\xd8\xff"


def test_health_says_disk_full_and_busy(client, live, monkeypatch):
    r = client.request("GET", "/api/v1/monitoring/health")
    assert r.data["database"]["problem"] is None and r.data["database"]["free_bytes"] > db.LOW_SPACE_BYTES

    monkeypatch.setattr(db, "free_bytes", lambda _path: 4096)
    r = client.request("GET", "/api/v1/monitoring/health")
    assert r.status == 503 and r.data["status"] == "down"
    database = r.data["database"]
    assert database["ok"] is False and database["free_bytes"] == 4096
    assert database["problem"].startswith("disk full") and "disk full" in database["error"]
    monkeypatch.undo()

    # Another process holds the write lock: the station runs, but the document says so.
    path = db.sqlite_path(live.station.parts().store.engine)
    holder = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        r = client.request("GET", "/api/v1/monitoring/health")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.data["database"]["ok"] is True and "busy" in r.data["database"]["problem"]
    assert r.data["status"] in ("degraded", "down") and r.data["status"] != "ok"
    r = client.request("GET", "/api/v1/monitoring/health")
    assert r.data["database"]["problem"] is None
