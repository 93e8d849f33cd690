"""``edge-station verify``: the same scripted scenario on legacy and on domain, compared.

The scenario covers all thirteen operations, valid and invalid calls, on a scratch
station built by a factory the caller passes (temporary database, synthetic
``test://`` cameras, a real supervisor). It runs twice, each time on a fresh
scratch station and through a :class:`~app.rollout.router.Router` forced to one
path (forced calls never fall back, so a domain failure shows as one). Results
are normalized (:mod:`app.rollout.normalize`) and compared step by step; error
answers are compared by code.

Long work reports and can stop: ``on_step`` is called with a :class:`StepProgress` before each
step (step *n* of the 2 × ``len(SCENARIO)`` steps of both runs); ``cancelled()`` is asked before
each step (and while waiting for frames), and when it answers true the run stops there with
:class:`~app.rollout.errors.VerificationCancelled`: no report, so nothing is recorded for a gate.

The factory: ``make_station_parts()`` returns a context manager that yields a
:class:`ScratchStation` and tears it all down (workers stopped, files removed)
on exit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from app.domain import AlertRule, Comparator
from app.domain.errors import OperationError
from app.domain.operations import (
    OPERATIONS,
    CameraRef,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    StationOperations,
    StatsRequest,
    StopCamera,
    UpdateRule,
)
from app.rollout.decision import Decision, Force
from app.rollout.errors import VerificationCancelled, VerificationError
from app.rollout.gate_record import GateRecorder, verify_and_record
from app.rollout.metrics import DOMAIN, LEGACY
from app.rollout.normalize import differences, is_failure, normalize, same_answer, summarize
from app.rollout.router import Router


@dataclass
class ScratchStation:
    """What the scenario needs from a scratch station.

    ``active_camera``: an active camera with a synthetic source, not running yet;
    ``inactive_camera``: an inactive one; ``missing_camera``: an id no camera has; ``store``:
    its store, for a router with settings and audit (``rollout rehearse``).
    """

    legacy: StationOperations
    domain: StationOperations
    active_camera: int
    inactive_camera: int
    missing_camera: int = 999_999
    store: Any = None  # the scratch station's store (``rollout rehearse`` routes through it)


StationFactory = Callable[[], AbstractContextManager[ScratchStation]]

RULE_NAME = "verify: low fps"


def _rule(name: str = RULE_NAME, metric: str = "fps") -> AlertRule:
    return AlertRule(name=name, metric=metric, comparator=Comparator.LT, threshold=5.0,
                     description="created by edge-station verify")


@dataclass(frozen=True)
class Step:
    op: str
    case: str
    build: Callable[[ScratchStation, dict[str, Any]], Any]
    wait_for_frames: bool = False  # wait for the active camera's first frames first


def _s(op: str, case: str, build: Callable[[ScratchStation, dict[str, Any]], Any], **kw: Any) -> Step:
    return Step(op, case, build, **kw)


SCENARIO: tuple[Step, ...] = (
    _s("list_status", "all cameras", lambda st, c: ListStatus()),
    _s("camera_status", "stopped camera", lambda st, c: CameraRef(st.active_camera)),
    _s("camera_status", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("start_camera", "inactive camera", lambda st, c: CameraRef(st.inactive_camera)),
    _s("start_camera", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("start_camera", "active camera", lambda st, c: CameraRef(st.active_camera)),
    _s("camera_status", "running camera", lambda st, c: CameraRef(st.active_camera), wait_for_frames=True),
    _s("list_status", "active only", lambda st, c: ListStatus(active_only=True)),
    _s("camera_snapshot", "running camera", lambda st, c: CameraRef(st.active_camera)),
    _s("camera_snapshot", "inactive camera", lambda st, c: CameraRef(st.inactive_camera)),
    _s("camera_snapshot", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("camera_logs", "running camera", lambda st, c: LogsRequest(st.active_camera, limit=20)),
    _s("camera_logs", "unknown camera", lambda st, c: LogsRequest(st.missing_camera)),
    _s("camera_stats", "running camera", lambda st, c: StatsRequest(st.active_camera, window_s=5.0)),
    _s("camera_stats", "unknown camera", lambda st, c: StatsRequest(st.missing_camera)),
    _s("probe_camera", "synthetic source", lambda st, c: ProbeRequest(st.active_camera, timeout=15.0)),
    _s("probe_camera", "unknown camera", lambda st, c: ProbeRequest(st.missing_camera)),
    _s("restart_camera", "running camera", lambda st, c: CameraRef(st.active_camera)),
    _s("restart_camera", "inactive camera", lambda st, c: CameraRef(st.inactive_camera)),
    _s("restart_camera", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("stop_camera", "running camera", lambda st, c: StopCamera(st.active_camera)),
    _s("stop_camera", "unknown camera", lambda st, c: StopCamera(st.missing_camera)),
    _s("deactivate_camera", "stopped camera", lambda st, c: CameraRef(st.active_camera)),
    _s("camera_status", "deactivated camera", lambda st, c: CameraRef(st.active_camera)),
    _s("start_camera", "deactivated camera", lambda st, c: CameraRef(st.active_camera)),
    _s("deactivate_camera", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("activate_camera", "deactivated camera", lambda st, c: CameraRef(st.active_camera)),
    _s("activate_camera", "unknown camera", lambda st, c: CameraRef(st.missing_camera)),
    _s("create_rule", "valid rule", lambda st, c: CreateRule(_rule())),
    _s("create_rule", "unknown metric", lambda st, c: CreateRule(_rule("verify: bad", metric="no_such"))),
    _s("create_rule", "duplicate name", lambda st, c: CreateRule(_rule())),
    _s("update_rule", "valid change", lambda st, c: UpdateRule(c.get("rule_id", 1), {"threshold": 3.0})),
    _s("update_rule", "stale version", lambda st, c: UpdateRule(c.get("rule_id", 1), {"threshold": 4.0},
                                                                 expected_version=1)),
    _s("update_rule", "invalid value", lambda st, c: UpdateRule(c.get("rule_id", 1), {"threshold": "high"})),
    _s("update_rule", "unknown rule", lambda st, c: UpdateRule(987_654, {"threshold": 1.0})),
)

assert {s.op for s in SCENARIO} == set(OPERATIONS), "the scenario must cover all thirteen operations"


TOTAL_STEPS = 2 * len(SCENARIO)  # the scenario on the legacy path, then on the domain path


@dataclass(frozen=True)
class StepProgress:
    """The step about to run: ``number`` of ``total`` (1-based, both runs counted), its path, operation, case."""

    number: int
    total: int
    path: str
    op: str
    case: str

    @property
    def done(self) -> int:
        return self.number - 1

    def text(self) -> str:
        return f"step {self.number} of {self.total}: {self.path} {self.op} ({self.case})"


OnStep = Callable[[StepProgress], None]
Cancelled = Callable[[], bool]


def _check_cancelled(cancelled: Cancelled | None, number: int, *, waiting: bool = False) -> None:
    if cancelled is not None and cancelled():
        where = (f"in step {number} of {TOTAL_STEPS} (waiting for the first frames)" if waiting
                 else f"before step {number} of {TOTAL_STEPS}")
        raise VerificationCancelled(f"verification cancelled {where}; nothing was recorded")


@dataclass(frozen=True)
class Row:
    n: int
    op: str
    case: str
    legacy: Any  # normalized outcome
    domain: Any
    match: bool
    diff: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return is_failure(self.legacy) or is_failure(self.domain)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.n, "operation": self.op, "case": self.case,
                "legacy": summarize(self.legacy), "domain": summarize(self.domain), "match": self.match,
                "diff": list(self.diff), "legacy_result": self.legacy, "domain_result": self.domain}


@dataclass
class VerifyReport:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a run that could not happen at all
    elapsed_s: float = 0.0

    @property
    def mismatches(self) -> list[Row]:
        return [r for r in self.rows if not r.match]

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    @property
    def passed(self) -> bool:
        return bool(self.rows) and not self.errors and not self.mismatches and not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "steps": len(self.rows), "elapsed_s": round(self.elapsed_s, 2),
                "mismatches": [f"{r.n}:{r.op} ({r.case})" for r in self.mismatches],
                "failures": [f"{r.n}:{r.op} ({r.case})" for r in self.failures],
                "errors": self.errors, "rows": [r.as_dict() for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def record_to(self, recorder: GateRecorder, *, actor: str) -> None:
        """Record the result for the stage gate (``rollout.last_verify``, audited)."""
        d = self.as_dict()
        recorder.record_verification(self.passed, len(self.mismatches), len(self.failures), actor=actor,
                                     detail={"mismatches": d["mismatches"], "failures": d["failures"],
                                             "errors": self.errors})

    def table(self) -> str:
        heads = ("#", "operation", "case", "legacy", "domain", "match")
        body = [(str(r.n), r.op, r.case, summarize(r.legacy, 40), summarize(r.domain, 40),
                 "yes" if r.match else "NO") for r in self.rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(heads)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
        for r in self.mismatches:
            lines.append(f"MISMATCH step {r.n} {r.op} ({r.case}): differs in {', '.join(r.diff) or 'outcome'}")
        for e in self.errors:
            lines.append(f"ERROR {e}")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"verify {verdict}: {len(self.rows)} steps, {len(self.mismatches)} mismatches, "
                     f"{len(self.failures)} failures ({self.elapsed_s:.1f} s)")
        return "\n".join(lines)


def _wait_for_frames(router: Router, cam: int, path: str, timeout: float, cancelled: Cancelled | None = None,
                     number: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_cancelled(cancelled, number, waiting=True)
        try:
            st = router.call("camera_status", CameraRef(cam), force=path)
            if st.last_frame_age is not None or (st.fps or 0) > 0:
                return
        except Exception:
            pass
        time.sleep(0.1)


def _run_path(factory: StationFactory, path: str, frame_timeout: float, *, first: int = 1,
              on_step: OnStep | None = None, cancelled: Cancelled | None = None) -> list[Any]:
    outcomes: list[Any] = []
    _check_cancelled(cancelled, first)
    with factory() as station:
        router = Router(station.legacy, station.domain, None, env={})
        try:
            ctx: dict[str, Any] = {}
            for i, step in enumerate(SCENARIO):
                number = first + i
                _check_cancelled(cancelled, number)
                if on_step is not None:
                    on_step(StepProgress(number, TOTAL_STEPS, path, step.op, step.case))
                if step.wait_for_frames:
                    _wait_for_frames(router, station.active_camera, path, frame_timeout, cancelled, number)
                decision: Decision | None
                try:
                    req = step.build(station, ctx)
                    res, decision = router.call_with_decision(step.op, req, force=Force(path), actor="verify")
                    out = normalize(res)
                    if step.op == "create_rule" and "rule_id" not in ctx:
                        ctx["rule_id"] = res.rule.id
                except OperationError as e:
                    decision = router.last_decision
                    out = normalize(e)
                except Exception as e:  # a failure of the path: reported, the scenario goes on
                    decision = router.last_decision
                    out = {"failure": f"{type(e).__name__}: {e}"[:300]}
                if decision is not None and decision.served_by != path:
                    out = {"failure": f"served by {decision.served_by}, not {path}"}
                outcomes.append(out)
        finally:
            router.close()
    return outcomes


def run_verification(make_station_parts: StationFactory, *, frame_timeout: float = 20.0,
                     progress: Callable[[str], None] | None = None, on_step: OnStep | None = None,
                     cancelled: Cancelled | None = None) -> VerifyReport:
    """Run the scenario forced to legacy, then forced to domain, and compare (never raises for a
    mismatch; :class:`VerificationError` only if nothing could run, :class:`VerificationCancelled`
    when ``cancelled()`` answered true before a step)."""
    t0 = time.monotonic()
    report = VerifyReport()
    runs: dict[str, list[Any]] = {}
    for k, path in enumerate((LEGACY, DOMAIN)):
        if progress:
            progress(f"running the scenario on the {path} path")
        try:
            runs[path] = _run_path(make_station_parts, path, frame_timeout, first=1 + k * len(SCENARIO),
                                   on_step=on_step, cancelled=cancelled)
        except VerificationCancelled:
            raise
        except Exception as e:
            report.errors.append(f"the {path} run could not complete: {type(e).__name__}: {e}")
    if not runs:
        raise VerificationError("; ".join(report.errors))
    for i, step in enumerate(SCENARIO):
        a = runs.get(LEGACY, [])
        b = runs.get(DOMAIN, [])
        lg = a[i] if i < len(a) else {"failure": "not run"}
        dm = b[i] if i < len(b) else {"failure": "not run"}
        ok = same_answer(lg, dm)
        report.rows.append(Row(i + 1, step.op, step.case, lg, dm, ok, tuple(differences(lg, dm))))
    report.elapsed_s = time.monotonic() - t0
    return report


def verify_scratch_and_record(make_station_parts: StationFactory, recorder: GateRecorder | None, *, actor: str,
                              show: Callable[[VerifyReport], None] | None = None, frame_timeout: float = 20.0,
                              progress: Callable[[str], None] | None = None, on_step: OnStep | None = None,
                              cancelled: Cancelled | None = None) -> VerifyReport:
    """:func:`run_verification`, then its result recorded for the stage gate (nothing when cancelled)."""
    return verify_and_record(lambda: run_verification(make_station_parts, frame_timeout=frame_timeout,
                                                      progress=progress, on_step=on_step, cancelled=cancelled),
                             recorder, actor=actor, show=show)


def iter_ops(report: VerifyReport) -> Iterator[str]:
    """The operations the report covers (for checks that all thirteen ran)."""
    seen: set[str] = set()
    for r in report.rows:
        if r.op not in seen:
            seen.add(r.op)
            yield r.op
