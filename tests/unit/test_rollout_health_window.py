"""The health check's own window (``RolloutMetrics.health_window``) holds the figures the checks
read exactly as the full ``summary`` does, while the window moves on bucket by bucket, calls
expire from it and the clock goes back; so the per-operation verdicts are the same on both."""

from __future__ import annotations

import random

from app.rollout.analysis import HealthState, judge
from app.rollout.metrics import DOMAIN, LEGACY, RolloutMetrics
from app.rollout.settings import Thresholds


class Clock:
    def __init__(self, t: float = 10_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _same_figures(m: RolloutMetrics, min_samples: int) -> None:
    full = m.summary(60.0)
    light = m.health_window(60.0, min_samples)
    assert set(light.per_op) == set(full.per_op)
    for op, paths in full.per_op.items():
        judged = all(paths.get(p) is not None and paths[p].calls >= min_samples for p in (DOMAIN, LEGACY))
        for path, ps in paths.items():
            lp = light.per_op[op][path]
            assert (lp.calls, lp.errors, lp.fallbacks, lp.successes, lp.answers) == (
                ps.calls, ps.errors, ps.fallbacks, ps.successes, ps.answers), (op, path)
            assert lp.p95_ms == (ps.p95_ms if judged else None), (op, path)
    assert (light.shadow_calls, light.shadow_mismatches) == (full.shadow_calls, full.shadow_mismatches)


def test_health_window_matches_the_summary_as_the_window_moves_and_calls_expire():
    clock = Clock()
    m = RolloutMetrics(window_s=60.0, bucket_s=5.0, clock=clock)
    rng = random.Random(7)
    ops = ("camera_status", "probe_camera", "list_status")
    checked_p95 = 0
    for step in range(120):  # 2 s steps: every bucket, the front rebuilt twice, calls leaving the window
        clock.t += 2.0
        if step < 90:  # then silence: the window empties while the checks go on
            for _ in range(rng.randrange(0, 12)):
                op = rng.choice(ops)
                path = rng.choice((DOMAIN, LEGACY))
                slow = 3.0 if op == "probe_camera" and path == DOMAIN else 1.0
                m.record(op, path, rng.uniform(0.001, 0.004) * slow, error=rng.random() < 0.05,
                         success=rng.random() > 0.03)
            if step % 7 == 0:
                m.record_shadow(mismatch=step % 14 == 0)
        _same_figures(m, min_samples=10)
        checked_p95 += sum(1 for paths in m.health_window(60.0, 10).per_op.values()
                           for ps in paths.values() if ps.p95_ms is not None)
        if step == 60:
            clock.t -= 7.0  # the clock went back: completed buckets may change again
    assert checked_p95 > 100  # the latency figures were compared, not only the counters
    assert m.health_window(60.0, 10).per_op == {}  # 60 s of silence: every call expired


def test_the_verdict_on_the_health_window_is_the_verdict_on_the_summary():
    clock = Clock()
    m = RolloutMetrics(window_s=60.0, bucket_s=5.0, clock=clock)
    th = Thresholds(window_s=60.0, min_samples=20, failure_limit=2, latency_floor_ms=0.5)
    state_full = state_light = HealthState()
    verdicts = set()
    for step in range(80):
        clock.t += 2.5
        for i in range(6):
            m.record("camera_status", DOMAIN, 0.006 if step > 30 else 0.002, error=step > 60 and i % 2 == 0)
            m.record("camera_status", LEGACY, 0.002)
            m.record("list_status", DOMAIN, 0.001)
        full = judge(m.summary(60.0), th, state_full, clock.t, ["cameras"])
        light = judge(m.health_window(60.0, th.min_samples), th, state_light, clock.t, ["cameras"])
        assert light == full, step
        state_full, state_light = full.state, light.state
        verdicts.add(full.verdict)
    assert verdicts == {"ok", "inconclusive", "alert"}  # passing, a latency streak pending, failing
