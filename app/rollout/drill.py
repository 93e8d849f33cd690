"""``edge-station rollout drill``: make the domain path fail or slow down on purpose, and time the response.

The fault is injected in the router's test seam (``Router._fault``, read on every
domain-path call and ``None`` otherwise) by :func:`inject`, a context manager:
the injection exists only inside the ``with`` block of the process that runs the
drill, is never persisted and has no setting or environment variable, so it cannot
be left on. An injected failure is raised *before* the real call (no side effect,
so the router falls back as it would on a real early failure); a slowdown runs the
real call and then waits ``(factor - 1)`` times its duration.

By default the drill runs on a scratch station (temporary database, synthetic
``test://`` cameras, real workers, the real router at 50 % so both paths serve the
same operation) with a short health window, and reports whether the health checks
alerted and the auto-rollback latch fired, and how long each took from the moment
of injection. ``--live`` runs it on the station's own data directory instead (only
with ``--reason``, audited as ``rollout.drill``; the latch it fires is the real one).

The stations themselves are built by the station package (``app.station.drill``) and
passed in as factories (:data:`DrillStationFactory`, :data:`LiveStationFactory`), the way
``rehearse`` and ``verify`` get theirs: the rollout never builds a station.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from app.domain.errors import OperationError
from app.domain.operations import (
    OPERATIONS,
    TRACK_OF,
    CameraRef,
    ListStatus,
    LogsRequest,
    StationOperations,
    StatsRequest,
)
from app.rollout.errors import RolloutError, RolloutSettingsError
from app.rollout.health import HealthVerdict, Verdict
from app.rollout.metrics import RolloutMetrics
from app.rollout.settings import Thresholds

if TYPE_CHECKING:
    from app.platform.paths import StationPaths
    from app.rollout.router import RolloutEvent, Router
    from app.store.uow import Store

#: the operations a drill can drive (read-only: a drill never changes a camera or a rule)
DRILL_OPERATIONS = ("camera_status", "list_status", "camera_logs", "camera_stats", "camera_snapshot")
#: the drill's actor in the audit log (its calls are routed and counted, unlike verify's)
ACTOR = "drill"


class InjectedFault(RuntimeError):
    """A failure the drill raised on purpose, before the real call (so before any side effect)."""


@dataclass(frozen=True)
class FaultSpec:
    fail_rate: float = 0.0  # share of the domain calls of ``ops`` that fail, 0..1
    slow_factor: float = 1.0  # the domain calls of ``ops`` take this many times as long, >= 1
    ops: tuple[str, ...] = ()  # () = every operation

    def validated(self) -> FaultSpec:
        if not (0.0 <= self.fail_rate <= 1.0):
            raise RolloutSettingsError(f"drill --fail {self.fail_rate!r} must be a share from 0 to 1 (0.2 = 20 %)")
        if not (1.0 <= self.slow_factor <= 100.0):
            raise RolloutSettingsError(f"drill --slow {self.slow_factor!r} must be a factor from 1 to 100")
        unknown = [op for op in self.ops if op not in OPERATIONS]
        if unknown:
            raise RolloutSettingsError(f"drill --op {', '.join(unknown)}: unknown operation "
                                       f"(known: {', '.join(OPERATIONS)})")
        return self

    @property
    def none(self) -> bool:
        return self.fail_rate == 0.0 and self.slow_factor == 1.0


class FaultInjection:
    """What the router calls instead of the domain implementation while a drill runs."""

    def __init__(self, spec: FaultSpec, rng: random.Random | None = None):
        self.spec = spec
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.failed = 0
        self.slowed = 0

    def call(self, op: str, fn: Callable[[Any], Any], request: Any) -> Any:
        s = self.spec
        if s.ops and op not in s.ops:
            return fn(request)
        if s.fail_rate:
            with self._lock:
                hit = self._rng.random() < s.fail_rate
                self.failed += hit
            if hit:
                raise InjectedFault(f"drill: injected failure of {op} on the domain path")
        if s.slow_factor <= 1.0:
            return fn(request)
        t0 = time.perf_counter()
        try:
            return fn(request)
        finally:
            time.sleep((time.perf_counter() - t0) * (s.slow_factor - 1.0))
            with self._lock:
                self.slowed += 1


@contextlib.contextmanager
def inject(router: Any, spec: FaultSpec, rng: random.Random | None = None) -> Iterator[FaultInjection]:
    """Inject ``spec`` into ``router``'s domain path for the ``with`` block; always removed after it."""
    spec.validated()
    if getattr(router, "_fault", None) is not None:
        raise RolloutError("a drill is already injecting faults into this router")
    fault = FaultInjection(spec, rng)
    router._fault = fault
    try:
        yield fault
    finally:
        router._fault = None


