"""Health verdicts, the stage gate and the rollback checklist, judged on window figures.

All three are pure functions of :class:`~app.rollout.metrics.WindowStats` and the
settings, so they are tested on synthetic windows. Each result is a list of
:class:`Check` items with the measured value and the limit, so the UI and the CLI
can show *why*.

The health verdict is judged per operation and per track by
:mod:`app.rollout.analysis` (confidence bounds, a latency floor, a failure limit).
Too few calls is ``inconclusive``: it never passes a gate and never triggers a
rollback; it holds (and, when it lasts, warns).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.domain.operations import TRACKS
from app.rollout import analysis
from app.rollout.analysis import Analysis, HealthState
from app.rollout.metrics import DOMAIN, LEGACY, PathStats, WindowStats
from app.rollout.settings import STAGES, RolloutSettings, Thresholds


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    PENDING = "pending"


class Verdict(StrEnum):
    OK = "ok"
    ALERT = "alert"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    value: Any = None
    limit: Any = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "value": self.value,
                "limit": self.limit, "message": self.message}


@dataclass(frozen=True)
class HealthVerdict:
    """The health verdict: the worst of the active tracks', with one check per judged operation.

    ``analysis`` has the per-operation, per-track detail (:mod:`app.rollout.analysis`);
    ``alerting_tracks`` names the tracks whose verdict is ``alert``.
    """

    verdict: Verdict
    checks: tuple[Check, ...]
    analysis: Analysis | None = None

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.status is not Status.PASS]

    @property
    def alerting_tracks(self) -> list[str]:
        if self.analysis is None:
            return []
        return [n for n, t in self.analysis.tracks.items() if t.verdict == analysis.ALERT]

    @property
    def warnings(self) -> list[str]:
        if self.analysis is None:
            return []
        return [f"{n}: {t.warning}" for n, t in self.analysis.tracks.items() if t.active and t.warning]

    def as_dict(self) -> dict[str, Any]:
        out = {"verdict": str(self.verdict), "reasons": self.reasons, "checks": [c.as_dict() for c in self.checks]}
        if self.analysis is not None:
            out.update(analysis.as_dict(self.analysis))
            out["verdict"] = str(self.verdict)
            out["warnings"] = self.warnings
        return out


_OP_STATUS = {analysis.PASS: Status.PASS, analysis.FAIL: Status.FAIL, analysis.HOLD: Status.INCONCLUSIVE,
              analysis.PENDING: Status.PENDING}


def verdict_of(result: Analysis) -> HealthVerdict:
    """The :class:`HealthVerdict` of an analysis: one :class:`Check` per check of every judged operation."""
    checks: list[Check] = []
    for t in result.tracks.values():
        seen = [o for o in t.ops if not o.idle]
        if not seen and t.active:
            checks.append(Check(f"{t.track}: traffic", Status.INCONCLUSIVE, 0, None,
                                f"{t.track}: no domain calls in the window"))
        for o in seen:
            for c in o.checks:
                checks.append(Check(f"{o.op}: {c.name}", _OP_STATUS[c.status], c.value, c.limit,
                                    f"{o.op}: {c.message}"))
        if t.warning:
            checks.append(Check(f"{t.track}: inconclusive", Status.INCONCLUSIVE, t.inconclusive_since, None,
                                f"{t.track}: {t.warning}"))
    return HealthVerdict(Verdict(result.verdict), tuple(checks), result)


def evaluate_health(stats: WindowStats, th: Thresholds, state: HealthState | None = None, now: float = 0.0,
                    active: Any = None) -> HealthVerdict:
    """Health per operation and per track (see :mod:`app.rollout.analysis`); ``state`` carries the
    latency failure streaks and inconclusive holds from the previous evaluation (``None``: a first
    look, so a latency regression alone never alerts when ``failure_limit`` > 1)."""
    return verdict_of(analysis.judge(stats, th, state, now, active))


def health_metrics(stats: WindowStats | HealthVerdict, th: Thresholds | None = None) -> dict[str, float | None]:
    """The rollout metrics alert rules watch (names match ``app.domain.rules.METRICS``), from a
    verdict or, for a first look, from a window."""
    if isinstance(stats, HealthVerdict):
        assert stats.analysis is not None
        return analysis.health_series(stats.analysis)
    return analysis.health_series(analysis.judge(stats, th or Thresholds()))


# ---------------------------------------------------------------- stage gate (per track)


def next_stage(target_percent: int) -> int | None:
    return next((s for s in STAGES if s > target_percent), None)


def _dur(s: float) -> str:
    """A duration for people: 45 s, 12 min, 5.0 h, 3.0 d."""
    s = max(s, 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


@dataclass(frozen=True)
class GateEvidence:
    """What a track's gate is judged on, besides the settings.

    ``at_stage``: figures of the **routed** calls (percent in/out, never forced, verify or
    shadow) of the track's operations since the stage was entered, from the audit log;
    ``canary_calls``: how many of them the canary made; ``open_reports``: the open problem
    reports against the track; ``settings_changed_at``: the last change of a setting other
    than a stage move (a verification must be newer); ``version``: this program's version;
    ``decision_point_2``: the checks of decision point 2 (the cameras track leaving 0 %).
    """

    at_stage: WindowStats
    canary_calls: int = 0
    open_reports: tuple[Any, ...] = ()
    settings_changed_at: float | None = None
    version: str = ""
    decision_point_2: tuple[Check, ...] = ()


@dataclass(frozen=True)
class GateResult:
    current: int
    next: int | None
    checks: tuple[Check, ...]
    track: str = ""
    held_s: float = 0.0
    hold_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.next is not None and all(c.status is Status.PASS for c in self.checks)

    @property
    def complete(self) -> bool:
        """At 100 %, held the plan's time with every item passing: legacy for the track may be retired."""
        return self.current == 100 and all(c.status is Status.PASS for c in self.checks if c.name != "next_stage")

    @property
    def left_s(self) -> float:
        return max(self.hold_s - self.held_s, 0.0)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.status is not Status.PASS and c.name != "next_stage"] + (
            [c.message for c in self.checks if c.name == "next_stage"] if self.next is None else [])

    @property
    def needs(self) -> list[str]:
        """What the gate still needs (every item not passed), in the order of the checklist."""
        return [c.message for c in self.checks if c.status is not Status.PASS and c.name != "next_stage"]

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "current": self.current, "next": self.next, "passed": self.passed,
                "complete": self.complete, "held_s": round(self.held_s, 1), "hold_s": self.hold_s,
                "left_s": round(self.left_s, 1), "needs": self.needs,
                "checks": [c.as_dict() for c in self.checks]}


