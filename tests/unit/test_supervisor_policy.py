"""Backoff arithmetic, the start-rate window and the policy's validation."""

from __future__ import annotations

import random

import pytest

from app.supervisor import RestartPolicy, StartRateLimiter, backoff_delay


def test_backoff_doubles_from_initial_and_caps_at_max() -> None:
    pol = RestartPolicy(jitter=0.0)  # 1 s doubling to 60 s
    got = [backoff_delay(pol, n) for n in range(1, 10)]
    assert got == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_backoff_handles_huge_failure_counts() -> None:
    pol = RestartPolicy(jitter=0.0, backoff_initial=0.5, backoff_max=7.0, backoff_factor=3.0)
    assert backoff_delay(pol, 10_000) == 7.0


def test_backoff_jitter_stays_within_the_fraction_and_varies() -> None:
    pol = RestartPolicy(jitter=0.1)
    rng = random.Random(42)
    samples = [backoff_delay(pol, 3, rng) for _ in range(500)]
    assert all(3.6 <= s <= 4.4 for s in samples)
    assert max(samples) - min(samples) > 0.6  # actually spread, not constant
    assert 3.9 < sum(samples) / len(samples) < 4.1  # centred on the nominal delay


def test_backoff_rejects_zero_failures() -> None:
    with pytest.raises(ValueError, match="failures must be >= 1"):
        backoff_delay(RestartPolicy(), 0)


def test_rate_limiter_sliding_window() -> None:
    lim = StartRateLimiter(limit=3, window=10.0)
    for t in (0.0, 1.0, 2.0):
        assert lim.allowed(t)
        lim.record(t)
    assert not lim.allowed(5.0)
    assert lim.count(5.0) == 3
    assert lim.allowed(10.0)  # the start at t=0 left the window
    lim.record(10.0)
    assert not lim.allowed(10.5)
    lim.reset()
    assert lim.allowed(10.5) and lim.count(10.5) == 0


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"backoff_initial": 5.0, "backoff_max": 1.0}, "backoff_initial <= backoff_max"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
        ({"jitter": 1.5}, "jitter"),
        ({"rate_limit_starts": 0}, "rate limit"),
        ({"stop_timeout": 0}, "stop_timeout"),
        ({"heartbeat_timeout": -1}, "heartbeat_timeout"),
    ],
)
def test_policy_validation_names_the_problem(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestartPolicy(**kw)


def test_default_policy_matches_the_design() -> None:
    pol = RestartPolicy()
    assert (pol.backoff_initial, pol.backoff_max, pol.backoff_factor) == (1.0, 60.0, 2.0)
    assert (pol.rate_limit_starts, pol.rate_limit_window) == (5, 60.0)
    assert pol.stable_after == 60.0 and pol.failed_retry_interval == 300.0
