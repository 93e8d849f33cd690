"""``verify --live``: the verification scenario run against the *running* station, through its API.

The same scripted calls of all thirteen operations, valid and invalid, run once
forced to the legacy path and once forced to the domain path; the answers are
normalised by the rules of :mod:`app.rollout.normalize` (its ``live`` profile) and compared. It
uses one camera of the station (``camera``; default: the first one) and puts
that camera back as it found it (active flag, running or not); the alert rules
it creates are disabled while they exist and deleted at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.api.client import ApiClient, ClientError, Response
from app.rollout.gate_record import GateRecorder
from app.rollout.normalize import normalize_answer, same_answer

MISSING_ID = 987_654_321
PATHS = ("legacy", "domain")


class LiveVerifyError(Exception):
    """The scenario cannot run against this station (no camera, station unreachable, ...)."""


@dataclass(frozen=True)
class StepResult:
    step: str
    op: str
    outcome: str  # "ok" or an error code, or "failed: ..." for an unexpected answer
    served_by: str | None
    normalized: Any = None


@dataclass
class LiveReport:
    camera_id: int
    results: dict[str, list[StepResult]] = field(default_factory=dict)  # path -> steps

    @property
    def rows(self) -> list[tuple[str, str, str, str, bool]]:
        """(step, op, legacy outcome, domain outcome, match)."""
        out = []
        legacy, domain = self.results.get("legacy", []), self.results.get("domain", [])
        for a, b in zip(legacy, domain, strict=False):
            same = a.outcome == b.outcome and same_answer(a.normalized, b.normalized)
            out.append((a.step, a.op, a.outcome, b.outcome, same))
        return out

    @property
    def mismatches(self) -> int:
        return sum(1 for r in self.rows if not r[4])

    @property
    def failures(self) -> int:
        """Steps that gave an unexpected answer, or ran on a path other than the one forced."""
        n = 0
        for path, steps in self.results.items():
            n += sum(1 for s in steps if s.outcome.startswith("failed") or (s.served_by not in (None, path)))
        return n

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.failures == 0 and len(self.rows) > 0

    def record_to(self, recorder: GateRecorder, *, actor: str) -> None:
        """Record the result for the stage gate (``rollout.last_verify``, audited), as ``verify`` does."""
        recorder.record_verification(self.passed, self.mismatches, self.failures, actor=actor,
                                     detail={"live": True, "camera_id": self.camera_id, "steps": len(self.rows)})

    def table(self) -> str:
        w = max((len(r[0]) for r in self.rows), default=4)
        lines = [f"{'step':<{w}}  {'legacy':<16} {'domain':<16} result"]
        for step, _op, a, b, same in self.rows:
            lines.append(f"{step:<{w}}  {a:<16} {b:<16} {'same' if same else 'MISMATCH'}")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {len(self.rows)} steps per path, {self.mismatches} mismatches, "
                     f"{self.failures} failures (camera {self.camera_id})")
        return "\n".join(lines)


class _Runner:
    def __init__(self, client: ApiClient, path: str, camera_id: int, tag: str, log: Callable[[str], None]):
        self.c, self.path, self.cam, self.tag, self.log = client, path, camera_id, tag, log
        self.steps: list[StepResult] = []
        self.rule_ids: list[int] = []

    def call(self, step: str, op: str, method: str, url: str, *, expect: str, query: dict[str, Any] | None = None,
             body: Any = None) -> Response:
        r = self.c.op(method, url, force=self.path, query=query, body=body)
        try:
            payload = r.json
        except ClientError as e:
            self.steps.append(StepResult(step, op, f"failed: {e}"[:80], None))
            return r
        route = payload.get("route") or {}
        outcome = "ok" if r.ok else (payload.get("error") or {}).get("code", f"http {r.status}")
        normalized = normalize_answer(op, payload["data"], live=True) if r.ok else None
        if outcome != expect:
            msg = (payload.get("error") or {}).get("message", "")
            self.log(f"  {self.path}: {step}: expected {expect}, got {outcome} {msg}")
            outcome = f"failed: {outcome}"
        self.steps.append(StepResult(step, op, outcome, route.get("served_by"), normalized))
        return r

    def wait_state(self, states: tuple[str, ...], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            r = self.c.camera("status", self.cam, force=self.path)
            state = r.data["state"] if r.ok else ""
            if state in states:
                return state
            time.sleep(0.2)
        return state

    def wait_snapshot(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.c.camera("snapshot", self.cam, force=self.path)
            if r.ok or (r.error or {}).get("code") not in ("unavailable", "invalid_state"):
                return
            time.sleep(0.2)

    def run(self) -> list[StepResult]:
        cam, c = self.cam, f"/cameras/{self.cam}"
        missing = f"/cameras/{MISSING_ID}"
        self.call("list", "list_status", "GET", "/cameras", expect="ok")
        self.call("status", "camera_status", "GET", f"{c}/status", expect="ok")
        self.call("status of a missing camera", "camera_status", "GET", f"{missing}/status", expect="not_found")
        self.call("deactivate", "deactivate_camera", "POST", f"{c}/deactivate", expect="ok")
        self.call("start while inactive", "start_camera", "POST", f"{c}/start", expect="invalid_state")
        self.call("activate", "activate_camera", "POST", f"{c}/activate", expect="ok")
        self.call("activate a missing camera", "activate_camera", "POST", f"{missing}/activate", expect="not_found")
        self.call("stop while stopped", "stop_camera", "POST", f"{c}/stop", expect="invalid_state")
        self.call("start", "start_camera", "POST", f"{c}/start", expect="ok")
        self.call("start while started", "start_camera", "POST", f"{c}/start", expect="invalid_state")
        self.wait_state(("running",))
        self.wait_snapshot()
        self.call("snapshot", "camera_snapshot", "GET", f"{c}/snapshot", expect="ok")
        self.call("logs", "camera_logs", "GET", f"{c}/logs", expect="ok", query={"limit": 50})
        self.call("logs with a bad limit", "camera_logs", "GET", f"{c}/logs", expect="validation",
                  query={"limit": -1})
        self.call("stats", "camera_stats", "GET", f"{c}/stats", expect="ok", query={"window_s": 10})
        self.call("stats of a missing camera", "camera_stats", "GET", f"{missing}/stats", expect="not_found")
        self.call("probe", "probe_camera", "POST", f"{c}/probe", expect="ok", query={"timeout": 10})
        self.call("probe with a bad timeout", "probe_camera", "POST", f"{c}/probe", expect="validation",
                  query={"timeout": 0})
        self.call("restart", "restart_camera", "POST", f"{c}/restart", expect="ok")
        self.wait_state(("running",))
        self.call("stop", "stop_camera", "POST", f"{c}/stop", expect="ok")
        self.call("snapshot while stopped", "camera_snapshot", "GET", f"{c}/snapshot", expect="invalid_state")
        name = f"verify-live-{self.tag}-{self.path}"
        rule = {"name": name, "metric": "fps", "comparator": "<", "threshold": 1, "enabled": False,
                "target": "camera", "camera_id": cam, "description": "made by verify --live; deleted at its end"}
        r = self.call("create rule", "create_rule", "POST", "/alerts/rules", body=rule, expect="ok")
        rule_id = r.data["rule"]["id"] if r.ok else MISSING_ID
        if r.ok:
            self.rule_ids.append(rule_id)
        self.call("create a duplicate rule", "create_rule", "POST", "/alerts/rules", body=rule, expect="conflict")
        # a rule the schema accepts and the operation refuses (the metric does not apply to one camera)
        self.call("create an invalid rule", "create_rule", "POST", "/alerts/rules",
                  body={**rule, "name": name + "-bad", "metric": "memory_percent"}, expect="validation")
        self.call("update rule", "update_rule", "PUT", f"/alerts/rules/{rule_id}",
                  body={"changes": {"threshold": 2}, "expected_version": 1}, expect="ok")
        self.call("update rule at an old version", "update_rule", "PUT", f"/alerts/rules/{rule_id}",
                  body={"changes": {"threshold": 3}, "expected_version": 1}, expect="conflict")
        self.call("update a missing rule", "update_rule", "PUT", f"/alerts/rules/{MISSING_ID}",
                  body={"changes": {"threshold": 3}}, expect="not_found")
        return self.steps


def run_live_verification(client: ApiClient, camera: int | str | None = None, *,
                          log: Callable[[str], None] = lambda s: None) -> LiveReport:
    """Run the scenario on both paths against the station behind ``client``; restores the camera."""
    rollout = client.request("GET", "/api/v1/rollout")
    if rollout.ok and rollout.data.get("settings", {}).get("latched"):
        raise LiveVerifyError("the rollout is rolled back (latched): every call, forced or not, is served by "
                              "legacy, so the domain path cannot be verified; turn the domain toggle on to clear "
                              "the latch first")
    listing = client.cameras(query={})
    if not listing.ok:
        raise LiveVerifyError(f"cannot list the station's cameras: HTTP {listing.status} {listing.body[:200]!r}")
    items = listing.data["items"]
    if not items:
        raise LiveVerifyError("the station has no camera to verify with")
    if camera is None:
        chosen = items[0]
    else:
        found = [i for i in items if str(i["camera_id"]) == str(camera) or i["name"].lower() == str(camera).lower()]
        if not found:
            raise LiveVerifyError(f"the station has no camera {camera!r}")
        chosen = found[0]
    cam = int(chosen["camera_id"])
    was_active, was_live = chosen["active"], chosen["state"] not in ("stopped", "inactive", "failed")
    report = LiveReport(cam)
    tag = uuid.uuid4().hex[:8]
    rule_ids: list[int] = []
    try:
        for path in PATHS:
            runner = _Runner(client, path, cam, tag, log)
            try:
                report.results[path] = runner.run()
            finally:
                rule_ids += runner.rule_ids
    finally:
        _restore(client, cam, was_active, was_live)
        for rid in rule_ids:
            client.request("DELETE", f"/api/v1/alerts/rules/{rid}")
    return report


def _restore(client: ApiClient, cam: int, was_active: bool, was_live: bool) -> None:
    st = client.camera("status", cam)
    if not st.ok:
        return
    state, active = st.data["state"], st.data["active"]
    if not was_active:
        if active:
            client.camera("deactivate", cam)
        return
    if not active:
        client.camera("activate", cam)
    if was_live and state in ("stopped", "failed", "inactive"):
        client.camera("start", cam)
    elif not was_live and state not in ("stopped", "inactive"):
        client.camera("stop", cam)
