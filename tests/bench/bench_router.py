"""Router overhead: the same operation called directly and through the router, in one run.

Run: ``.venv/bin/python tests/bench/bench_router.py [--rounds 30] [--calls 200] [--cameras 16]``

0. The status reads of a real station with ``--cameras`` cameras whose workers run (lavfi test
   sources at 2 fps, so that the box is not busy decoding): ``list_status`` and ``camera_status``
   through ``Station.call`` (the router, its metrics and its audit) on the legacy and on the
   domain path (routed by the percent: 0, then 100), against the direct in-memory read of the same state (``Station.live_status``: the
   station's own camera list and the supervisor's snapshot, no router, no store). Paired calls,
   order alternating; the figure is the median of per-round median ratios, with min-max (targets:
   <= 1.1 x, and <= 100 us for ``list_status``). Then how many audit rows those calls wrote, and
   how many calls they stand for (read-only calls are aggregated).
1. A cheap real operation: ``camera_status`` of the real domain (and legacy) implementation on
   a scratch station (temporary SQLite, real supervisor; the camera is stopped so no worker
   runs). Rounds alternate direct and routed batches; the figures are the median per-call times
   and what the router adds (target <= 10 us; the call itself is an in-memory read of a
   microsecond, so the ratio says little).
2. Recording cost: a no-op operation direct vs routed; the difference is what the router adds
   per call (decision, metrics with DDSketch, the read counted for the audit, the side-effect call
   context, the periodic health checks that fall into the run), plus the audit's deferred work per
   read (the flusher thread's CPU time to aggregate and write them) - target <= 10 us.
3. Per-operation health evaluation: one ``check_health`` (the health window of 13 operations x 2
   paths: counters, and a P95 where a latency check reads it; Wilson bounds, latency per
   operation) on a full window; and recording plus every
   deferred evaluation per call (routed calls check every 5 s, the sampler's tick once a second,
   each window judged once per interval), simulated at 10, 100 and 1000 calls/s on a virtual
   clock against the direct calls of the same run - target <= 10 us.
4. The fault drill on a scratch station (real workers, real clock, 10 s window): time from the
   injection to the auto-rollback latch, median of ``--drills`` runs, for "fail 20 %" and for
   "slow 3 x" on one operation (1 ms floor: the operations take about 1 ms).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.domain.camera import CameraState  # noqa: E402
from app.domain.operations import CameraRef, CameraStatus  # noqa: E402
from app.rollout import AuditLog, Router  # noqa: E402
from app.rollout.decision import store_keys_provider  # noqa: E402

#: state set up for a test of something else than the gate: the gate is tested in test_rollout_gate.py
SETUP = "test setup"


def compare(direct, routed, req, rounds: int, calls: int) -> tuple[float, float, float]:
    """Paired timing: each iteration times one direct and one routed call (order alternating);
    the medians of the individual call times are robust against load spikes of a shared machine."""
    clock = time.perf_counter_ns
    for _ in range(calls):  # warm-up
        direct(req)
        routed(req)
    d: list[int] = []
    r: list[int] = []
    for i in range(rounds * calls):
        first, second, a, b = (direct, routed, d, r) if i % 2 else (routed, direct, r, d)
        t0 = clock()
        first(req)
        t1 = clock()
        second(req)
        t2 = clock()
        a.append(t1 - t0)
        b.append(t2 - t1)
    md, mr = statistics.median(d) / 1e9, statistics.median(r) / 1e9
    return md, mr, mr / md


class Noop:
    _status = CameraStatus(camera_id=1, name="noop", state=CameraState.STOPPED, active=True)

    def camera_status(self, req: CameraRef) -> CameraStatus:
        return self._status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--drills", type=int, default=5, help="drill runs per case (0: skip the drills)")
    ap.add_argument("--cameras", type=int, default=16, help="cameras of the status-read bench (0: skip it)")
    a = ap.parse_args(argv)

    from app.station import scratch_station

    if a.cameras:
        status_reads(a.cameras, a.rounds, a.calls)
    print(f"router overhead benchmark: {a.rounds} rounds x {a.calls} calls per batch, Python {sys.version.split()[0]}")
    with scratch_station() as st:
        store = st.domain._store  # the scratch station's own database
        req = CameraRef(st.active_camera)
        for pct, impl, label in ((100, st.domain, "domain"), (0, st.legacy, "legacy")):
            router = Router(st.legacy, st.domain, store, store_keys_provider(store), env={},
                            audit=AuditLog(store, flush_interval=1.0))
            router.set(use_domain=pct > 0, percent=pct, actor="bench", override_reason=SETUP)
            router.set_options({"shadow_rate": 0.0})
            assert router.decide("camera_status", req).path == label
            md, mr, ratio = compare(impl.camera_status, router.camera_status, req, a.rounds, a.calls)
            router.close()
            added = (mr - md) * 1e6
            verdict = "ok" if added <= 10 else "ABOVE TARGET"
            print(f"camera_status on {label:<6}: direct {md * 1e6:8.1f} us  routed {mr * 1e6:8.1f} us  "
                  f"median ratio {ratio:.3f}: the router adds {added:.1f} us (target <= 10 us: {verdict})")

        noop = Noop()
        router = Router(noop, noop, store, store_keys_provider(store), env={}, audit=AuditLog(store, background=False))  # type: ignore[arg-type]
        router.set(use_domain=True, percent=50, actor="bench", override_reason=SETUP)
        router.set_options({"shadow_rate": 0.0})
        audit = router.audit
        assert audit is not None
        audit.flush()
        written0 = audit.aggregated
        md, mr, _ = compare(noop.camera_status, router.camera_status, req, a.rounds, a.calls * 5)
        # the audit's deferred work (aggregating and writing the reads) runs on the flusher thread:
        # charge it to the calls too, as CPU time of the flushing thread
        t0 = time.thread_time()
        audit.flush()
        flush_s = time.thread_time() - t0
        n_reads = audit.aggregated - written0
        deferred_us = flush_s / max(n_reads, 1) * 1e6
        cost = (mr - md) * 1e6 + deferred_us
        print(f"recording cost (no-op op): direct {md * 1e6:.2f} us, routed {mr * 1e6:.2f} us, audit flush "
              f"{deferred_us:.2f} us per read ({n_reads} reads in the last flush) -> {cost:.2f} us per call "
              f"(target <= 10 us: {'ok' if cost <= 10 else 'ABOVE TARGET'})")
        router.close()
        health_cost()
        for rate in (10, 100, 1000):
            deferred(rate)
    if a.drills:
        drill_times(a.drills)
    return 0


def paired_rounds(direct, routed, rounds: int, calls: int) -> tuple[float, float, list[float]]:
    """Median per-call time of each side over all rounds, and each round's median ratio."""
    clock = time.perf_counter_ns
    for _ in range(calls):
        direct()
        routed()
    d_all: list[int] = []
    r_all: list[int] = []
    ratios: list[float] = []
    for _ in range(rounds):
        d: list[int] = []
        r: list[int] = []
        for i in range(calls):
            first, second, x, y = (direct, routed, d, r) if i % 2 else (routed, direct, r, d)
            t0 = clock()
            first()
            t1 = clock()
            second()
            t2 = clock()
            x.append(t1 - t0)
            y.append(t2 - t1)
        ratios.append(statistics.median(r) / statistics.median(d))
        d_all += d
        r_all += r
    return statistics.median(d_all) / 1e3, statistics.median(r_all) / 1e3, ratios


