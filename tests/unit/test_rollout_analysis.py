"""Health per operation and per track on synthetic windows from an injectable clock (no sleeping)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.rollout.analysis import (
    ALERT,
    INCONCLUSIVE,
    NOT_ENOUGH_TRAFFIC,
    OK,
    Z95,
    HealthState,
    calls_until_upper_at_most,
    health_series,
    judge,
    needs_lines,
    wilson,
)
from app.rollout.metrics import DOMAIN, LEGACY, RolloutMetrics
from app.rollout.settings import Thresholds

TH = Thresholds(window_s=300, min_samples=50)


class Clock:
    def __init__(self, t: float = 100_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def metrics(clock: Clock) -> RolloutMetrics:
    return RolloutMetrics(window_s=300, bucket_s=10, clock=clock)


def add(m: RolloutMetrics, op: str, path: str, n: int, ms: float, *, errors: int = 0, jitter: float = 0.1,
        rng: random.Random | None = None) -> None:
    """``n`` calls of ``op`` on ``path`` around ``ms`` milliseconds (+- ``jitter`` relative); the first
    ``errors`` failed and fell back."""
    rng = rng or random.Random(7)
    for i in range(n):
        lat = ms * (1 + rng.uniform(-jitter, jitter)) / 1000.0
        m.record(op, path, lat, error=i < errors, fallback=i < errors)


# ---------------------------------------------------------------- the bounds


def test_wilson_closed_forms():
    # all failures: the lower end is n / (n + z^2); none: the upper end is z^2 / (n + z^2)
    assert wilson(10, 10)[0] == pytest.approx(10 / (10 + Z95**2))
    assert wilson(0, 10)[1] == pytest.approx(Z95**2 / (10 + Z95**2))
    lo, hi = wilson(1, 12)
    assert lo == pytest.approx(0.01486, abs=1e-4) and hi == pytest.approx(0.35387, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_clean_calls_needed_to_show_an_error_rate_under_five_percent():
    # n >= z^2 (1 - p) / p = 72.99 clean calls: 73
    assert calls_until_upper_at_most(0, 0, 0.05) == 73
    assert wilson(0, 73)[1] <= 0.05 < wilson(0, 72)[1]
    assert calls_until_upper_at_most(0, 100, 0.05) == 0


# ---------------------------------------------------------------- error checks


def test_ten_failures_in_ten_calls_alert_at_once():
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 10, 1.0, errors=10)
    a = judge(m.summary(), TH, None, clock())  # a first look, no state
    assert a.verdict == ALERT and a.tracks["cameras"].verdict == ALERT
    (check,) = [c for c in a.op("camera_status").checks if c.status == "fail"]
    assert check.name == "error_rate" and "10/10" in check.message


def test_forty_nine_failures_in_forty_nine_calls_alert():
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 49, 1.0, errors=49)
    add(m, "camera_status", LEGACY, 49, 1.0)
    assert judge(m.summary(), TH, None, clock()).verdict == ALERT


def test_one_failure_in_twelve_calls_does_not_alert():
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 12, 1.0, errors=1)
    a = judge(m.summary(), TH, None, clock())
    assert a.verdict == INCONCLUSIVE  # 1/12: 1.5 %-35 %, neither above nor below 5 % for sure
    assert a.op("camera_status").checks[0].status == "inconclusive"


def test_a_single_early_failure_does_not_alert_below_min_failures():
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 2, 1.0, errors=2)  # 2/2: lower bound 34 %, but only 2 failures
    assert judge(m.summary(), TH, None, clock()).verdict == INCONCLUSIVE
    add(m, "camera_status", DOMAIN, 1, 1.0, errors=1)
    assert judge(m.summary(), TH, None, clock()).verdict == ALERT


def test_errors_are_judged_per_operation_not_pooled():
    # 8 failures of 10 probe calls drown in 500 clean status calls when pooled (1.6 %); per operation they alert
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 500, 1.0)
    add(m, "probe_camera", DOMAIN, 10, 300.0, errors=8)
    a = judge(m.summary(), TH, None, clock())
    assert a.op("probe_camera").verdict == ALERT and a.op("camera_status").verdict == OK
    assert a.verdict == ALERT


# ---------------------------------------------------------------- latency


MIXES = [  # (domain calls, legacy calls) per operation: the mixes that fooled a pooled P95
    {"camera_status": (200, 200), "probe_camera": (60, 60)},
    {"camera_status": (200, 60), "probe_camera": (60, 200)},   # domain probes more: pooled 299 x
    {"camera_status": (60, 200), "probe_camera": (200, 60)},   # the reverse
    {"camera_status": (500, 50), "probe_camera": (50, 500), "camera_logs": (80, 300)},
]
LATENCY = {"camera_status": 1.0, "probe_camera": 296.0, "camera_logs": 3.0}


@pytest.mark.parametrize("mix", MIXES)
def test_equal_paths_across_mixed_operations_never_alert(mix):
    clock = Clock()
    m = metrics(clock)
    state: HealthState | None = None
    rng = random.Random(1)
    for _ in range(6):  # six disjoint windows: more than the failure limit
        for op, (nd, nl) in mix.items():
            add(m, op, DOMAIN, nd, LATENCY[op], jitter=0.3, rng=rng)
            add(m, op, LEGACY, nl, LATENCY[op], jitter=0.3, rng=rng)
        a = judge(m.summary(), TH, state, clock())
        state = a.state
        assert a.verdict != ALERT, a.tracks["cameras"].reasons
        assert all(o.streak == 0 for o in a.tracks["cameras"].ops)
        clock.t += 301


@pytest.mark.parametrize("mix", MIXES[1:3])
def test_a_two_fold_slowdown_of_one_operation_hidden_in_a_mix_alerts_after_the_failure_limit(mix):
    clock = Clock()
    m = metrics(clock)
    state: HealthState | None = None
    verdicts = []
    for _ in range(3):
        for op, (nd, nl) in mix.items():
            slow = 2.0 if op == "camera_status" else 1.0
            add(m, op, DOMAIN, nd, 10.0 * slow if op == "camera_status" else LATENCY[op])
            add(m, op, LEGACY, nl, 10.0 if op == "camera_status" else LATENCY[op])
        a = judge(m.summary(), TH, state, clock())
        state = a.state
        verdicts.append(a.op("camera_status").verdict)
        clock.t += 301
    assert verdicts == [INCONCLUSIVE, INCONCLUSIVE, ALERT]  # windows 1 and 2 of 3 hold; the 3rd alerts
    assert a.op("probe_camera").verdict != ALERT
    assert health_series(a)["p95_ratio"] == pytest.approx(2.0, rel=0.1)


def test_the_failure_limit_counts_disjoint_windows_and_a_pass_resets_it():
    th = Thresholds(window_s=300, min_samples=20, failure_limit=3)
    clock = Clock()
    m = metrics(clock)
    state = None

    def look(d_ms: float) -> str:
        nonlocal state
        add(m, "camera_logs", DOMAIN, 30, d_ms)
        add(m, "camera_logs", LEGACY, 30, 10.0)
        a = judge(m.summary(), th, state, clock())
        state = a.state
        (lat,) = [c for c in a.op("camera_logs").checks if c.name == "latency"]
        return lat.status

    assert look(30.0) == "pending"  # window 1 of 3
    clock.t += 100
    assert look(30.0) == "pending"  # the same window again: not counted
    assert state.streaks["camera_logs"][0] == 1
    clock.t += 200
    assert look(30.0) == "pending"  # window 2
    clock.t += 300
    m.reset()
    assert look(10.0) == "pass"  # a passing window resets the count
    assert "camera_logs" not in state.streaks
    for _ in range(2):
        clock.t += 300
        m.reset()
        assert look(30.0) == "pending"
    clock.t += 300
    m.reset()
    assert look(30.0) == "fail"
    assert judge(m.summary(), th, state, clock()).verdict == ALERT


def test_a_difference_under_the_floor_is_never_a_regression():
    th = Thresholds(window_s=300, min_samples=50, failure_limit=1, latency_floor_ms=5.0)
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 100, 0.4)  # 4 x slower, but 0.3 ms
    add(m, "camera_status", LEGACY, 100, 0.1)
    a = judge(m.summary(), th, None, clock())
    (lat,) = [c for c in a.op("camera_status").checks if c.name == "latency"]
    assert lat.status == "pass" and "floor" in lat.message
    assert a.verdict == OK


def test_latency_needs_the_minimum_sample_on_each_path():
    th = Thresholds(window_s=300, min_samples=50, failure_limit=1)
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 100, 50.0)
    add(m, "camera_status", LEGACY, 49, 1.0)
    a = judge(m.summary(), th, None, clock())
    assert a.op("camera_status").verdict == INCONCLUSIVE
    assert a.op("camera_status").needs == {DOMAIN: 0, LEGACY: 1}
    add(m, "camera_status", LEGACY, 1, 1.0)
    assert judge(m.summary(), th, None, clock()).op("camera_status").verdict == ALERT


# ---------------------------------------------------------------- inconclusive, tracks


def test_a_track_inconclusive_too_long_warns_and_says_what_it_needs():
    th = Thresholds(window_s=300, min_samples=50, inconclusive_warn_s=3600)
    clock = Clock()
    m = metrics(clock)
    state = None
    for step in range(13):  # a trickle: 5 clean domain calls per 5 minutes
        add(m, "camera_status", DOMAIN, 5, 1.0)
        a = judge(m.summary(), th, state, clock(), active={"cameras": True, "rules": False})
        state = a.state
        cams = a.tracks["cameras"]
        if step < 12:
            assert cams.warning is None and health_series(a)["health_inconclusive"] == 0
        clock.t += 300
    assert cams.verdict == INCONCLUSIVE and cams.warning and NOT_ENOUGH_TRAFFIC in cams.warning
    assert a.tracks["rules"].warning is None  # not routing to the domain path: nothing to judge
    assert health_series(a)["health_inconclusive"] == 1.0
    assert a.verdict != ALERT
    needs = a.needs()
    assert needs["camera_status"][DOMAIN] > 0 and needs["create_rule"][DOMAIN] == 73
    lines = needs_lines(a)
    assert any(line.split()[:2] == ["cameras", "camera_status"] for line in lines)
    # enough traffic makes it conclusive and ends the hold
    add(m, "camera_status", DOMAIN, 200, 1.0)
    a = judge(m.summary(), th, state, clock(), active={"cameras": True})
    assert a.tracks["cameras"].verdict == OK and a.tracks["cameras"].warning is None
    assert "cameras" not in a.state.inconclusive_since


def test_a_track_verdict_is_the_worst_of_its_operations_and_tracks_are_separate():
    clock = Clock()
    m = metrics(clock)
    add(m, "camera_status", DOMAIN, 200, 1.0)
    add(m, "create_rule", DOMAIN, 10, 5.0, errors=10)
    a = judge(m.summary(), TH, None, clock())
    assert a.tracks["rules"].verdict == ALERT and a.tracks["cameras"].verdict == OK
    assert a.verdict == ALERT


# ---------------------------------------------------------------- the window's merged buckets


def test_the_incremental_window_equals_a_merge_of_every_bucket():
    from app.rollout.metrics import _stats

    clock = Clock(0.0)
    m = RolloutMetrics(window_s=60, bucket_s=5, clock=clock)
    rng = random.Random(5)
    for step in range(400):
        clock.t += rng.choice([0.3, 1.0, 2.5, 7.0, 31.0])  # sometimes a whole window passes at once
        for _ in range(rng.randint(0, 4)):
            m.record(rng.choice(["camera_status", "probe_camera", "create_rule"]), rng.choice([DOMAIN, LEGACY]),
                     rng.uniform(0.001, 0.2), error=rng.random() < 0.1)
        if step % 3:
            continue
        got = m.summary()
        first, last = int((clock.t - 60) // 5) + 1, int(clock.t // 5)
        cells: dict = {}
        for idx, bucket in m._buckets.items():
            if first <= idx <= last:
                for key, cell in bucket.items():
                    cells.setdefault(key, []).append(cell)
        want = {key: _stats(cs) for key, cs in cells.items()}
        assert {(op, p): st for op, paths in got.per_op.items() for p, st in paths.items()} == want
        for path in (DOMAIN, LEGACY):
            pooled = _stats([c for (_, p), cs in cells.items() if p == path for c in cs])
            assert got.total.get(path, pooled) == pooled


@settings(max_examples=40, deadline=None, derandomize=True)
@given(mix=st.dictionaries(st.sampled_from(sorted(LATENCY)), st.tuples(st.integers(0, 300), st.integers(0, 300)),
                           min_size=1))
def test_equal_paths_never_alert_at_any_mix(mix):
    clock = Clock()
    m = metrics(clock)
    state = None
    rng = random.Random(len(mix))
    for _ in range(4):
        for op, (nd, nl) in mix.items():
            add(m, op, DOMAIN, nd, LATENCY[op], jitter=0.3, rng=rng)
            add(m, op, LEGACY, nl, LATENCY[op], jitter=0.3, rng=rng)
        a = judge(m.summary(), TH, state, clock())
        state = a.state
        assert a.verdict != ALERT, a.tracks["cameras"].reasons
        clock.t += 301
