"""The rollout router: one :class:`StationOperations` that chooses a path per call.

Decision order, per track (``app.domain.operations.track_of``): the track's rollback
latch -> per-call force -> the track's toggle -> the track's percent (sticky per key,
exact share; see :mod:`app.rollout.bucketing`). The two tracks are independent.

Evidence: forced calls and the calls of ``verify`` and ``rehearse`` are audited but never
counted in the health window (only real traffic and the canary's routed calls are).
After a track's rollback latch no domain code runs for its operations at all: the
latch wins over force, and the shadow comparison never runs the domain path of a
latched track (a sampled comparison is audited: ``rollout.shadow`` or
``rollout.shadow_mismatch``, so the rollback checklist can verify it).

Fallback: an unexpected exception from the domain path before any side effect is
counted and the call is served by legacy. The domain path marks its side effects
(a spawn, a signal, a commit) in the call context (:mod:`app.domain.effects`);
any failure after a mark, like a ``SideEffectFailure``, is counted, never retried,
and raised as a ``SideEffectFailure`` naming what was marked. An
``OperationError`` is an answer and is returned as is. A *forced* call never falls back: the
caller asked for that path (``edge-station verify`` relies on it).

Settings: loaded at construction, then reloaded from the store at most once per
``settings_ttl`` seconds (so a CLI ``rollout set`` in another process takes effect
within that time, with no database read per call); the environment overrides are
read from the ``env`` mapping given at construction. Keys of the populations
(cameras, rules) come from ``keys_provider`` with the same time-to-live.

Audit: every write operation is written to the audit log at once; read-only
calls are buffered and written by a background thread (no round trip per call).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

from app.domain.audit import AuditEntry
from app.domain.effects import begin_call, end_call
from app.domain.emitter import Emitter
from app.domain.errors import OperationError
from app.domain.operations import (
    OPERATIONS,
    READ_ONLY_OPERATIONS,
    TRACK_OF,
    TRACKS,
    CameraLogs,
    CameraRef,
    CameraStats,
    CameraStatus,
    CreateRule,
    ListStatus,
    LogsRequest,
    ProbeRequest,
    ProbeResult,
    RuleResult,
    SideEffectFailure,
    Snapshot,
    StationOperations,
    StatsRequest,
    StatusList,
    StopCamera,
    UpdateRule,
)
from app.rollout.analysis import HealthState
from app.rollout.auditlog import AuditLog
from app.rollout.bucketing import Population
from app.rollout.control import (
    LATCH_APPLIED_OP,
    SHADOW_OP,
    UNCOUNTED_ACTORS,
    RolloutControl,
    report_dict,
)
from app.rollout.decision import (
    Decision,
    Force,
    KeysProvider,
    build_populations,
    decide,
    key_share,
    routing_key,
    store_keys_provider,
)
from app.rollout.errors import GateRefused, RolloutError
from app.rollout.health import (
    Checklist,
    GateResult,
    HealthVerdict,
    Status,
    Verdict,
    evaluate_health,
    health_metrics,
)
from app.rollout.metrics import DOMAIN, LEGACY, SHADOW_MISMATCH_OP, RolloutMetrics, WindowStats
from app.rollout.normalize import differences, normalize, same_answer
from app.rollout.settings import TRACK_NAMES, RolloutSettings, parse_tracks

if TYPE_CHECKING:
    from app.store.uow import Store

log = logging.getLogger(__name__)

_SCRATCH_SALT = "scratch"


@dataclass(frozen=True)
class RolloutSnapshot:
    """Everything the UI/API shows about the rollout, taken at one moment."""

    settings: RolloutSettings
    stage: int
    target_percent: int
    actual_call_share: float | None  # domain calls / all calls in the window
    key_share: dict[str, dict[str, Any]]  # per population: keys, domain, share
    window: WindowStats
    health: HealthVerdict
    metrics: dict[str, float | None]  # domain_error_rate, success_rate, p95_ratio
    gates: dict[str, GateResult | None]  # per track
    checklists: dict[str, Checklist | None]  # per track, while latched
    lifetime: dict[str, dict[str, dict[str, Any]]]
    track_windows: dict[str, WindowStats] = field(default_factory=dict)  # per track: its operations only
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per track: the open problem reports

    @property
    def gate(self) -> GateResult | None:
        """The gate of the first track that is not complete (the plan's order), for one-line summaries."""
        for name in TRACK_NAMES:
            g = self.gates.get(name)
            if g is not None and not g.complete:
                return g
        return self.gates.get(TRACK_NAMES[-1])

    @property
    def checklist(self) -> Checklist | None:
        return next((c for c in self.checklists.values() if c is not None), None)

    def track_share(self, track: str) -> float | None:
        """The actual share of the track's calls that went to the domain path in the window."""
        w = self.track_windows.get(track)
        return w.domain_share if w is not None else None

    def as_dict(self) -> dict[str, Any]:
        tracks = {}
        for name in TRACK_NAMES:
            ts = self.settings.track(name)
            g, c = self.gates.get(name), self.checklists.get(name)
            w = self.track_windows.get(name)
            tracks[name] = {
                "settings": ts.as_dict(), "stage": ts.stage, "target_percent": ts.target_percent,
                "actual_call_share": w.domain_share if w is not None else None,
                "key_share": {k: {kk: vv for kk, vv in v.items() if kk != "domain_keys"}
                              for k, v in self.key_share.get(name, {}).items()},
                "window": {p: st.as_dict() for p, st in w.total.items()} if w is not None else {},
                "gate": g.as_dict() if g else None, "rollback_checklist": c.as_dict() if c else None,
                "open_reports": self.reports.get(name, []),
            }
        return {
            "settings": self.settings.as_dict(),
            "stage": self.stage,
            "target_percent": self.target_percent,
            "actual_call_share": self.actual_call_share,
            "tracks": tracks,
            "window": self.window.as_dict(),
            "health": self.health.as_dict(),
            "metrics": self.metrics,
            "lifetime": self.lifetime,
        }


@dataclass(frozen=True)
class RolloutEvent:
    """What the router tells its listeners: ``"health"`` (the verdict changed; ``payload`` the new
    :class:`HealthVerdict`) or ``"latched"`` (a rollback latched; ``payload`` the new settings)."""

    kind: Literal["health", "latched"]
    payload: HealthVerdict | RolloutSettings


#: (taken at, gates, checklists, open problem reports) per track, for ``snapshot``
_GateCache = tuple[float, dict[str, GateResult | None], dict[str, Checklist | None], dict[str, list[dict[str, Any]]]]


def _entry(op: str, outcome: str, d: Decision, latency: float, at: float, actor: str,
           exc: str | None) -> AuditEntry:
    detail: dict[str, Any] = {}
    if d.fallback:
        detail["fallback_cause"] = d.fallback_cause
    if exc is not None:
        detail["exception"] = exc
    return AuditEntry(op=op, outcome=outcome, key=d.key, path=d.path, latency_ms=latency * 1000.0,
                      fallback=d.fallback, actor=actor, reason=d.reason, detail=detail,
                      at=datetime.fromtimestamp(at, UTC))


def _active_tracks(s: RolloutSettings) -> dict[str, bool]:
    """Which tracks are meant to route calls to the domain path (their target share is above 0, and
    the station is inside the track's fleet share)."""
    tracks = getattr(s, "tracks", None)
    if isinstance(tracks, Mapping):
        return {name: getattr(t, "effective_percent", t.target_percent) > 0 for name, t in tracks.items()}
    return dict.fromkeys(TRACKS, s.target_percent > 0)


class Router:
    """Routes the thirteen operations between ``legacy`` and ``domain``; itself a StationOperations."""

    def __init__(
        self,
        legacy: StationOperations,
        domain: StationOperations,
        store: Store | None = None,
        keys_provider: KeysProvider | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        metrics: RolloutMetrics | None = None,
        audit: AuditLog | None = None,
        settings_ttl: float = 1.0,
        health_interval: float = 5.0,
        shadow_inline: bool = False,
        rng: random.Random | None = None,
        station_id: Callable[[], str | None] | None = None,
    ):
        """``store`` = an opened :class:`app.store.Store` (settings, audit); ``None`` = a scratch
        router with in-memory settings and no audit (used by ``verify``). ``audit`` defaults to a
        background-flushing :class:`AuditLog` on ``store``. ``station_id`` names this station in
        its fleet, for the fleet rollout's share (app.domain.fleet_rollout)."""
        self.legacy = legacy
        self.domain = domain
        self.store = store
        self.env = dict(os.environ if env is None else env)
        self._clock = clock
        self._wall = wall
        self._ttl = settings_ttl
        self._health_interval = health_interval
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._events: Emitter[RolloutEvent] = Emitter("rollout")
        if store is not None:
            self.control: RolloutControl | None = RolloutControl(
                store, env=self.env, wall=wall, keys_provider=keys_provider, station_id=station_id)
            self._keys_provider = keys_provider or store_keys_provider(store)
            self.audit: AuditLog | None = audit if audit is not None else AuditLog(store)
            # The plan's rollback route (start with USE_DOMAIN_SERVICE=false ROLLOUT_PERCENT=0) is a rollback.
            for track in self.control.note_environment_rollback():
                log.warning("the environment turned the %s track off: recorded as a rollback (latched); "
                            "clear it with `edge-station rollout resume --track %s`", track, track)
        else:
            self.control = None
            self._keys_provider = keys_provider or (lambda: {})
            self.audit = audit
        self._settings = self._load_settings()
        self.metrics = metrics or RolloutMetrics(window_s=self._settings.thresholds.window_s, clock=clock)
        self._keyset: tuple[str, dict[str, frozenset[str]]] | None = None
        self._decisions: dict[tuple[str, Any], Decision] = {}  # cleared on every reload
        self._pops: dict[str, Population] = {}
        self._load_keys()
        self._expiry = clock() + settings_ttl
        self._next_health = clock() + health_interval
        self._last_verdict: HealthVerdict | None = None
        self._health_state = HealthState()  # latency failure streaks, inconclusive holds (app.rollout.analysis)
        self._fault: Any = None  # the drill's fault injection (app.rollout.drill); None unless a drill runs
        self._shadow_inline = shadow_inline
        self._shadow_pool: ThreadPoolExecutor | None = None
        self._shadow_busy: Future[bool] | None = None
        self._gate_cache: _GateCache | None = None
        self._gate_generation = 0  # counts the reloads: gates read across one are not cached

    # ------------------------------------------------------------ settings and keys

    def _load_settings(self) -> RolloutSettings:
        if self.control is not None:
            return self.control.load()
        prev: RolloutSettings | None = getattr(self, "_settings", None)  # None while constructing
        if prev is not None:
            return prev
        return RolloutSettings.from_stored({}, self.env).with_changes(salt=_SCRATCH_SALT)

    def _load_keys(self) -> bool:
        """Read the keys; True when they (or the salt) changed."""
        keys = {name: frozenset(ks) for name, ks in self._keys_provider().items()}
        ident = (self._settings.salt, keys)
        if ident != self._keyset:  # re-rank only when the keys or the salt changed
            self._keyset = ident
            self._pops = build_populations(self._settings.salt, keys)
            return True
        return False

    def reload(self, *, force: bool = True) -> RolloutSettings:
        """Re-read settings and keys now (the station calls it when it knows something changed).
        ``force=False`` (the once-a-``settings_ttl`` look) keeps what was derived from them (the
        gates, the decisions, the audit's open aggregates) when neither changed: that look costs a
        settings read, not a gate evaluation every second."""
        with self._lock:
            changed = True
            try:
                prev = self._settings
                self._settings = self._load_settings()
                keys_changed = self._load_keys()
                changed = force or keys_changed or self._settings != prev
                self._note_latches(prev, self._settings)
            except Exception:
                log.exception("reloading rollout settings failed; keeping the previous ones")
            self._expiry = self._clock() + self._ttl
            if changed:
                if self.audit is not None:
                    self.audit.cut()  # no aggregate of reads spans a settings change
                self._gate_cache = None
                self._gate_generation += 1
                self._decisions = {}
            return self._settings

    def _note_latches(self, prev: RolloutSettings, new: RolloutSettings) -> None:
        """Audit the moment this router applies a rollback latch made elsewhere (the CLI, another
        process) or here: the rollback checklist counts domain calls from then on, and names the
        calls made between the rollback and this moment (in flight) separately."""
        if self.audit is None:
            return
        at = self._wall()
        entries = [AuditEntry(op=LATCH_APPLIED_OP, outcome="ok", key=t, actor="station",
                              reason=f"applied the rollback of the {t} track",
                              detail={"latched_at": new.tracks[t].latched_at, "pid": os.getpid()},
                              at=datetime.fromtimestamp(at, UTC))
                   for t in TRACK_NAMES if new.tracks[t].latched and not prev.tracks[t].latched]
        if entries:
            self.audit.write(entries)

    @property
    def settings(self) -> RolloutSettings:
        if self._clock() >= self._expiry:
            self.reload(force=False)
        return self._settings

    def locked_fields(self) -> dict[str, str]:
        return self._settings.locked_fields()

    def subscribe(self, callback: Callable[[RolloutEvent], None]) -> Callable[[], None]:
        """``callback(event)`` for every :class:`RolloutEvent` from now on; returns unsubscribe."""
        return self._events.subscribe(callback)

    # ------------------------------------------------------------ deciding

    def decide(self, op: str, req: Any, force: Force | str | None = None) -> Decision:
        """The decision a call would get now (no call is made)."""
        if op not in OPERATIONS:
            raise RolloutError(f"unknown operation {op!r} (known: {', '.join(OPERATIONS)})")
        s = self.settings
        pop_name, key = routing_key(op, req)
        cache = self._decisions
        d = cache.get((key, force))
        if d is None:
            pop = self._pops.get(pop_name)
            if pop is None:
                pop = self._pops[pop_name] = Population(s.salt, ())
            d = decide(s.tracks[TRACK_OF[op]], pop, key, force)
            if len(cache) < 100_000:
                cache[(key, force)] = d
        return d

    @property
    def last_decision(self) -> Decision | None:
        """The decision of the last call made on this thread (also when it raised)."""
        return getattr(self._local, "decision", None)

    # ------------------------------------------------------------ calling

    def call(self, op: str, request: Any, *, force: Force | str | None = None, actor: str = "") -> Any:
        return self.call_with_decision(op, request, force=force, actor=actor)[0]

    def call_with_decision(self, op: str, request: Any, *, force: Force | str | None = None,
                           actor: str = "") -> tuple[Any, Decision]:
        """Route one call; returns ``(result, decision)`` or raises what the serving path raised."""
        decision = self.decide(op, request, force)
        at = self._wall()
        t0 = time.perf_counter()
        error = fallback = answer = False
        success = True
        raised: BaseException | None = None
        result: Any = None
        on_domain = decision.path == DOMAIN
        impl = self.domain if on_domain else self.legacy
        fault = self._fault if on_domain else None
        effects, token = begin_call() if on_domain else (None, None)  # the side-effect mark
        try:
            result = (fault.call(op, getattr(impl, op), request) if fault is not None
                      else getattr(impl, op)(request))
            outcome = "ok"
        except OperationError as e:
            answer, raised, outcome = True, e, f"error:{e.code}"
        except Exception as e:
            raised, outcome = e, "failed"
        finally:
            if token is not None:
                end_call(token)
        if outcome == "failed":
            assert raised is not None
            error = True
            if effects is not None and effects.marks and not isinstance(raised, SideEffectFailure):
                raised = SideEffectFailure(op, raised, tuple(effects.marks))
            if isinstance(raised, SideEffectFailure):  # never retried: something may have changed
                success, outcome = False, "failed_after_side_effect"
                log.error("%s on the %s path failed after a side effect (key %s): %s", op, decision.path,
                          decision.key, raised)
            elif on_domain and not decision.forced:
                cause, raised = raised, None
                fallback = True
                decision = replace(decision, fallback=True, fallback_cause=type(cause).__name__)
                log.warning("%s on the domain path failed before any side effect (key %s); "
                            "falling back to legacy", op, decision.key, exc_info=cause)
                try:
                    result = getattr(self.legacy, op)(request)
                    outcome = "fallback_ok"
                except OperationError as e2:
                    answer, raised, outcome = True, e2, f"fallback_error:{e2.code}"
                except Exception as e2:
                    success, raised, outcome = False, e2, "fallback_failed"
            else:
                success = False
        latency = time.perf_counter() - t0
        self._local.decision = decision
        # forced and verify calls are recorded (audit, lifetime totals) but never counted in the health window
        self.metrics.record(op, decision.path, latency, error=error, fallback=fallback, success=success,
                            answer=answer, counted=not decision.forced and actor not in UNCOUNTED_ACTORS)
        self._audit(op, decision, outcome, latency, at, actor, raised)
        if (op in READ_ONLY_OPERATIONS and not fallback and success and not decision.forced
                and not self._settings.tracks[TRACK_OF[op]].latched
                and self._settings.shadow_rate > 0 and self._rng.random() < self._settings.shadow_rate):
            self._shadow(op, request, decision, raised if raised is not None else result)
        if self._clock() >= self._next_health:
            self.check_health()
        if raised is not None:
            raise raised
        return result, decision

    def _audit(self, op: str, d: Decision, outcome: str, latency: float, at: float, actor: str,
               raised: BaseException | None) -> None:
        if self.audit is None:
            return
        exc = repr(raised)[:300] if raised is not None and not isinstance(raised, OperationError) else None
        if OPERATIONS[op]:
            entry = _entry(op, outcome, d, latency, at, actor, exc)
            try:
                self.audit.write([entry])
            except Exception:
                log.exception("could not write the audit entry of %s (%s); buffering it", op, d.key)
                self.audit.record(entry)
        elif exc is None and not d.fallback:  # counted into an aggregate by the flusher, off the call path
            self.audit.read(op, d.path, outcome, actor, d.reason, d.key, latency * 1000.0, at)
        else:  # a failed or fallen-back read keeps an entry of its own, with its exception
            self.audit.record(partial(_entry, op, outcome, d, latency, at, actor, exc))

    # ------------------------------------------------------------ shadow comparison

    def _shadow(self, op: str, request: Any, decision: Decision, primary: Any) -> None:
        if self._shadow_inline:
            self._compare(op, request, decision, primary)
            return
        if self._shadow_busy is not None and not self._shadow_busy.done():
            return  # one comparison at a time; a busy comparer skips the sample
        if self._shadow_pool is None:
            self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-shadow")
        self._shadow_busy = self._shadow_pool.submit(self._compare, op, request, decision, primary)

    def _compare(self, op: str, request: Any, decision: Decision, primary: Any) -> bool:
        """Run a read-only request on the other path and compare; returns True on a match."""
        assert op in READ_ONLY_OPERATIONS, op  # writes are never run twice
        other_path = LEGACY if decision.path == DOMAIN else DOMAIN
        if other_path == DOMAIN and self.settings.tracks[TRACK_OF[op]].latched:
            return True  # latched since the sample was taken: no domain code after a rollback
        other = self.legacy if other_path == LEGACY else self.domain
        try:
            shadow: Any = getattr(other, op)(request)
        except OperationError as e:
            shadow = e
        except Exception as e:
            shadow = {"failure": repr(e)[:200]}
        a, b = normalize(primary), normalize(shadow)
        match = same_answer(a, b)
        self.metrics.record_shadow(not match)
        if match and self.audit is not None:
            self.audit.record(AuditEntry(op=SHADOW_OP, outcome="match", key=decision.key, path=other_path,
                                         reason=op, detail={"primary_path": decision.path}))
        if not match:
            log.warning("shadow comparison of %s (%s): %s and %s differ in %s", op, decision.key,
                        decision.path, other_path, differences(a, b))
            if self.audit is not None:
                self.audit.record(AuditEntry(
                    op=SHADOW_MISMATCH_OP, outcome="mismatch", key=decision.key, path=other_path,
                    reason=op, detail={"primary_path": decision.path, "diff": differences(a, b)[:20],
                                       "primary": a, "shadow": b}))
        return match

    # ------------------------------------------------------------ health, latch, control

    def _judge(self, s: RolloutSettings, stats: WindowStats | None = None) -> HealthVerdict:
        """The per-operation verdict on the current window, from the carried state (nothing is stored)."""
        if stats is None:  # only what the checks read (see RolloutMetrics.health_window)
            stats = self.metrics.health_window(s.thresholds.window_s, s.thresholds.min_samples)
        return evaluate_health(stats, s.thresholds, self._health_state, self._clock(), _active_tracks(s))

    def health_tick(self) -> None:
        """Judge health if it is due (every ``health_interval``): the station's sampler calls it each
        second, so auto-rollback never waits for the next call, and the window is judged once per
        interval however many callers there are."""
        if self._clock() >= self._next_health:
            self.check_health()

    def current_health(self) -> HealthVerdict:
        """The verdict of the last check while it is current (with its failure streaks), else a fresh
        look at the window; nothing is latched or stored (the health document reads this)."""
        last = self._last_verdict
        if last is not None and self._clock() < self._next_health:
            return last
        return self._judge(self.settings)

    def check_health(self) -> HealthVerdict:
        """Judge the current window; with auto-rollback on, an alert latches a rollback."""
        s = self.settings
        self._next_health = self._clock() + self._health_interval
        verdict = self._judge(s)
        if verdict.analysis is not None:
            self._health_state = verdict.analysis.state
        changed = self._last_verdict is None or verdict.verdict != self._last_verdict.verdict
        self._last_verdict = verdict
        if changed:
            self._events.emit(RolloutEvent("health", verdict))
        if verdict.verdict is Verdict.ALERT and s.auto_rollback:
            # per track: roll back the tracks whose operations alert (both when the verdict does not say)
            alerting = list(getattr(verdict, "alerting_tracks", None) or TRACK_NAMES)
            todo = [t for t in alerting if not s.tracks[t].latched and s.tracks[t].target_percent > 0]
            if todo:
                failing = [c.message for c in verdict.checks if c.status is Status.FAIL]
                reason = f"auto-rollback ({', '.join(todo)}): " + "; ".join(failing)
                log.error("rollout health alert, rolling back: %s", reason)
                for t in todo:
                    self.rollback(track=t, actor="auto-rollback", reason=reason)
        return verdict

    def _need_control(self, what: str) -> RolloutControl:
        if self.control is None:
            raise RolloutError(f"this router has no store: {what}")
        return self.control

    def rollback(self, *, track: str | None = "all", actor: str = "", reason: str = "manual rollback",
                 source: str = "manual") -> RolloutSettings:
        """Roll back one track or ``"all"`` (latched; audited with ``source``: manual, fleet, ...)."""
        tracks = parse_tracks(track)
        with self._lock:
            if self.control is not None:
                self.control.rollback(track=track, actor=actor, reason=reason, source=source)
            else:
                s = self._settings
                for t in tracks:
                    s = s.with_track(t, use_domain=False, percent=0, latched=True, latch_reason=reason,
                                     latched_at=self._wall())
                self._settings = s
            s = self.reload()
        self._events.emit(RolloutEvent("latched", s))
        return s

    def resume(self, *, track: str | None, actor: str = "", reason: str = "") -> RolloutSettings:
        """Clear a track's latch (audited, with a reason); the track stays at 0 %."""
        self._need_control("the rollout cannot resume").resume(track=track, actor=actor, reason=reason)
        return self.reload()

    def set(self, *, use_domain: object = None, percent: object = None, actor: str = "",
            track: str | None = "all", reason: str = "set", override_reason: str | None = None) -> RolloutSettings:
        """Set the toggle/percent of one track or both (``track="all"``, the default); raising a share
        goes through the track's gate or needs ``override_reason`` (see RolloutControl.set)."""
        control = self._need_control("settings cannot be changed")
        if self.audit is not None:
            self.audit.flush()
        control.set(use_domain=use_domain, percent=percent, track=track, actor=actor, reason=reason,
                    override_reason=override_reason)
        return self.reload()

    def set_options(self, changes: Mapping[str, object], *, actor: str = "") -> RolloutSettings:
        self._need_control("settings cannot be changed").set_options(changes, actor=actor)
        return self.reload()

    def advance(self, *, actor: str = "", track: str | None = None,
                override_reason: str | None = None) -> tuple[RolloutSettings, GateResult]:
        """Advance one track a stage. ``track=None`` (the one-track API): every track whose gate
        passes, in the plan's order; refused when none does."""
        control = self._need_control("the rollout cannot advance")
        if self.audit is not None:
            self.audit.flush()
        if track is not None:
            _, result = control.advance(track=track, actor=actor, override_reason=override_reason)
            return self.reload(), result
        results: list[GateResult] = []
        refused: GateRefused | None = None
        for t in TRACK_NAMES:
            try:
                results.append(control.advance(track=t, actor=actor, override_reason=override_reason)[1])
            except GateRefused as e:
                refused = refused or e
        if not results:
            assert refused is not None
            raise refused
        return self.reload(), results[0]

    def gate(self, track: str) -> GateResult:
        if self.audit is not None:
            self.audit.flush()
        return self._need_control("there is no gate").gate(track)  # fresh settings, not the cached ones

    def checklist(self, track: str) -> Checklist | None:
        if self.audit is not None:
            self.audit.flush()
        return self._need_control("there is no checklist").checklist(track)

    def health_metrics(self) -> dict[str, float | None]:
        """``domain_error_rate``, ``success_rate``, ``p95_ratio``, ``health_inconclusive`` (for alert rules;
        see :func:`app.rollout.analysis.health_series`)."""
        return health_metrics(self._judge(self._settings))

    def snapshot(self, *, gate_ttl: float = 10.0) -> RolloutSnapshot:
        s = self.settings
        stats = self.metrics.summary(s.thresholds.window_s)
        now = self._clock()
        cache = self._gate_cache
        if self.control is not None and (cache is None or now - cache[0] > gate_ttl):
            generation = self._gate_generation
            try:
                if self.audit is not None:
                    self.audit.flush()
                # the reports first: a snapshot that lists a report has a gate read after it was filed
                reports = {t: [report_dict(r) for r in self.control.open_reports(t)] for t in TRACK_NAMES}
                gates: dict[str, GateResult | None] = {t: self.control.gate(t, s) for t in TRACK_NAMES}
                lists = {t: self.control.checklist(t, s) for t in TRACK_NAMES}
                cache = (now, gates, lists, reports)
            except Exception:
                log.exception("computing the rollout gates failed")
                cache = (now, {}, {}, {})
            with self._lock:
                # a reload during the reads (a report filed, a setting changed) makes them stale: not kept
                if generation == self._gate_generation:
                    self._gate_cache = cache
        gate_map, lists, reports = cache[1:] if cache else ({}, {}, {})
        last = self._last_verdict
        # the verdict of the last check when it is current (judged once per health_interval)
        health = last if last is not None and now < self._next_health else self._judge(s, stats)
        return RolloutSnapshot(
            settings=s, stage=max(t.stage for t in s.tracks.values()), target_percent=s.target_percent,
            actual_call_share=stats.domain_share, key_share=key_share(s, self._pops), window=stats,
            health=health, metrics=health_metrics(health), gates=dict(gate_map), checklists=dict(lists),
            lifetime=self.metrics.lifetime(), reports=dict(reports),
            track_windows={t: self.metrics.summary(s.thresholds.window_s, ops=TRACKS[t]) for t in TRACK_NAMES})

    def close(self) -> None:
        """Stop the shadow thread and write the buffered audit entries."""
        if self._shadow_pool is not None:
            self._shadow_pool.shutdown(wait=True)
            self._shadow_pool = None
        if self.audit is not None:
            self.audit.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ StationOperations
    # ``call`` dispatches by the operation's name, so its result is typed here, where the name is fixed.

    def create_rule(self, req: CreateRule) -> RuleResult:
        return cast(RuleResult, self.call("create_rule", req))

    def update_rule(self, req: UpdateRule) -> RuleResult:
        return cast(RuleResult, self.call("update_rule", req))

    def start_camera(self, req: CameraRef) -> CameraStatus:
        return cast(CameraStatus, self.call("start_camera", req))

    def stop_camera(self, req: StopCamera) -> CameraStatus:
        return cast(CameraStatus, self.call("stop_camera", req))

    def restart_camera(self, req: CameraRef) -> CameraStatus:
        return cast(CameraStatus, self.call("restart_camera", req))

    def camera_status(self, req: CameraRef) -> CameraStatus:
        return cast(CameraStatus, self.call("camera_status", req))

    def list_status(self, req: ListStatus) -> StatusList:
        return cast(StatusList, self.call("list_status", req))

    def activate_camera(self, req: CameraRef) -> CameraStatus:
        return cast(CameraStatus, self.call("activate_camera", req))

    def deactivate_camera(self, req: CameraRef) -> CameraStatus:
        return cast(CameraStatus, self.call("deactivate_camera", req))

    def camera_logs(self, req: LogsRequest) -> CameraLogs:
        return cast(CameraLogs, self.call("camera_logs", req))

    def camera_snapshot(self, req: CameraRef) -> Snapshot:
        return cast(Snapshot, self.call("camera_snapshot", req))

    def probe_camera(self, req: ProbeRequest) -> ProbeResult:
        return cast(ProbeResult, self.call("probe_camera", req))

    def camera_stats(self, req: StatsRequest) -> CameraStats:
        return cast(CameraStats, self.call("camera_stats", req))