def status_reads(n: int, rounds: int, calls: int) -> None:
    import tempfile

    from app.domain.camera import Camera
    from app.domain.operations import ListStatus
    from app.domain.worker import WorkerState
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    with tempfile.TemporaryDirectory() as tmp:
        st = Station(StationOptions(paths=resolve_paths(tmp), seed_demo=False, autostart=False)).open()
        try:
            for i in range(n):
                st.add_camera(Camera(name=f"cam {i + 1}", source="test://moving", max_fps=2))
            st.autostart(actor="bench")
            sup = st.parts().supervisor
            deadline = time.monotonic() + 120
            while sum(w.state is WorkerState.RUNNING and w.fps is not None for w in sup.statuses().values()) < n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {n} workers did not all run within 120 s")
                time.sleep(0.2)
            cid = st.cameras()[n // 2].id
            assert cid is not None
            audit = st.parts().router.audit
            assert audit is not None
            audit.flush()
            rows_before, calls_before = _audit_rows(st)
            print(f"status reads, {n} cameras running, {rounds} rounds x {calls} paired calls; "
                  "baseline: Station.live_status() (the same state read in memory, no router)")
            router = st.parts().router
            router.set_options({"shadow_rate": 0.0})
            for path in ("legacy", "domain"):
                router.set(use_domain=path == "domain", percent=100 if path == "domain" else 0, actor="bench",
                           override_reason=SETUP)
                assert router.decide("list_status", ListStatus()).path == path
                req_all, req_one = ListStatus(), CameraRef(cid)

                def live_all():
                    return st.live_status()

                def routed_all(req=req_all):
                    return st.call("list_status", req, actor="bench")

                def live_one(cid=cid):
                    return next(s for s in st.live_status() if s.camera_id == cid)

                def routed_one(req=req_one):
                    return st.call("camera_status", req, actor="bench")

                assert [x.camera_id for x in routed_all().items] == [x.camera_id for x in live_all()]
                for label, direct, routed in (("list_status", live_all, routed_all),
                                              ("camera_status", live_one, routed_one)):
                    md, mr, ratios = paired_rounds(direct, routed, rounds, calls)
                    med = statistics.median(ratios)
                    target = "ok" if med <= 1.1 and (label != "list_status" or mr <= 100) else "ABOVE TARGET"
                    print(f"  {label:<14} {path:<6}: in-memory {md:7.1f} us  routed {mr:7.1f} us  "
                          f"ratio median {med:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})  [{target}]")
            audit.flush()
            rows_after, calls_after = _audit_rows(st)
            made = 4 * rounds * calls + 4 * calls  # the routed calls above, warm-up included
            print(f"  audit: {made} routed reads wrote {rows_after - rows_before} rows standing for "
                  f"{calls_after - calls_before} calls (read-only calls aggregated per interval)")
        finally:
            st.close()


def _audit_rows(st) -> tuple[int, int]:
    with st.parts().store.uow() as uow:
        entries = uow.audit.recent(limit=1_000_000)
    return len(entries), sum(e.calls for e in entries if e.op in ("list_status", "camera_status"))


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _noop_router(clock: _Clock) -> tuple[Router, Noop]:
    from app.rollout.metrics import RolloutMetrics

    noop = Noop()
    router = Router(noop, noop, None, lambda: {"camera": [f"camera:{i}" for i in range(1, 9)]},  # type: ignore[arg-type]
                    env={"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "50"}, clock=clock,
                    metrics=RolloutMetrics(window_s=300, clock=clock))
    router._settings = router._settings.with_changes(shadow_rate=0.0)
    return router, noop


def health_cost(repeats: int = 100) -> None:
    """One ``check_health`` (summary + per-operation verdict) on a window with all 13 operations on
    both paths, and one summary after the window moved on by a bucket (the incremental merge)."""
    import random

    from app.domain.operations import OPERATIONS
    from app.rollout.metrics import DOMAIN, LEGACY

    clock = _Clock()
    router, _ = _noop_router(clock)
    rng = random.Random(3)
    for _ in range(300):
        clock.t += 1.0
        for op in OPERATIONS:
            for path in (DOMAIN, LEGACY):
                router.metrics.record(op, path, rng.uniform(0.001, 0.003))
    router.metrics.summary()
    times, steps = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        router.check_health()
        times.append(time.perf_counter() - t0)
    for _ in range(30):
        clock.t += router.metrics.bucket_s
        router.metrics.record("camera_status", DOMAIN, 0.001)
        t0 = time.perf_counter()
        router.metrics.summary()
        steps.append(time.perf_counter() - t0)
    router.close()
    print(f"health evaluation (13 ops x 2 paths, full 300 s window): median {statistics.median(times) * 1e3:.3f} ms "
          f"per check_health; window moved on one bucket: median {statistics.median(steps) * 1e3:.3f} ms, "
          f"max {max(steps) * 1e3:.1f} ms (the front rebuilt once per window)")


def deferred(rate: int, seconds: int = 600) -> None:
    """Recording plus every deferred health evaluation, per call: ``rate`` routed calls a virtual
    second for ``seconds`` (routed calls check health every 5 s, the sampler ticks once a second)
    against the same calls made directly, in the same run. CPU time of this thread (``thread_time``),
    so the figure does not count the time a shared, loaded machine gives to other processes."""
    reqs = [CameraRef(i) for i in range(1, 9)]
    clock = _Clock()
    router, noop = _noop_router(clock)
    step = 1.0 / rate
    routed = direct = 0.0
    for _ in range(seconds):
        t0 = time.thread_time()
        for i in range(rate):
            noop.camera_status(reqs[i % 8])
        t1 = time.thread_time()
        for i in range(rate):
            router.camera_status(reqs[i % 8])
            clock.t += step
        router.health_tick()  # the station's sampler, once a second
        t2 = time.thread_time()
        direct += t1 - t0
        routed += t2 - t1
    router.close()
    n = rate * seconds
    cost = (routed - direct) / n * 1e6
    print(f"recording + deferred health at {rate:>4} calls/s ({seconds} s simulated): direct {direct / n * 1e6:.2f} us, "
          f"routed {routed / n * 1e6:.2f} us -> {cost:.2f} us per call "
          f"(target <= 10 us: {'ok' if cost <= 10 else 'ABOVE TARGET'})")


def drill_times(n: int) -> None:
    from app.rollout.drill import FaultSpec, drill_on_scratch
    from app.station import scratch_drill_station

    cases = [("fail 20 % on camera_status", FaultSpec(fail_rate=0.2), ("camera_status",)),
             ("slow 3 x on camera_snapshot", FaultSpec(slow_factor=3.0, ops=("camera_snapshot",)),
              ("camera_status", "camera_snapshot"))]
    # Each injected failure's fallback is logged with its traceback (thousands a drill): the
    # figures are the latch times, so the router's warnings stay out of the bench's output.
    logging.getLogger("app.rollout.router").setLevel(logging.ERROR)
    with scratch_drill_station(4) as st:
        for label, spec, ops in cases:
            latch = []
            for _ in range(n):
                r = drill_on_scratch(spec, ops=ops, station=st, floor_ms=1.0)
                latch.append(r.time_to_latch_s if r.latched else float("inf"))
            med = statistics.median(latch)
            print(f"drill {label}: injection -> latch median {med:.1f} s of {n} "
                  f"(runs: {', '.join(f'{t:.1f}' for t in latch)}; bound {r.bound_s:g} s, window {r.window_s:g} s)")


if __name__ == "__main__":
    raise SystemExit(main())
