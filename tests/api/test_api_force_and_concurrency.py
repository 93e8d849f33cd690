"""The force parameter reaches the router and shows in the answer; 50 concurrent clients lose nothing."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psutil

from tests.api.conftest import CheckedClient, wait_for

CLIENTS = 50


def _audit(live, op, since_id=0):
    live.router.audit.flush()
    with live.station.parts().store.uow() as uow:
        return [e for e in uow.audit.recent(limit=5000) if e.op == op and (e.id or 0) > since_id]


def test_force_is_honoured_and_visible(client, live):
    cam = live.demo["Server room"]
    for force, path, reason in (("domain", "domain", "force_domain"), ("legacy", "legacy", "force_legacy")):
        r = client.camera("status", cam, force=force)
        assert r.status == 200
        assert r.route == {**r.route, "operation": "camera_status", "path": path, "served_by": path,
                           "reason": reason, "forced": True}
        assert r.headers["x-edge-path"] == path and r.headers["x-edge-reason"] == reason
        # errors say how they were routed too
        e = client.camera("stop", cam, force=force)
        assert e.status == 409 and e.route["path"] == path and e.route["reason"] == reason
    # without force the router decides: the toggle is off, so legacy, for the reason "domain_off"
    r = client.camera("status", cam)
    assert r.route["path"] == "legacy" and r.route["reason"] == "domain_off" and not r.route["forced"]
    # at 100 % every key goes to the domain path; force_domain=false still wins
    assert client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 100,
                                                          "override_reason": "test setup"}).status == 200
    wait_for(lambda: client.camera("status", cam).route["path"] == "domain", what="the new percent")
    assert client.camera("status", cam).route["reason"] == "percent_in"
    assert client.camera("status", cam, force="legacy").route["path"] == "legacy"
    # the router's audit log has the forced calls with their paths and the API as the actor
    ops = _audit(live, "stop_camera")
    assert {(e.path, e.reason, e.actor) for e in ops} >= {("domain", "force_domain", "api"),
                                                          ("legacy", "force_legacy", "api")}


def test_fifty_clients_create_rules_without_loss_or_duplicate(live):
    tag = uuid.uuid4().hex[:6]
    names = [f"c{tag}-{i}" for i in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def create(i: int) -> tuple[int, int | None]:
        c = CheckedClient(live.api.url, live.api.token)
        try:
            start.wait(timeout=20)
            body = {"name": names[i], "metric": "fps", "comparator": "<", "threshold": i}
            r = c.request("POST", "/api/v1/alerts/rules", body=body,
                          query={"force_domain": str(i % 2 == 0).lower()})
            return r.status, (r.data["rule"]["id"] if r.ok else None)
        finally:
            c.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(create, range(CLIENTS)))
    assert Counter(s for s, _ in results) == {201: CLIENTS}, results
    ids = [i for _, i in results]
    assert len(set(ids)) == CLIENTS
    with live.station.parts().store.uow() as uow:
        stored = {r.name: r for r in uow.rules.list() if r.name.startswith(f"c{tag}-")}
    assert set(stored) == set(names)
    assert all(stored[f"c{tag}-{i}"].threshold == i for i in range(CLIENTS))
    audited = [e for e in _audit(live, "create_rule") if e.key.startswith(f"rule:c{tag}-")]
    assert sorted(e.key for e in audited) == sorted(f"rule:{n}" for n in names)  # each call once
    assert Counter(e.path for e in audited) == {"domain": CLIENTS // 2, "legacy": CLIENTS // 2}


def test_fifty_clients_race_on_one_rule_version(live, client):
    rid = client.request("POST", "/api/v1/alerts/rules",
                         body={"name": f"race {uuid.uuid4().hex[:6]}", "metric": "fps", "comparator": "<",
                               "threshold": 1}).data["rule"]["id"]
    start = threading.Barrier(CLIENTS)

    def update(i: int) -> int:
        c = CheckedClient(live.api.url, live.api.token)
        try:
            start.wait(timeout=20)
            r = c.request("PUT", f"/api/v1/alerts/rules/{rid}",
                          body={"changes": {"threshold": 100 + i}, "expected_version": 1},
                          query={"force_domain": str(i % 2 == 0).lower()})
            return r.status
        finally:
            c.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = Counter(pool.map(update, range(CLIENTS)))
    assert statuses == {200: 1, 409: CLIENTS - 1}, statuses  # optimistic concurrency: exactly one wins
    with live.station.parts().store.uow() as uow:
        rule = uow.rules.get(rid)
    assert rule.version == 2 and 100 <= rule.threshold < 100 + CLIENTS


def test_fifty_clients_start_one_camera_once(live, client):
    cam = live.demo["Loading dock"]
    start = threading.Barrier(CLIENTS)

    def go(i: int) -> tuple[int, str | None]:
        c = CheckedClient(live.api.url, live.api.token)
        try:
            start.wait(timeout=20)
            r = c.camera("start", cam, force="domain" if i % 2 else "legacy")
            return r.status, (r.error or {}).get("code")
        finally:
            c.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = Counter(pool.map(go, range(CLIENTS)))
    assert results == {(200, None): 1, (409, "invalid_state"): CLIENTS - 1}, results
    pid = wait_for(lambda: client.camera("status", cam).data["pid"], what="the worker")
    workers = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE
               and "app.worker" in " ".join(p.cmdline()) and "run" in p.cmdline()]  # not the worker launcher
    assert [p.pid for p in workers] == [pid]  # one worker, not two


def test_rules_made_through_the_api_reach_the_alert_engine(client, live):
    """The alert engine evaluates what the API wrote, without a restart (the station notices the commit)."""
    name = f"engine {uuid.uuid4().hex[:6]}"
    r = client.request("POST", "/api/v1/alerts/rules",
                       body={"name": name, "metric": "fps", "comparator": "<", "threshold": 3})
    assert r.status == 201
    rid = r.data["rule"]["id"]

    def engine_rule():
        return next((x for x in live.station.parts().alerts.rules() if x.id == rid), None)

    assert wait_for(engine_rule, timeout=10, what="the alert engine to load the new rule").threshold == 3
    assert client.request("PUT", f"/api/v1/alerts/rules/{rid}", body={"changes": {"threshold": 1.5}}).status == 200
    wait_for(lambda: engine_rule().threshold == 1.5, timeout=10, what="the alert engine to load the change")


def test_rollout_document_counts_both_paths(client, live):
    cam = live.demo["Server room"]
    before = client.request("GET", "/api/v1/rollout").data["lifetime"].get("camera_status", {})
    for force in ("domain", "legacy", "legacy"):
        assert client.camera("status", cam, force=force).status == 200
    after = client.request("GET", "/api/v1/rollout").data["lifetime"]["camera_status"]
    for path, n in (("domain", 1), ("legacy", 2)):
        assert after[path]["calls"] - before.get(path, {}).get("calls", 0) == n, (path, before, after)
