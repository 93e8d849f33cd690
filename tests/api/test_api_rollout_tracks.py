"""The rollout's two tracks over the API: per-track changes, the latch and its resume, problem reports."""

from __future__ import annotations


def test_a_change_names_its_track_and_leaves_the_other_alone(client, live):
    r = client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 10, "track": "rules",
                                                        "override_reason": "api track test"})
    assert r.status == 200, r.json
    assert {t: d["settings"]["percent"] for t, d in r.data["tracks"].items()} == {"rules": 10, "cameras": 0}
    assert live.router.settings.track("cameras").percent == 0
    # raising a share without an override goes through the gate, which holds on a fresh station
    r = client.request("PUT", "/api/v1/rollout", body={"percent": 25, "track": "rules"})
    assert r.status == 409 and r.error["code"] == "invalid_state"
    assert live.router.settings.track("rules").percent == 10
    r = client.request("PUT", "/api/v1/rollout", body={"percent": 10, "track": "lobby"})
    assert r.status == 422 and r.error["code"] == "validation"


def test_a_rollback_of_one_track_latches_only_it_and_only_a_resume_clears_it(client, live):
    client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 10, "override_reason": "setup"})
    r = client.request("PUT", "/api/v1/rollout", body={"rollback": True, "track": "cameras", "reason": "api test"})
    assert r.status == 200, r.json
    assert r.data["tracks"]["cameras"]["settings"]["latched"] is True
    assert r.data["tracks"]["rules"]["settings"]["latched"] is False
    # a resume needs its reason, and something to resume
    r = client.request("POST", "/api/v1/rollout/resume", body={"track": "rules", "reason": "nothing latched"})
    assert r.status == 409 and r.error["code"] == "invalid_state"
    assert client.request("POST", "/api/v1/rollout/resume", body={"track": "cameras"}).status == 422
    r = client.request("POST", "/api/v1/rollout/resume", body={"track": "cameras", "reason": "fixed the camera"})
    assert r.status == 200, r.json
    cameras = live.router.settings.track("cameras")
    assert not cameras.latched and cameras.percent == 0
    with live.station.parts().store.uow() as uow:
        ops = [(e.op, e.actor) for e in uow.audit.recent(limit=50)]
    assert ("rollout.resume", "api") in ops


def test_a_problem_report_holds_the_gate_until_it_is_resolved(client, live):
    r = client.request("POST", "/api/v1/rollout/reports",
                       body={"track": "rules", "text": "a new rule did not fire", "operator": "desk"})
    assert r.status == 201, r.json
    rep = r.data
    assert rep["open"] is True and rep["track"] == "rules" and rep["operator"] == "desk"
    gate = live.station.rollout_gate("rules")
    assert any("open problem report" in reason for reason in gate.reasons)
    r = client.request("GET", "/api/v1/rollout/reports", query={"track": "rules", "open_only": "true"})
    assert r.status == 200 and [x["id"] for x in r.data] == [rep["id"]]
    assert client.request("POST", "/api/v1/rollout/reports/999999/resolve",
                          body={"note": "n/a"}).status == 404
    r = client.request("POST", f"/api/v1/rollout/reports/{rep['id']}/resolve",
                       body={"note": "the rule was disabled", "by": "desk"})
    assert r.status == 200 and r.data["open"] is False and r.data["resolution"] == "the rule was disabled"
    assert client.request("POST", f"/api/v1/rollout/reports/{rep['id']}/resolve",
                          body={"note": "again"}).status == 409
    assert not any("open problem report" in reason for reason in live.station.rollout_gate("rules").reasons)
    assert client.request("POST", "/api/v1/rollout/reports",
                          body={"track": "all", "text": "x"}).status == 422


def test_rule_reads_follow_the_rules_track(client, live):
    r = client.request("GET", "/api/v1/alerts/rules")
    assert r.status == 200 and r.json["route"]["path"] == "legacy"
    client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 100, "track": "rules",
                                                    "override_reason": "api test"})
    r = client.request("GET", "/api/v1/alerts/rules")
    assert r.status == 200 and r.json["route"]["path"] == "domain"
    r = client.request("GET", "/api/v1/alerts/rules", query={"force_domain": "false"})
    assert r.json["route"]["path"] == "legacy"


def test_after_a_rollback_of_the_rules_track_a_forced_rule_read_is_served_by_legacy(client, live):
    """The latch wins over force on the rule list too: no domain code reads the rules after a rollback."""
    client.request("PUT", "/api/v1/rollout", body={"use_domain": True, "percent": 100, "track": "rules",
                                                    "override_reason": "api test"})
    assert client.request("GET", "/api/v1/alerts/rules", query={"force_domain": "true"}).json["route"]["path"] \
        == "domain"
    r = client.request("PUT", "/api/v1/rollout", body={"rollback": True, "track": "rules", "reason": "api test"})
    assert r.status == 200, r.json
    for force in ("true", "false"):
        r = client.request("GET", "/api/v1/alerts/rules", query={"force_domain": force})
        assert r.status == 200 and r.data["items"], r.json
        assert (r.json["route"]["path"], r.json["route"]["reason"]) == ("legacy", "rollback_latch"), r.json["route"]
    r = client.request("GET", "/api/v1/alerts/rules")
    assert (r.json["route"]["path"], r.json["route"]["reason"]) == ("legacy", "rollback_latch")
