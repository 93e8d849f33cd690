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

from app.rollout import analysis
from app.rollout.analysis import Analysis, HealthState
from app.rollout.metrics import DOMAIN, LEGACY, WindowStats
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

    def as_dict(self) -> dict:
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

    def as_dict(self) -> dict:
        out = {"verdict": str(self.verdict), "reasons": self.reasons, "checks": [c.as_dict() for c in self.checks]}
        if self.analysis is not None:
            out.update(analysis.as_dict(self.analysis))
            out["verdict"] = str(self.verdict)
            out["warnings"] = self.warnings
        return out


def _p95_ratio(stats: WindowStats) -> float | None:
    d, lg = stats.path(DOMAIN).p95_ms, stats.path(LEGACY).p95_ms
    if d is None or lg is None:
        return None
    return d / max(lg, 1e-6)


def _latency_check(stats: WindowStats, th: Thresholds, name: str) -> Check:
    d, lg = stats.path(DOMAIN), stats.path(LEGACY)
    limit = f"<= {th.max_p95_ratio} x legacy P95"
    if d.calls < th.min_samples or lg.calls < th.min_samples:
        return Check(name, Status.INCONCLUSIVE, None, limit,
                     f"latency: too few calls to compare (domain {d.calls}, legacy {lg.calls}, need {th.min_samples} each)")
    ratio = _p95_ratio(stats)
    assert ratio is not None
    msg = f"domain P95 {d.p95_ms:.2f} ms is {ratio:.2f} x legacy P95 {lg.p95_ms:.2f} ms"
    if ratio > th.max_p95_ratio:
        return Check(name, Status.FAIL, round(ratio, 3), limit, msg + f" (limit {th.max_p95_ratio} x)")
    return Check(name, Status.PASS, round(ratio, 3), limit, msg)


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


# ---------------------------------------------------------------- stage gate


def next_stage(target_percent: int) -> int | None:
    return next((s for s in STAGES if s > target_percent), None)


@dataclass(frozen=True)
class GateResult:
    current: int
    next: int | None
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return self.next is not None and all(c.status is Status.PASS for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.status is not Status.PASS]

    def as_dict(self) -> dict:
        return {"current": self.current, "next": self.next, "passed": self.passed,
                "checks": [c.as_dict() for c in self.checks]}


def evaluate_gate(settings: RolloutSettings, at_stage: WindowStats, now: float) -> GateResult:
    """May the rollout advance from the current stage to the next? ``at_stage`` = figures since
    the stage was entered; ``now`` = unix time."""
    th = settings.thresholds
    cur = settings.target_percent
    nxt = next_stage(cur)
    checks: list[Check] = []
    if nxt is None:
        checks.append(Check("next_stage", Status.FAIL, cur, None, "already at 100 %: there is no further stage"))
    checks.append(Check(
        "rollback_latch", Status.FAIL if settings.latched else Status.PASS, settings.latched, False,
        f"a rollback is latched ({settings.latch_reason or 'no reason recorded'}); restart at 10 % with "
        "`rollout set --domain on --percent 10`" if settings.latched else "no rollback latched"))
    lv = settings.last_verify or {}
    ok = bool(lv.get("passed"))
    checks.append(Check(
        "verification", Status.PASS if ok else Status.FAIL, ok, True,
        "the last `edge-station verify` passed" if ok else (
            "`edge-station verify` has not passed yet" if not lv else
            f"the last `edge-station verify` failed ({lv.get('mismatches', 0)} mismatches, "
            f"{lv.get('failures', 0)} failures)")))
    if cur > 0:
        held = now - settings.stage_entered_at if settings.stage_entered_at is not None else 0.0
        checks.append(Check(
            "time_at_stage", Status.PASS if held >= th.gate_min_hold_s else Status.PENDING,
            round(held), th.gate_min_hold_s,
            f"{held / 3600:.1f} h at {cur} % (hold at least {th.gate_min_hold_s / 3600:.1f} h)"))
        d = at_stage.path(DOMAIN)
        checks.append(Check(
            "domain_calls", Status.PASS if d.calls >= th.gate_min_calls else Status.PENDING, d.calls,
            th.gate_min_calls, f"{d.calls} domain calls at this stage (need {th.gate_min_calls})"))
        if d.calls < th.min_samples:
            checks.append(Check("domain_error_rate", Status.INCONCLUSIVE, d.error_rate, f"< {th.gate_max_error_rate}",
                                f"too few domain calls to judge the error rate ({d.calls} < {th.min_samples})"))
        else:
            er = d.error_rate or 0.0
            checks.append(Check(
                "domain_error_rate", Status.PASS if er < th.gate_max_error_rate else Status.FAIL, round(er, 4),
                f"< {th.gate_max_error_rate}",
                f"domain error rate {er:.2%} at this stage (must be below {th.gate_max_error_rate:.0%})"))
        checks.append(_latency_check(at_stage, th, "latency"))
        mm = at_stage.shadow_mismatches
        checks.append(Check("comparison_mismatches", Status.PASS if mm == 0 else Status.FAIL, mm, 0,
                            f"{mm} shadow comparison mismatches at this stage (must be 0)"))
    return GateResult(cur, nxt, tuple(checks))


# ---------------------------------------------------------------- rollback checklist


@dataclass(frozen=True)
class Checklist:
    checks: tuple[Check, ...]

    @property
    def complete(self) -> bool:
        return all(c.status is Status.PASS for c in self.checks)

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def as_dict(self) -> dict:
        return {"complete": self.complete, "failed": self.failed, "checks": [c.as_dict() for c in self.checks]}


def rollback_checklist(settings: RolloutSettings, domain_keys: int, since_rollback: WindowStats,
                       elapsed_s: float) -> Checklist:
    """Verify a rollback: share 0, no domain calls in the window after it, legacy healthy.

    ``domain_keys`` = current keys the decision still puts on the domain path (must be 0);
    ``since_rollback`` = figures since the rollback; ``elapsed_s`` = seconds since it.
    """
    th = settings.thresholds
    checks = [
        Check("target_share_zero", Status.PASS if settings.target_percent == 0 else Status.FAIL,
              settings.target_percent, 0, f"target domain share is {settings.target_percent} %"),
        Check("keys_on_domain_zero", Status.PASS if domain_keys == 0 else Status.FAIL, domain_keys, 0,
              f"{domain_keys} current keys still route to the domain path"),
    ]
    d = since_rollback.path(DOMAIN)
    window_done = elapsed_s >= th.window_s
    if d.calls:
        st = Status.FAIL
        msg = f"{d.calls} domain calls since the rollback"
    elif not window_done:
        st = Status.PENDING
        msg = f"no domain calls so far; the window ends {th.window_s - elapsed_s:.0f} s from now"
    else:
        st = Status.PASS
        msg = f"no domain calls in the {th.window_s:.0f} s after the rollback"
    checks.append(Check("no_domain_calls", st, d.calls, 0, msg))
    lg = since_rollback.path(LEGACY)
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
        msg = (f"{lg.calls} legacy calls ({lg.errors} errors) since the rollback: too few to judge; "
               "run some operations (for example camera status) and check again")
    checks.append(Check("legacy_healthy", st, round(er, 4), f"<= {th.max_domain_error_rate}", msg))
    return Checklist(tuple(checks))
