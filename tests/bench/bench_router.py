"""Router overhead: the same operation called directly and through the router, in one run.

Run: ``.venv/bin/python tests/bench/bench_router.py [--rounds 30] [--calls 200]``

1. A cheap real operation: ``camera_status`` of the real domain (and legacy) implementation on
   a scratch station (temporary SQLite, real supervisor; the camera is stopped so no worker
   runs). Rounds alternate direct and routed batches; the figure is the ratio of the median
   per-call times (target <= 1.05).
2. Recording cost: a no-op operation direct vs routed; the difference is what the router adds
   per call (decision, metrics with DDSketch, buffered audit entry) - target <= 10 us.
"""

from __future__ import annotations

import argparse
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
    a = ap.parse_args(argv)

    from app.station import scratch_station

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
            verdict = "ok" if ratio <= 1.05 else "ABOVE TARGET"
            print(f"camera_status on {label:<6}: direct {md * 1e6:8.1f} us  routed {mr * 1e6:8.1f} us  "
                  f"median ratio {ratio:.3f} (target <= 1.05: {verdict})")

        noop = Noop()
        router = Router(noop, noop, store, store_keys_provider(store), env={}, audit=AuditLog(store))  # type: ignore[arg-type]
        router.set(use_domain=True, percent=50, actor="bench", override_reason=SETUP)
        router.set_options({"shadow_rate": 0.0})
        md, mr, _ = compare(noop.camera_status, router.camera_status, req, a.rounds, a.calls * 5)
        router.close()
        cost = (mr - md) * 1e6
        print(f"recording cost (no-op op): direct {md * 1e6:.2f} us, routed {mr * 1e6:.2f} us -> "
              f"{cost:.2f} us per call (target <= 10 us: {'ok' if cost <= 10 else 'ABOVE TARGET'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