def verification_check(last_verify: dict[str, Any] | None, settings_changed_at: float | None, version: str) -> Check:
    """The last ``edge-station verify`` passed, after the last settings change, on this version."""
    lv = last_verify or {}
    if not lv:
        return Check("verification", Status.FAIL, None, True, "`edge-station verify` has not passed yet")
    if not lv.get("passed"):
        return Check("verification", Status.FAIL, False, True,
                     f"the last `edge-station verify` failed ({lv.get('mismatches', 0)} mismatches, "
                     f"{lv.get('failures', 0)} failures)")
    ran = lv.get("version")
    if version and ran != version:
        return Check("verification", Status.FAIL, ran, version,
                     f"the last `edge-station verify` ran on version {ran or 'unknown'}, not on this version "
                     f"{version}: run it again")
    at = lv.get("at")
    if settings_changed_at is not None and (not isinstance(at, int | float) or at < settings_changed_at):
        return Check("verification", Status.FAIL, at, settings_changed_at,
                     "the last `edge-station verify` is older than the last settings change: run it again")
    return Check("verification", Status.PASS, True, True,
                 f"the last `edge-station verify` passed on this version ({version or 'unknown'}), "
                 "after the last settings change")


def _coverage_check(track: str, at_stage: WindowStats, th: Thresholds) -> Check:
    need = th.gate_min_calls_per_op
    counts = {op: at_stage.per_op.get(op, {}).get(DOMAIN, PathStats()).calls for op in TRACKS[track]}
    short = [op for op, n in counts.items() if n < need]
    if not short:
        return Check("coverage", Status.PASS, counts, need,
                     f"every operation of the {track} track has at least {need} routed domain calls at this stage")
    unseen = [op for op in short if counts[op] == 0]
    low = [f"{op} {counts[op]}" for op in short if counts[op]]
    parts = []
    if unseen:
        parts.append("unseen on the domain path: " + ", ".join(unseen))
    if low:
        parts.append("too few: " + ", ".join(low))
    return Check("coverage", Status.PENDING, counts, need,
                 f"coverage: need {need} routed domain calls of each operation at this stage; " + "; ".join(parts))


def _gate_error_check(d: PathStats, th: Thresholds) -> Check:
    limit = f"< {th.gate_max_error_rate}"
    if d.calls == 0:
        return Check("domain_error_rate", Status.PENDING, None, limit, "no routed domain call at this stage yet")
    er = d.errors / d.calls
    if d.errors == 0:
        return Check("domain_error_rate", Status.PASS, 0.0, limit, f"0 errors in {d.calls} routed domain calls")
    if d.calls < th.min_samples:
        return Check("domain_error_rate", Status.INCONCLUSIVE, round(er, 4), limit,
                     f"{d.errors} errors in {d.calls} routed domain calls: too few calls to show a rate below "
                     f"{th.gate_max_error_rate:.0%} (need {th.min_samples})")
    st = Status.PASS if er < th.gate_max_error_rate else Status.FAIL
    return Check("domain_error_rate", st, round(er, 4), limit,
                 f"domain error rate {er:.2%} over {d.calls} routed calls (must be below {th.gate_max_error_rate:.0%})")


