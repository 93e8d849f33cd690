"""The status reads answered in front of FastAPI (app/api/inline.py) give FastAPI's answers.

A second API server on the same station with the fast path off is the reference: every request
below, good or bad, gets the same status, body, content type and route headers from both, and
the fast path answers exactly the requests it should (the others go on to FastAPI).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.api import ApiClient, ApiServer
from app.api.inline import StatusEncoder
from tests.api.conftest import Live

UNKNOWN = 987654


@pytest.fixture(scope="module")
def reference(live: Live) -> Iterator[ApiClient]:
    api = ApiServer(live.station, port=0, discovery=False, token_path=live.api.token_path,
                    inline_reads=False).start()
    c = ApiClient(api.url, api.token, timeout=30)
    try:
        yield c
    finally:
        c.close()
        api.stop()


def _cases(lobby: int) -> list[tuple[str, bool]]:
    """(path and query, answered by the fast path)"""
    status = f"/api/v1/cameras/{lobby}/status"
    return [
        ("/api/v1/cameras", True),
        ("/api/v1/cameras?active_only=true", True),
        ("/api/v1/cameras?active_only=1&force_domain=false", True),
        ("/api/v1/cameras?force_domain=true", True),
        (status, True),
        (status + "?force_domain=true", True),
        (status + "?force_domain=false", True),
        (f"/api/v1/cameras/{UNKNOWN}/status", True),  # the call fails: the error envelope, 404
        # everything else goes on to FastAPI
        ("/api/v1/cameras?force_domain=maybe", False),
        ("/api/v1/cameras?active_only=", False),
        ("/api/v1/cameras?limit=3", False),
        ("/api/v1/cameras?force_domain=%74rue", False),
        (status + "?active_only=true", False),
        ("/api/v1/cameras/0/status", False),
        ("/api/v1/cameras/007/status", False),
        ("/api/v1/cameras/99999999999999999999/status", False),
        ("/api/v1/cameras/lobby/status", False),
    ]


def _same(a: Any, b: Any) -> None:
    assert a.status == b.status, (a.status, b.status, a.body[:300], b.body[:300])
    assert a.headers.get("content-type") == b.headers.get("content-type")
    for name in ("x-edge-path", "x-edge-reason"):
        assert a.headers.get(name) == b.headers.get(name), name
    assert a.json == b.json


def test_both_paths_answer_alike(live: Live, client: ApiClient, reference: ApiClient) -> None:
    lobby = live.demo["Lobby"]
    inline = live.api.inline
    for path, fast in _cases(lobby):
        before = inline.answered
        ours = client.request("GET", path)
        theirs = reference.request("GET", path)
        assert (inline.answered - before == 1) is fast, path
        _same(ours, theirs)


def test_a_body_on_a_get_goes_to_fastapi(live: Live, client: ApiClient, reference: ApiClient) -> None:
    inline = live.api.inline
    before = inline.answered
    ours = client.request("GET", "/api/v1/cameras", body={"x": 1})
    theirs = reference.request("GET", "/api/v1/cameras", body={"x": 1})
    assert inline.answered == before
    assert ours.status == 422
    _same(ours, theirs)


def test_answers_follow_the_cameras(live: Live, client: ApiClient) -> None:
    """Statuses served from their bytes still follow a camera that starts."""
    cam_id = next(iter(live.demo.values()))
    first = client.request("GET", f"/api/v1/cameras/{cam_id}/status").json["data"]
    assert first["state"] == "stopped"
    assert client.request("POST", f"/api/v1/cameras/{cam_id}/start").status == 200
    try:
        from tests.api.conftest import wait_for

        running = wait_for(lambda: (d := client.request("GET", f"/api/v1/cameras/{cam_id}/status").json["data"])
                           ["state"] == "running" and d, what="the camera running through the fast path")
        assert running["camera_id"] == cam_id
        listed = {s["camera_id"]: s for s in client.request("GET", "/api/v1/cameras").json["data"]["items"]}
        assert listed[cam_id]["state"] == "running"
    finally:
        client.request("POST", f"/api/v1/cameras/{cam_id}/stop")


def test_answers_are_counted_under_their_route(live: Live, client: ApiClient) -> None:
    def count() -> float:
        text = client.request("GET", "/api/v1/monitoring/metrics", headers={"Accept": "text/plain"}).body.decode()
        for line in text.splitlines():
            if line.startswith('edge_station_api_requests_total{') and 'route="list_status"' in line \
                    and 'status="200"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    for _ in range(3):
        assert client.request("GET", "/api/v1/cameras").status == 200
    assert count() - before == 3


def test_encoder_keeps_bytes_per_object() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class S:
        camera_id: int
        state: str

    enc = StatusEncoder(max_entries=2)
    a = S(1, "running")
    assert enc.status(a) is enc.status(a)
    assert enc.status(S(1, "running")) == enc.status(a)  # equal value, equal bytes
    b = S(2, "stopped")
    assert enc.status(b) == b'{"camera_id":2,"state":"stopped"}'
    c = S(3, "failed")
    assert enc.status(c) == b'{"camera_id":3,"state":"failed"}'  # over the cap: the memo starts again
    assert len(enc._memo) <= 2