# ---------------------------------------------------------------- running a drill


@dataclass
class DrillReport:
    spec: FaultSpec
    ops: tuple[str, ...]
    window_s: float
    failure_limit: int
    bound_s: float  # the documented bound the latch must fire within
    duration_s: float = 0.0
    calls: int = 0
    injected_failures: int = 0
    slowed_calls: int = 0
    alerted: bool = False
    latched: bool = False
    time_to_alert_s: float | None = None
    time_to_latch_s: float | None = None
    latch_reason: str = ""
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    live: bool = False

    @property
    def passed(self) -> bool:
        """A fault must latch within the bound; no fault must not alert at all."""
        if self.spec.none:
            return not self.alerted and not self.latched
        return self.latched and self.time_to_latch_s is not None and self.time_to_latch_s <= self.bound_s

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def lines(self) -> list[str]:
        s = self.spec
        what = "no fault" if s.none else ", ".join(
            p for p in (f"fail {s.fail_rate:.0%}" if s.fail_rate else "",
                        f"slow {s.slow_factor:g}x" if s.slow_factor > 1 else "") if p)
        where = "the live station" if self.live else "a scratch station"
        out = [f"drill on {where}: {what} on the domain path of {', '.join(self.ops)}",
               f"  window {self.window_s:g} s, failure limit {self.failure_limit} windows, "
               f"bound {self.bound_s:g} s; {self.calls} calls in {self.duration_s:.1f} s "
               f"({self.injected_failures} failed on purpose, {self.slowed_calls} slowed)"]

        def at(t: float | None) -> str:
            return f"after {t:.1f} s" if t is not None else "no"

        out.append(f"  health alerted: {at(self.time_to_alert_s) if self.alerted else 'no'}")
        out.append(f"  latch fired:    {at(self.time_to_latch_s) if self.latched else 'no'}")
        if self.latch_reason:
            out.append(f"  latch reason:   {self.latch_reason[:300]}")
        out.append(f"drill {'PASSED' if self.passed else 'FAILED'}: " + (
            "no fault, no alert" if s.none else
            f"latched within the {self.bound_s:g} s bound" if self.passed else
            f"did not latch within the {self.bound_s:g} s bound"))
        return out


def latch_bound_s(spec: FaultSpec, th: Thresholds, health_interval: float) -> float:
    """The documented bound (docs/rollout.md): failures latch once the error bound is crossed, within
    2 health windows; a slowdown needs ``failure_limit`` disjoint windows after the first full one."""
    if spec.fail_rate > 0:
        return 2 * th.window_s + health_interval
    return (th.failure_limit + 1) * th.window_s + health_interval


class StepClock:
    """A test clock for the drill's windows: every call moves it on by ``step_s`` (tests and
    benches drive many windows in a few seconds; latencies are still measured in real time)."""

    def __init__(self, step_s: float, start: float = 1_000.0):
        self.step_s = step_s
        self.t = start

    def __call__(self) -> float:
        return self.t

    def tick(self) -> None:
        self.t += self.step_s