def _gate_latency_check(track: str, at_stage: WindowStats, th: Thresholds, stage: int = 0) -> Check:
    """Latency per operation of the track, like for like (never pooled: a mix of a slow operation on one
    path and a fast one on the other is not a regression, and a slow operation hides in no mix). The
    check fails on the worst operation over the ratio bound and the floor, passes when every operation
    with enough calls on both paths is within it, and is inconclusive when none has enough yet."""
    limit = f"<= {th.max_p95_ratio} x legacy P95"
    need = th.gate_min_latency_calls
    judged: list[tuple[float, str, PathStats, PathStats]] = []
    closest: tuple[int, str, PathStats, PathStats] | None = None
    for op in TRACKS[track]:
        paths = at_stage.per_op.get(op, {})
        d, lg = paths.get(DOMAIN, PathStats()), paths.get(LEGACY, PathStats())
        if d.calls >= need and lg.calls >= need and d.p95_ms is not None and lg.p95_ms is not None:
            judged.append((d.p95_ms / max(lg.p95_ms, 1e-6), op, d, lg))
        elif closest is None or min(d.calls, lg.calls) > closest[0]:
            closest = (min(d.calls, lg.calls), op, d, lg)
    if not judged:
        d, lg = at_stage.path(DOMAIN), at_stage.path(LEGACY)
        if d.calls >= need and (lg.calls == 0 or stage == 100):
            # 100 %: no legacy baseline left (a legacy call here was in flight while the stage began)
            return Check("latency", Status.PASS, None, limit,
                         f"no legacy baseline at this stage ({lg.calls} legacy, {d.calls} domain calls); "
                         "judged at the previous stages")
        if closest is None:
            return Check("latency", Status.INCONCLUSIVE, None, limit,
                         f"latency: too few routed calls to compare (domain {d.calls}, legacy {lg.calls}, "
                         f"need {need} each)")
        _, op, d, lg = closest
        return Check("latency", Status.INCONCLUSIVE, None, limit,
                     f"{op}: latency: too few calls to compare (domain {d.calls}, legacy {lg.calls}, "
                     f"need {need} each)")

    def over(j: tuple[float, str, PathStats, PathStats]) -> bool:
        ratio, _, d, lg = j
        return ratio > th.max_p95_ratio and (d.p95_ms or 0.0) - (lg.p95_ms or 0.0) > th.latency_floor_ms

    failing = [j for j in judged if over(j)]
    ratio, op, d, lg = max(failing or judged)
    msg = f"{op}: domain P95 {d.p95_ms:.2f} ms is {ratio:.2f} x legacy P95 {lg.p95_ms:.2f} ms"
    if failing:
        return Check("latency", Status.FAIL, round(ratio, 3), limit, msg + f" (limit {th.max_p95_ratio} x)")
    return Check("latency", Status.PASS, round(ratio, 3), limit, msg)


def evaluate_gate(settings: RolloutSettings, track: str, evidence: GateEvidence, now: float) -> GateResult:
    """May ``track`` advance from its stage to the next? ``now`` = unix time (see :class:`GateEvidence`)."""
    th = settings.thresholds
    ts = settings.track(track)
    cur = ts.target_percent
    nxt = next_stage(cur)
    checks: list[Check] = []
    if nxt is None:
        checks.append(Check("next_stage", Status.FAIL, cur, None, "already at 100 %: there is no further stage"))
    checks.append(Check(
        "rollback_latch", Status.FAIL if ts.latched else Status.PASS, ts.latched, False,
        f"a rollback of the {track} track is latched ({ts.latch_reason or 'no reason recorded'}); clear it with "
        f"`edge-station rollout resume --track {track} --reason ...`" if ts.latched else "no rollback latched"))
    checks.append(verification_check(settings.last_verify, evidence.settings_changed_at, evidence.version))
    n_open = len(evidence.open_reports)
    checks.append(Check(
        "open_reports", Status.PASS if n_open == 0 else Status.FAIL, n_open, 0,
        "no open problem report" if n_open == 0 else
        f"{n_open} open problem report{'s' if n_open != 1 else ''} against the {track} track "
        f"(resolve with `edge-station rollout report resolve ID --note ...`)"))
    checks.extend(evidence.decision_point_2)
    held = hold = 0.0
    if cur > 0:
        stage = ts.stage
        hold = th.hold_s(stage)
        held = now - ts.stage_entered_at if ts.stage_entered_at is not None else 0.0
        checks.append(Check(
            "time_at_stage", Status.PASS if held >= hold else Status.PENDING, round(held), hold,
            f"held {_dur(held)} at {stage} % (the plan: at least {_dur(hold)}"
            + (f"; {_dur(hold - held)} left)" if held < hold else ")")))
        checks.append(_coverage_check(track, evidence.at_stage, th))
        d = evidence.at_stage.path(DOMAIN)
        err = _gate_error_check(d, th)
        if evidence.canary_calls:
            err = Check(err.name, err.status, err.value, err.limit,
                        err.message + f" ({evidence.canary_calls} of the calls by the canary)")
        checks.append(err)
        checks.append(_gate_latency_check(track, evidence.at_stage, th, cur))
        mm = evidence.at_stage.shadow_mismatches
        checks.append(Check("comparison_mismatches", Status.PASS if mm == 0 else Status.FAIL, mm, 0,
                            f"{mm} shadow comparison mismatches at this stage (must be 0)"))
    return GateResult(cur, nxt, tuple(checks), track, held, hold)


