"""Rollout health per operation and per track: confidence bounds, a latency floor, a failure limit.

Every check compares like with like: one operation's domain calls against the
same operation's legacy calls in the same window, never figures pooled across
operations (a probe takes 300 ms, a status read 1 ms: pooling compares the mix,
not the paths). A track's verdict is the worst of its operations'.

* **error rate** (domain errors before fallback / domain calls): *fails* when
  the lower end of the 95 % Wilson interval is above ``max_domain_error_rate``
  and at least ``min_failures`` calls failed; *passes* when the upper end is at
  or below it; else it is inconclusive.
* **success** (end-to-end successes after fallback / domain calls): *fails*
  when the upper end is below ``min_success_rate`` (and at least
  ``min_failures`` calls failed end to end); *passes* when the lower end is at
  or above it.
* **latency**: needs ``min_samples`` calls of the operation on each path; fails
  when the domain P95 is above ``max_p95_ratio`` x the legacy P95 **and** more
  than ``latency_floor_ms`` above it. It alerts only after ``failure_limit``
  consecutive failing windows: disjoint windows of ``window_s`` each, with no
  passing evaluation in between (an inconclusive one holds the count). With no
  legacy call of the operation at all (a 100 % stage) there is no baseline and
  latency is not judged.

An operation with no domain call in the window is idle and does not count; a
track whose operations are all idle, or any of them inconclusive, is
inconclusive. A track that is meant to route to the domain path and stays
inconclusive longer than ``inconclusive_warn_s`` raises a warning ("not enough
domain traffic to judge"). ``docs/rollout.md`` (section 4) has the maths with
worked numbers.

:func:`judge` is a pure function of a window, the thresholds, the state carried
from the previous evaluation and the time, so it is tested on synthetic windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.domain.operations import TRACKS, track_of
from app.rollout.metrics import DOMAIN, LEGACY, PathStats, WindowStats
from app.rollout.settings import Thresholds

#: two-sided 95 % normal quantile
Z95 = 1.959963984540054

OK = "ok"
ALERT = "alert"
INCONCLUSIVE = "inconclusive"
_RANK = {OK: 0, INCONCLUSIVE: 1, ALERT: 2}

PASS = "pass"
FAIL = "fail"
HOLD = "inconclusive"
PENDING = "pending"  # latency failing, but fewer than failure_limit windows yet

#: the figures of a path without calls (shared: built once, frozen)
_NONE = PathStats()
_NO_PATHS: Mapping[str, PathStats] = {}

#: the warning a long-inconclusive track raises
NOT_ENOUGH_TRAFFIC = "not enough domain traffic to judge"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (``(0, 1)`` for ``n == 0``)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    den = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@lru_cache(maxsize=4096)
def calls_until_upper_at_most(k: int, n: int, limit: float, z: float = Z95) -> int | None:
    """More calls without another hit until the Wilson upper bound of ``k/n`` is <= ``limit``.

    The upper bound is <= L exactly when (L n - k)^2 >= z^2 L (1 - L) n with k/n <= L, a quadratic
    in n: n >= ((2 L k + c) + sqrt((2 L k + c)^2 - 4 L^2 k^2)) / (2 L^2), c = z^2 L (1 - L).
    (k = 0: n >= z^2 (1 - L) / L, 73 calls for 5 %.)"""
    if limit >= 1.0 or wilson(k, n, z)[1] <= limit:
        return 0
    if limit <= 0.0:
        return None
    c = z * z * limit * (1 - limit)
    b = 2 * limit * k + c
    need = math.ceil((b + math.sqrt(max(b * b - 4 * limit * limit * k * k, 0.0))) / (2 * limit * limit))
    while need > n and wilson(k, need - 1, z)[1] <= limit:  # floating point at the edge
        need -= 1
    while wilson(k, need, z)[1] > limit:
        need += 1
    return max(need - n, 0)


@dataclass(frozen=True)
class OpCheck:
    """One check of one operation: status, the measured value, the bound, and why."""

    name: str  # error_rate, success, latency
    status: str  # pass, fail, inconclusive, pending
    value: float | None
    limit: str
    message: str
    alert_value: float | None = None  # what the alert-rule series carries (see health_series)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "value": self.value, "limit": self.limit,
                "message": self.message}


@dataclass(frozen=True)
class OpHealth:
    op: str
    track: str
    verdict: str  # ok, alert, inconclusive, or "idle" (no domain call in the window)
    checks: tuple[OpCheck, ...]
    domain_calls: int
    legacy_calls: int
    needs: dict[str, int | None]  # path -> more calls needed for a conclusive verdict (None = cannot tell)
    streak: int = 0

    @property
    def idle(self) -> bool:
        return self.verdict == "idle"

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "track": self.track, "verdict": self.verdict, "domain_calls": self.domain_calls,
                "legacy_calls": self.legacy_calls, "needs": dict(self.needs), "latency_windows_failed": self.streak,
                "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class TrackHealth:
    track: str
    verdict: str
    active: bool  # the track is meant to route some calls to the domain path
    ops: tuple[OpHealth, ...]
    inconclusive_since: float | None = None
    warning: str | None = None  # set when inconclusive for longer than inconclusive_warn_s

    @property
    def reasons(self) -> list[str]:
        out = [f"{o.op}: {c.message}" for o in self.ops if o.verdict == ALERT for c in o.checks if c.status == FAIL]
        if self.warning:
            out.append(f"{self.track}: {self.warning}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "verdict": self.verdict, "active": self.active,
                "inconclusive_since": self.inconclusive_since, "warning": self.warning,
                "ops": {o.op: o.as_dict() for o in self.ops}}


@dataclass(frozen=True)
class HealthState:
    """What one evaluation hands to the next: latency streaks and inconclusive holds."""

    streaks: Mapping[str, tuple[int, float]] = field(default_factory=dict)  # op -> (failing windows, counted at)
    inconclusive_since: Mapping[str, float] = field(default_factory=dict)  # track -> since


@dataclass(frozen=True)
class Analysis:
    tracks: dict[str, TrackHealth]
    state: HealthState

    @property
    def verdict(self) -> str:
        active = [t for t in self.tracks.values() if t.active] or list(self.tracks.values())
        return max((t.verdict for t in active), key=_RANK.__getitem__, default=INCONCLUSIVE)

    def op(self, name: str) -> OpHealth:
        return next(o for t in self.tracks.values() for o in t.ops if o.op == name)

    def needs(self) -> dict[str, dict[str, int | None]]:
        """op -> path -> more calls needed (only operations that still need some)."""
        return {o.op: dict(o.needs) for t in self.tracks.values() for o in t.ops
                if any(v is None or v > 0 for v in o.needs.values())}


# ---------------------------------------------------------------- the checks of one operation


def _error_check(d: PathStats, th: Thresholds) -> tuple[OpCheck, int | None]:
    k, n, limit = d.errors, d.calls, th.max_domain_error_rate
    lo, hi = wilson(k, n)
    bound = f"95 % interval of the error rate <= {limit:.0%}"
    text = f"domain error rate {k}/{n} ({k / n:.1%}, 95 % interval {lo:.1%}-{hi:.1%})"
    if k >= th.min_failures and lo > limit:
        return OpCheck("error_rate", FAIL, round(k / n, 4), bound,
                       f"{text}: above {limit:.0%} with 95 % confidence", alert_value=lo), 0
    alert = min(lo, limit)
    if hi <= limit:
        return OpCheck("error_rate", PASS, round(k / n, 4), bound, f"{text}: below {limit:.0%}",
                       alert_value=alert), 0
    need = calls_until_upper_at_most(k, n, limit)
    more = f"{need} more clean calls to tell" if need is not None else "too many errors to call it healthy"
    return OpCheck("error_rate", HOLD, round(k / n, 4), bound, f"{text}: inconclusive, {more}",
                   alert_value=alert), need


def _success_check(d: PathStats, th: Thresholds) -> tuple[OpCheck, int | None]:
    n, s, limit = d.calls, d.successes, th.min_success_rate
    failed = n - s
    lo, hi = wilson(s, n)
    bound = f"95 % interval of end-to-end success >= {limit:.0%}"
    text = f"end-to-end success {s}/{n} ({s / n:.1%}, 95 % interval {lo:.1%}-{hi:.1%})"
    if failed >= th.min_failures and hi < limit:
        return OpCheck("success", FAIL, round(s / n, 4), bound,
                       f"{text}: below {limit:.0%} with 95 % confidence", alert_value=hi), 0
    alert = max(hi, limit)
    if lo >= limit:
        return OpCheck("success", PASS, round(s / n, 4), bound, f"{text}: at least {limit:.0%}",
                       alert_value=alert), 0
    need = calls_until_upper_at_most(failed, n, 1.0 - limit)
    more = f"{need} more successful calls to tell" if need is not None else "too many failures to call it healthy"
    return OpCheck("success", HOLD, round(s / n, 4), bound, f"{text}: inconclusive, {more}",
                   alert_value=alert), need


def _latency_check(d: PathStats, lg: PathStats, th: Thresholds, prior: tuple[int, float] | None,
                   now: float) -> tuple[OpCheck | None, dict[str, int], tuple[int, float] | None]:
    """The latency check, the calls it still needs per path, and the new streak."""
    bound = (f"domain P95 <= {th.max_p95_ratio:g} x legacy P95, or within {th.latency_floor_ms:g} ms of it, "
             f"in {th.failure_limit} consecutive windows")
    if lg.calls == 0:
        return None, {}, prior  # no legacy baseline (a 100 % stage): latency is not judged
    need = {DOMAIN: max(0, th.min_samples - d.calls), LEGACY: max(0, th.min_samples - lg.calls)}
    if need[DOMAIN] or need[LEGACY]:
        return (OpCheck("latency", HOLD, None, bound,
                        f"latency: too few calls to compare (domain {d.calls}, legacy {lg.calls}, "
                        f"need {th.min_samples} each)"), need, prior)
    assert d.p95_ms is not None and lg.p95_ms is not None
    ratio = d.p95_ms / max(lg.p95_ms, 1e-6)
    diff = d.p95_ms - lg.p95_ms
    text = (f"domain P95 {d.p95_ms:.2f} ms vs legacy P95 {lg.p95_ms:.2f} ms "
            f"({ratio:.2f} x, {diff:+.2f} ms)")
    capped = min(ratio, th.max_p95_ratio)
    if not (ratio > th.max_p95_ratio and diff > th.latency_floor_ms):
        why = "within the bound" if ratio <= th.max_p95_ratio else f"under the {th.latency_floor_ms:g} ms floor"
        return OpCheck("latency", PASS, round(ratio, 3), bound, f"{text}: {why}", alert_value=capped), need, None
    count, counted_at = prior if prior else (0, -math.inf)
    if count == 0 or now - counted_at >= th.window_s:
        count, counted_at = count + 1, now
    streak = (count, counted_at)
    if count >= th.failure_limit:
        return (OpCheck("latency", FAIL, round(ratio, 3), bound,
                        f"{text}: above {th.max_p95_ratio:g} x in {count} consecutive windows",
                        alert_value=ratio), need, streak)
    return (OpCheck("latency", PENDING, round(ratio, 3), bound,
                    f"{text}: above {th.max_p95_ratio:g} x in window {count} of {th.failure_limit}",
                    alert_value=capped), need, streak)


@lru_cache(maxsize=4096)
def _idle(op: str, track: str, legacy_calls: int, max_error_rate: float, min_success_rate: float,
          min_samples: int, streak: int) -> OpHealth:
    """The verdict of an operation with no domain call in the window: a function of these values only,
    so it is built once and shared (most operations are idle in most windows; the result is frozen)."""
    first = [calls_until_upper_at_most(0, 0, max_error_rate),
             calls_until_upper_at_most(0, 0, 1.0 - min_success_rate), min_samples if legacy_calls else 0]
    need: dict[str, int | None] = {DOMAIN: None if None in first else max(v for v in first if v is not None)}
    return OpHealth(op, track, "idle", (), 0, legacy_calls, need, streak)


def judge_op(op: str, paths: Mapping[str, PathStats], th: Thresholds, prior: tuple[int, float] | None,
             now: float) -> tuple[OpHealth, tuple[int, float] | None]:
    d, lg = paths.get(DOMAIN, _NONE), paths.get(LEGACY, _NONE)
    track = track_of(op)
    if d.calls == 0:
        return _idle(op, track, lg.calls, th.max_domain_error_rate, th.min_success_rate, th.min_samples,
                     prior[0] if prior else 0), prior
    err, need_e = _error_check(d, th)
    suc, need_s = _success_check(d, th)
    lat, need_l, streak = _latency_check(d, lg, th, prior, now)
    checks = tuple(c for c in (err, suc, lat) if c is not None)
    if any(c.status == FAIL for c in checks):
        verdict = ALERT
    elif any(c.status in (HOLD, PENDING) for c in checks):
        verdict = INCONCLUSIVE
    else:
        verdict = OK
    needed = [v for v in (need_e, need_s) if v != 0]
    known = [v for v in needed if v is not None]
    dom: int | None = None if len(known) < len(needed) else max([*known, need_l.get(DOMAIN, 0)], default=0)
    needs: dict[str, int | None] = {DOMAIN: dom}
    if need_l.get(LEGACY):
        needs[LEGACY] = need_l[LEGACY]
    return OpHealth(op, track, verdict, checks, d.calls, lg.calls, needs, streak[0] if streak else 0), streak


# ---------------------------------------------------------------- per track


def judge(stats: WindowStats, th: Thresholds, state: HealthState | None = None, now: float = 0.0,
          active: Mapping[str, bool] | Iterable[str] | None = None) -> Analysis:
    """Judge every operation and track on one window.

    ``state`` = what the previous evaluation returned (``None`` = a first look); ``now`` =
    the clock of the window (for the failure limit and the inconclusive hold); ``active`` =
    the tracks meant to route calls to the domain path (default: the tracks that had domain calls).
    """
    state = state or HealthState()
    if active is None:  # every track that saw a domain call
        is_active = {t: any(stats.per_op.get(op, {}).get(DOMAIN, _NONE).calls for op in ops)
                     for t, ops in TRACKS.items()}
    elif isinstance(active, Mapping):
        is_active = {t: bool(active.get(t, False)) for t in TRACKS}
    else:
        names = set(active)
        is_active = {t: t in names for t in TRACKS}
    streaks: dict[str, tuple[int, float]] = {}
    since: dict[str, float] = {}
    tracks: dict[str, TrackHealth] = {}
    for track, ops in TRACKS.items():
        results = []
        for op in ops:
            res, streak = judge_op(op, stats.per_op.get(op, _NO_PATHS), th, state.streaks.get(op), now)
            results.append(res)
            if streak is not None:
                streaks[op] = streak
        seen = [r for r in results if not r.idle]
        verdict = max((r.verdict for r in seen), key=_RANK.__getitem__, default=INCONCLUSIVE)
        start = None
        warning = None
        if verdict == INCONCLUSIVE and is_active[track]:
            start = state.inconclusive_since.get(track, now)
            since[track] = start
            if now - start >= th.inconclusive_warn_s:
                warning = f"{NOT_ENOUGH_TRAFFIC} (inconclusive for {(now - start) / 60:.0f} min)"
        tracks[track] = TrackHealth(track, verdict, is_active[track], tuple(results), start, warning)
    return Analysis(tracks, HealthState(streaks, since))


def health_series(analysis: Analysis) -> dict[str, float | None]:
    """The values the rollout alert rules watch, so that a rule fires exactly when a check fails.

    * ``domain_error_rate``: the worst operation's lower 95 % bound when its check fails, else
      at most the limit (the rule ``> limit`` then holds only on a failing check);
    * ``success_rate``: the worst upper 95 % bound when failing, else at least the limit;
    * ``p95_ratio``: the worst P95 ratio once the failure limit is reached, else at most the bound;
    * ``health_inconclusive``: 1 while an active track is held inconclusive too long, else 0.

    ``None`` when no operation had a domain call (the rules then keep their state).
    """
    err: list[float] = []
    suc: list[float] = []
    lat: list[float] = []
    for t in analysis.tracks.values():
        for o in t.ops:
            for c in o.checks:
                if c.alert_value is None:
                    continue
                {"error_rate": err, "success": suc, "latency": lat}[c.name].append(c.alert_value)
    warn = any(t.warning for t in analysis.tracks.values() if t.active)
    return {
        "domain_error_rate": max(err) if err else None,
        "success_rate": min(suc) if suc else None,
        "p95_ratio": max(lat) if lat else None,
        "health_inconclusive": 1.0 if warn else 0.0,
    }


def needs_lines(analysis: Analysis, *, active_only: bool = False) -> list[str]:
    """One line per operation that still needs calls, for ``rollout status``."""
    out = []
    for t in analysis.tracks.values():
        if active_only and not t.active:
            continue
        for o in t.ops:
            parts = []
            for path, n in o.needs.items():
                if n is None:
                    parts.append(f"{path}: cannot become healthy in this window")
                elif n > 0:
                    parts.append(f"{n} more {path} calls")
            if parts:
                state = "no domain calls in the window" if o.idle else f"{o.domain_calls} domain, {o.legacy_calls} legacy"
                out.append(f"{t.track:<8} {o.op:<18} {', '.join(parts)} ({state})")
    return out


def as_dict(analysis: Analysis) -> dict[str, Any]:
    return {"verdict": analysis.verdict, "tracks": {n: t.as_dict() for n, t in analysis.tracks.items()},
            "needs": analysis.needs()}


def active_tracks(settings: Any) -> dict[str, bool]:
    """Which tracks are meant to route calls to the domain path (their target share is above 0, and
    the station is inside the track's fleet share)."""
    tracks = getattr(settings, "tracks", None)
    if isinstance(tracks, Mapping):
        return {name: getattr(t, "effective_percent", t.target_percent) > 0 for name, t in tracks.items()}
    return dict.fromkeys(TRACKS, settings.target_percent > 0)


def status_health(control: Any, settings: Any) -> Analysis:
    """The health of the last window as ``rollout status`` sees it from another process: judged on
    the audit log (a first look: the failure limit's streaks live in the running station)."""
    th = settings.thresholds
    stats = control.audit_stats(control.wall() - th.window_s, th.window_s)
    return judge(stats, th, None, control.wall(), active_tracks(settings))


def status_lines(result: Analysis, window_s: float) -> list[str]:
    if not any(t.active for t in result.tracks.values()):
        return [f"health ({window_s:.0f} s window): not judged, no track routes calls to the domain path"]
    lines = [f"health ({window_s:.0f} s window): {result.verdict}"]
    for t in result.tracks.values():
        if t.active:
            lines.append(f"  track {t.track:<8} {t.verdict}" + (f" - {t.warning}" if t.warning else ""))
    needs = needs_lines(result, active_only=True)
    if needs:
        lines.append("calls still needed for a verdict (per operation, in one window):")
        lines += [f"  {ln}" for ln in needs]
    return lines