def run_drill(router: Any, workload: Sequence[tuple[str, Any]], spec: FaultSpec, *, bound_s: float,
              max_s: float | None = None, clock: Callable[[], float] = time.monotonic,
              rng: random.Random | None = None, live: bool = False) -> DrillReport:
    """Drive ``workload`` (``(op, request)`` pairs, round-robin) through ``router`` with ``spec``
    injected until the latch fires or ``max_s`` (default: the bound) has passed."""
    th: Thresholds = router.settings.thresholds
    ops = tuple(dict.fromkeys(op for op, _ in workload))
    tracks = tuple(dict.fromkeys(TRACK_OF[op] for op in ops))

    def latched(s: Any) -> bool:  # the latch of the drilled operations' track, not of any track
        return any(s.track(t).latched for t in tracks)

    report = DrillReport(spec, spec.ops or ops, th.window_s, th.failure_limit, bound_s, live=live)
    limit = bound_s if max_s is None else max_s
    events: list[tuple[str, float, Any]] = []
    tick = getattr(clock, "tick", None)

    def listen(event: RolloutEvent) -> None:
        events.append((event.kind, clock(), event.payload))

    unsubscribe = router.subscribe(listen)
    try:
        with inject(router, spec, rng) as fault:
            t0 = clock()
            while clock() - t0 < limit and not latched(router.settings):
                for op, req in workload:
                    try:
                        router.call(op, req, actor=ACTOR)
                    except OperationError:
                        pass  # an answer (a camera not running yet...): counted as a success of the path
                    except Exception:  # noqa: BLE001, S110 - a failure the health checks are meant to see
                        pass
                    report.calls += 1
                    if tick is not None:
                        tick()
            report.duration_s = clock() - t0
            report.injected_failures, report.slowed_calls = fault.failed, fault.slowed
    finally:
        unsubscribe()
    for event, at, payload in events:
        if event == "health" and isinstance(payload, HealthVerdict) and payload.verdict is Verdict.ALERT:
            if not report.alerted:
                report.alerted, report.time_to_alert_s = True, at - t0
        if event == "latched" and not report.latched and latched(payload):
            report.latched, report.time_to_latch_s = True, at - t0
    s = router.settings
    if latched(s):
        report.latch_reason = "; ".join(f"{t}: {s.track(t).latch_reason}" for t in tracks if s.track(t).latched)
    last = router.check_health() if not latched(s) else None
    if last is not None:
        report.verdict, report.reasons = str(last.verdict), [r for r in last.reasons][:10]
    return report


# ---------------------------------------------------------------- on a scratch station


def drill_thresholds(window_s: float = 10.0, min_samples: int = 20, **kw: Any) -> Thresholds:
    """The scratch station's thresholds: the station's defaults with a short window (bounded drills)."""
    return replace(Thresholds(), window_s=window_s, min_samples=min_samples, **kw)


def workload_for(ops: Sequence[str], cameras: Sequence[int]) -> list[tuple[str, Any]]:
    reqs: dict[str, Callable[[int], Any]] = {
        "camera_status": CameraRef, "camera_snapshot": CameraRef,
        "camera_logs": lambda c: LogsRequest(c, limit=50), "camera_stats": lambda c: StatsRequest(c, window_s=5.0),
    }
    out: list[tuple[str, Any]] = []
    for op in ops:
        if op == "list_status":
            out += [("list_status", ListStatus())] * len(cameras)
        else:
            out += [(op, reqs[op](c)) for c in cameras]
    return out


class DrillStation(Protocol):
    """What a drill needs from a scratch station: both implementations and its running cameras."""

    @property
    def legacy_ops(self) -> StationOperations: ...

    @property
    def domain_ops(self) -> StationOperations: ...

    @property
    def drill_cameras(self) -> tuple[int, ...]: ...


#: ``make_station(cameras)``: a context manager yielding a scratch station with ``cameras`` running
#: ``test://`` cameras, removed on exit (``app.station.scratch_drill_station``)
DrillStationFactory = Callable[[int], AbstractContextManager[DrillStation]]


class LiveDrillStation(Protocol):
    """What a live drill needs from the opened station: its router and its store."""

    @property
    def router(self) -> Router: ...

    @property
    def store(self) -> Store: ...


class DrillStationBusy(RolloutError):
    """Raised by a :data:`LiveStationFactory` when the station is open in another process."""


#: ``open_live(paths)``: a context manager that opens the station on ``paths`` (nothing autostarts)
#: and closes it on exit; raises :class:`DrillStationBusy` when it runs elsewhere
#: (``app.station.live_drill_station``)
LiveStationFactory = Callable[["StationPaths"], AbstractContextManager[LiveDrillStation]]