# ---------------------------------------------------------------- rollback checklist (per track)


@dataclass(frozen=True)
class Checklist:
    checks: tuple[Check, ...]
    track: str = ""

    @property
    def complete(self) -> bool:
        return all(c.status is Status.PASS for c in self.checks)

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "complete": self.complete, "failed": self.failed,
                "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class RollbackEvidence:
    """What a rollback checklist is verified on: ``domain_keys`` = current keys the decision still
    puts on the domain path; ``domain_calls`` = calls of the track's operations that ran on the
    domain path since the rollback, **of any kind** (routed, forced, canary); ``shadow_domain`` =
    shadow comparisons that ran the domain path since the rollback; ``legacy`` = legacy figures
    since the rollback; ``elapsed_s`` = seconds since the rollback. When a running station
    records that it applied the latch, the two counts start there and ``in_flight`` counts the
    domain calls between the rollback and that moment (``applied_after_s`` seconds later)."""

    domain_keys: int
    domain_calls: int
    shadow_domain: int
    legacy: PathStats
    elapsed_s: float
    in_flight: int = 0
    applied_after_s: float | None = None


def rollback_checklist(settings: RolloutSettings, track: str, ev: RollbackEvidence) -> Checklist:
    """Verify a track's rollback: share 0, no domain code of any kind afterwards, legacy healthy."""
    th = settings.thresholds
    ts = settings.track(track)
    window_done = ev.elapsed_s >= th.window_s
    left = f"the window ends {th.window_s - ev.elapsed_s:.0f} s from now"
    checks = [
        Check("target_share_zero", Status.PASS if ts.target_percent == 0 else Status.FAIL,
              ts.target_percent, 0, f"target domain share of the {track} track is {ts.target_percent} %"),
        Check("keys_on_domain_zero", Status.PASS if ev.domain_keys == 0 else Status.FAIL, ev.domain_keys, 0,
              f"{ev.domain_keys} current keys of the {track} track still route to the domain path"),
    ]
    for name, n, what in (("no_domain_calls", ev.domain_calls, "domain calls (routed, forced or canary)"),
                          ("no_shadow_on_domain", ev.shadow_domain, "shadow comparisons on the domain path")):
        if n:
            st, msg = Status.FAIL, f"{n} {what} of the {track} track since the rollback"
        elif not window_done:
            st, msg = Status.PENDING, f"no {what} so far; {left}"
        else:
            st, msg = Status.PASS, f"no {what} in the {th.window_s:.0f} s after the rollback"
        if name == "no_domain_calls" and ev.applied_after_s is not None:
            msg += (f" (the running station applied the rollback {ev.applied_after_s:.1f} s after it"
                    + (f"; {ev.in_flight} calls were in flight before that)" if ev.in_flight else ")"))
        checks.append(Check(name, st, n, 0, msg))
    lg = ev.legacy
    er = lg.error_rate or 0.0
    if lg.calls and er > th.max_domain_error_rate:
        st, msg = Status.FAIL, f"legacy error rate {er:.1%} over {lg.calls} calls since the rollback"
    elif lg.calls >= th.min_samples or (window_done and lg.calls and not lg.errors):
        st, msg = Status.PASS, f"legacy error rate {er:.1%} over {lg.calls} calls since the rollback"
    elif not window_done:
        st = Status.PENDING
        msg = f"{lg.calls} legacy calls ({lg.errors} errors) so far; judged when the window ends"
    else:
        st = Status.INCONCLUSIVE
        msg = (f"{lg.calls} legacy calls ({lg.errors} errors) of the {track} track since the rollback: too few "
               "to judge; run some of its operations and check again")
    checks.append(Check("legacy_healthy", st, round(er, 4), f"<= {th.max_domain_error_rate}", msg))
    return Checklist(tuple(checks), track)
