"""``edge-station rollout rehearse``: a rollback of a track, rehearsed and verified on a scratch station.

Decision point 2 of the plan asks that rollback has been verified before the camera
operations start. This module proves it on a throwaway station (the same factory as
``edge-station verify``: temporary database, synthetic cameras, real workers):

1. the track is put at 100 % (on the scratch station only) with the shadow comparison
   sampling every read, and the verify scenario's calls of the track's operations are
   made **routed** (no force): the domain path must serve them;
2. the track is rolled back (latched), and the same calls are made again, routed and
   **forced to the domain path**, with the shadow still sampling every read;
3. verified: the domain implementation was not called once after the latch (counted on
   the implementation itself, so shadow comparisons and forced calls are included), and
   the track's rollback checklist passes item by item on the scratch station's audit log
   (its clock is moved past the checklist's window instead of waiting for it).

The result is recorded in the real station's database (``rollout.last_rehearsal``,
audited ``rollout.rehearse``) by the caller; calls made here are on the scratch station
and never count as evidence of the real one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.domain.errors import OperationError
from app.domain.operations import OPERATIONS, TRACKS
from app.rollout.auditlog import AuditLog
from app.rollout.decision import Force
from app.rollout.errors import VerificationError
from app.rollout.gate_record import GateRecorder, verify_and_record
from app.rollout.health import Check, Status
from app.rollout.settings import TRACK_NAMES, parse_tracks
from app.rollout.verify import SCENARIO, StationFactory

ACTOR = "rehearse"


class CountingOperations:
    """Wraps an implementation of the operations and counts every call made on it, by operation."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in OPERATIONS:
            return attr

        def counted(*a: Any, **kw: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*a, **kw)

        return counted

    def reset(self) -> None:
        self.calls = {}


class _Always:
    """An rng whose every draw samples (the shadow comparison runs on every read)."""

    def random(self) -> float:
        return 0.0


class _Wall:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class RehearsalResult:
    track: str
    checks: list[Check] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.status is Status.PASS for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "passed": self.passed, "elapsed_s": round(self.elapsed_s, 2),
                "checks": [c.as_dict() for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def record_to(self, recorder: GateRecorder, *, actor: str) -> None:
        """Record the result for the stage gate (``rollout.last_rehearsal``, audited)."""
        recorder.record_rehearsal(self.track, self.passed, [c.as_dict() for c in self.checks], actor=actor)

    def table(self) -> str:
        marks = {"pass": "[x]", "fail": "[!]", "pending": "[ ]", "inconclusive": "[?]"}
        lines = [f"rollback rehearsal of the {self.track} track on a scratch station:"]
        lines += [f"  {marks.get(str(c.status), '[?]')} {c.name:<28} {c.message}" for c in self.checks]
        lines.append(f"rehearsal {'PASSED' if self.passed else 'FAILED'} ({self.elapsed_s:.1f} s)")
        return "\n".join(lines)


def _calls(router: Any, station: Any, ops: set[str], force: Force | None) -> dict[str, str]:
    """The scenario's steps of ``ops``; returns op -> the path that served its last call."""
    served: dict[str, str] = {}
    ctx: dict[str, Any] = {}
    for step in SCENARIO:
        if step.op not in ops:
            continue
        try:
            req = step.build(station, ctx)
            res, d = router.call_with_decision(step.op, req, force=force, actor=ACTOR)
            if step.op == "create_rule" and "rule_id" not in ctx:
                ctx["rule_id"] = res.rule.id
        except OperationError:
            d = router.last_decision
        except Exception:  # a failure is the verify scenario's business; here only the path matters
            d = router.last_decision
        if d is not None:
            served[step.op] = d.served_by
    return served


def rehearse_and_record(make_station_parts: StationFactory, recorder: GateRecorder | None, *, actor: str,
                        track: str = "cameras", show: Callable[[RehearsalResult], None] | None = None,
                        progress: Callable[[str], None] | None = None) -> RehearsalResult:
    """:func:`rehearse_rollback`, then its result recorded for the stage gate (decision point 2)."""
    return verify_and_record(lambda: rehearse_rollback(make_station_parts, track=track, progress=progress),
                             recorder, actor=actor, show=show)


def rehearse_rollback(make_station_parts: StationFactory, *, track: str = "cameras",
                      progress: Callable[[str], None] | None = None) -> RehearsalResult:
    """Rehearse a rollback of ``track`` (or ``"all"``) on a scratch station and verify it."""
    from app.rollout.router import Router

    names = TRACK_NAMES if track == "all" else parse_tracks(track)
    t0 = time.monotonic()
    result = RehearsalResult(track)
    say = progress or (lambda m: None)
    try:
        with make_station_parts() as station:
            store = station.store
            if store is None:
                raise VerificationError("the scratch station has no store to rehearse on")
            domain = CountingOperations(station.domain)
            wall = _Wall()
            router = Router(station.legacy, domain, store, env={}, wall=wall, settings_ttl=0.0,
                            shadow_inline=True, rng=_Always(),  # type: ignore[arg-type]
                            audit=AuditLog(store, background=False))
            try:
                router.set_options({"shadow_rate": 1.0, "auto_rollback": False}, actor=ACTOR)
                for name in names:
                    router.set(track=name, use_domain=True, percent=100, actor=ACTOR,
                               override_reason="rollback rehearsal on a scratch station")
                ops = {op for n in names for op in TRACKS[n]}
                say(f"routed calls of {len(ops)} operations at 100 %")
                before = _calls(router, station, ops, None)
                unserved = sorted(op for op in ops if before.get(op) != "domain")
                result.checks.append(Check(
                    "domain_served_before", Status.FAIL if unserved else Status.PASS, len(ops) - len(unserved),
                    len(ops), "before the rollback the domain path served every operation of the track"
                    if not unserved else "before the rollback these were not served by the domain path: "
                    + ", ".join(unserved)))
                say("rolling back")
                router.rollback(track=track if track == "all" else names[0], actor=ACTOR,
                                reason="rehearsal on a scratch station")
                domain.reset()
                say("the same calls, routed and forced to the domain path, with the shadow sampling every read")
                after = _calls(router, station, ops, None)
                forced = _calls(router, station, ops, Force.DOMAIN)
                ran = sum(domain.calls.get(op, 0) for op in ops)
                on_domain = sorted(op for op in ops if after.get(op) == "domain" or forced.get(op) == "domain")
                result.checks.append(Check(
                    "no_domain_code_after", Status.PASS if ran == 0 and not on_domain else Status.FAIL, ran, 0,
                    "after the latch the domain implementation was not called once (routed, forced and shadow)"
                    if ran == 0 and not on_domain else
                    f"after the latch the domain implementation ran {ran} times: "
                    + ", ".join(f"{op} x{n}" for op, n in sorted(domain.calls.items()))))
                router.audit.flush()  # type: ignore[union-attr]
                wall.offset += router.settings.thresholds.window_s + 1  # the checklist's window, not waited for
                for name in names:
                    cl = router.checklist(name)
                    if cl is None:
                        result.checks.append(Check(f"{name}: checklist", Status.FAIL, None, None,
                                                   f"no rollback checklist for the {name} track"))
                        continue
                    for c in cl.checks:
                        result.checks.append(Check(f"{name}: {c.name}", c.status, c.value, c.limit, c.message))
            finally:
                router.close()
    except VerificationError:
        raise
    except Exception as e:
        result.checks.append(Check("rehearsal_ran", Status.FAIL, None, None,
                                   f"the rehearsal could not complete: {type(e).__name__}: {e}"))
    result.elapsed_s = time.monotonic() - t0
    return result