def scratch_router(station: DrillStation, th: Thresholds, *, percent: int = 50, health_interval: float = 0.5,
                   clock: Callable[[], float] = time.monotonic) -> Any:
    """A router over the scratch station's two implementations, ``percent`` % on the domain path,
    auto-rollback on, in-memory settings (nothing of the station's own rollout settings changes)."""
    from app.rollout.router import Router

    env = {"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": str(percent)}
    ids = list(station.drill_cameras)
    router = Router(station.legacy_ops, station.domain_ops, None,
                    keys_provider=lambda: {"camera": [f"camera:{c}" for c in ids], "rule": []},
                    env=env, clock=clock, metrics=RolloutMetrics(window_s=th.window_s, bucket_s=1.0, clock=clock),
                    health_interval=health_interval)
    router._settings = router._settings.with_changes(thresholds=th, auto_rollback=True, shadow_rate=0.0)
    return router


def drill_on_scratch(spec: FaultSpec, *, ops: Sequence[str] = ("camera_status",), window_s: float = 10.0,
                     min_samples: int = 20, floor_ms: float | None = None, cameras: int = 4,
                     max_s: float | None = None,
                     station: DrillStation | None = None, make_station: DrillStationFactory | None = None,
                     rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> DrillReport:
    """One drill on a scratch station: ``station`` (reused), or a new one from ``make_station(cameras)``."""
    spec = spec.validated()
    bad = [op for op in ops if op not in DRILL_OPERATIONS]
    if bad:
        raise RolloutSettingsError(f"drill --op {', '.join(bad)}: a drill drives only the read-only "
                                   f"operations {', '.join(DRILL_OPERATIONS)}")
    th = drill_thresholds(window_s, min_samples)
    if floor_ms is not None:
        th = replace(th, latency_floor_ms=floor_ms)
    ctx: AbstractContextManager[DrillStation]
    if station is not None:
        ctx = contextlib.nullcontext(station)
    elif make_station is not None:
        ctx = make_station(cameras)
    else:
        raise RolloutError("no scratch station available here")
    with ctx as st:
        router = scratch_router(st, th, clock=clock)
        try:
            bound = latch_bound_s(spec, th, 0.5)
            return run_drill(router, workload_for(ops, st.drill_cameras), spec, bound_s=bound, max_s=max_s,
                             rng=rng, clock=clock)
        finally:
            router.close()


# ---------------------------------------------------------------- the command line

OP_DRILL = "rollout.drill"


def add_drill_parser(sub: Any) -> None:
    """Register ``rollout drill`` on the ``rollout`` sub-command parsers."""
    d = sub.add_parser("drill", help="inject domain-path failures or slowness on purpose and time the health "
                                     "alert and the auto-rollback latch (a scratch station by default)")
    d.add_argument("--fail", type=float, default=0.0, metavar="RATE",
                   help="share of the domain calls that fail, 0-1 (0.2 = 20 %%)")
    d.add_argument("--slow", type=float, default=1.0, metavar="FACTOR",
                   help="the domain calls take FACTOR times as long (>= 1)")
    d.add_argument("--op", action="append", default=None, metavar="NAME",
                   help=f"operation to drive and inject into (repeatable; one of {', '.join(DRILL_OPERATIONS)}; "
                        "default camera_status)")
    d.add_argument("--window", type=float, default=10.0, metavar="S",
                   help="scratch station: the health window in seconds (default 10, minimum 10)")
    d.add_argument("--floor-ms", type=float, default=None, metavar="MS",
                   help="scratch station: the latency floor (default: the station's, 5 ms; a 3 x slowdown of a "
                        "1 ms operation adds 2 ms, which that floor calls no regression)")
    d.add_argument("--max-s", type=float, default=None, metavar="S",
                   help="give up after S seconds (default: the documented bound)")
    d.add_argument("--live", action="store_true",
                   help="drill the station on this data dir with its real settings and latch (needs --reason; "
                        "the station must not be running elsewhere)")
    d.add_argument("--reason", default="", help="why the live drill runs (goes to the audit log)")
    d.add_argument("--json", action="store_true", help="print JSON")


def _live_drill(args: Any, spec: FaultSpec, ops: Sequence[str], open_live: LiveStationFactory) -> DrillReport:
    from app.platform.paths import resolve_paths

    paths = resolve_paths(args.data_dir, args.db)  # the common --data-dir / --db of every command
    try:
        with open_live(paths) as station:
            return _drill_live_station(args, spec, ops, station)
    except DrillStationBusy as e:  # raised by the opener only, before the drill starts
        raise RolloutError(f"{e}: a live drill injects into the router of this process, so stop the station "
                           "first (its latch and settings are the ones the drill exercises)") from None


def _drill_live_station(args: Any, spec: FaultSpec, ops: Sequence[str], station: LiveDrillStation) -> DrillReport:
    from app.domain.audit import AuditEntry

    router = station.router
    for t in dict.fromkeys(TRACK_OF[op] for op in ops):
        ts = router.settings.track(t)
        if ts.target_percent == 0:
            why = f"rolled back ({ts.latch_reason})" if ts.latched else "at 0 % or off"
            raise RolloutError(f"the {t} track routes no call to the domain path ({why}), so the drill's "
                               f"fault would never be reached: set it to a stage first (`edge-station "
                               f"rollout resume` / `advance --track {t}`)")
    store = station.store
    with store.uow() as uow:
        cams = [c.id for c in uow.cameras.list() if c.id is not None]
    if not cams:
        raise RolloutError("the station has no cameras to drive the drill with")
    detail = {"fail": spec.fail_rate, "slow": spec.slow_factor, "ops": list(ops)}
    with store.uow() as uow:
        uow.audit.add(AuditEntry(op=OP_DRILL, outcome="started", actor="cli", reason=args.reason[:80],
                                 detail=detail))
        uow.commit()
    th = router.settings.thresholds
    bound = latch_bound_s(spec, th, 5.0)
    report = run_drill(router, workload_for(ops, cams), spec, bound_s=bound, max_s=args.max_s, live=True)
    if router.audit is not None:
        router.audit.flush()
    with store.uow() as uow:
        uow.audit.add(AuditEntry(op=OP_DRILL, outcome="passed" if report.passed else "failed", actor="cli",
                                 reason=args.reason[:80], detail=report.as_dict() | {"spec": detail}))
        uow.commit()
    return report


def cmd_drill(args: Any, store: Any = None, *, out: Any = None, err: Any = None,
              make_station: DrillStationFactory | None = None, open_live: LiveStationFactory | None = None) -> int:
    """``rollout drill``: 0 when the drill behaved as documented, 1 when not (or when the station it needs,
    ``make_station`` for a scratch one, ``open_live`` for ``--live``, is not available here), 2 on bad input.
    ``store`` is not used: a live drill opens the whole station on the data dir."""
    import json
    import sys

    out = out or sys.stdout
    err = err or sys.stderr
    ops = tuple(args.op or ("camera_status",))
    try:
        spec = FaultSpec(args.fail, args.slow, ops).validated()
        bad = [op for op in ops if op not in DRILL_OPERATIONS]
        if bad:
            raise RolloutSettingsError(f"drill --op {', '.join(bad)}: a drill drives only the read-only "
                                       f"operations {', '.join(DRILL_OPERATIONS)}")
        floor = args.floor_ms
        if floor is not None and not 0.0 <= floor <= 60_000.0:
            raise RolloutSettingsError(f"drill --floor-ms {floor:g} must be from 0 to 60000")
        if not 10.0 <= args.window <= 3600.0:
            raise RolloutSettingsError(f"drill --window {args.window:g} must be from 10 to 3600 seconds")
        if args.live and not args.reason.strip():
            raise RolloutSettingsError("drill --live needs --reason TEXT (it goes to the audit log)")
        router_log = logging.getLogger("app.rollout.router")
        level = router_log.level
        router_log.setLevel(logging.ERROR)  # one fallback warning per injected failure is noise here
        try:
            if args.live:
                if open_live is None:
                    raise RolloutError("no live station available here")
                report = _live_drill(args, spec, ops, open_live)
            else:
                if make_station is None:
                    raise RolloutError("no scratch station available here")
                report = drill_on_scratch(spec, ops=ops, window_s=args.window, max_s=args.max_s,
                                          floor_ms=floor, make_station=make_station)
        finally:
            router_log.setLevel(level)
    except RolloutSettingsError as e:
        print(f"edge-station: rollout drill: {e}", file=err)
        return 2
    except RolloutError as e:
        print(f"edge-station: rollout drill: {e}", file=err)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str), file=out)
    else:
        print("\n".join(report.lines()), file=out)
    return 0 if report.passed else 1
