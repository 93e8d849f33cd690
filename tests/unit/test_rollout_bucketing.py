"""Bucketing properties: exact share, sticky, monotonic as the percent rises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.rollout.bucketing import Population, domain_count

keys_st = st.lists(st.integers(min_value=1, max_value=10_000), min_size=0, max_size=60, unique=True).map(
    lambda ids: [f"camera:{i}" for i in ids])
salt_st = st.text(min_size=1, max_size=16)
pct_st = st.integers(min_value=0, max_value=100)


@given(keys_st, salt_st, pct_st)
def test_exact_share_over_the_current_keys(keys, salt, p):
    pop = Population(salt, keys)
    on = [k for k in keys if pop.is_domain(k, p)]
    assert len(on) == domain_count(p, len(keys))
    if p > 0 and keys and p * len(keys) < 50:
        assert len(on) == 1  # at least one key at a stage above 0 (a stage with none collects no evidence)
    else:
        assert abs(len(on) - p * len(keys) / 100) <= 0.5


@given(keys_st, salt_st, pct_st, pct_st)
def test_monotonic_a_rise_only_adds_keys(keys, salt, p1, p2):
    lo, hi = sorted((p1, p2))
    pop = Population(salt, keys)
    assert pop.domain_keys(lo) <= pop.domain_keys(hi)


@given(keys_st, salt_st, pct_st, st.permutations(list(range(60))))
def test_sticky_same_salt_and_keys_same_choice_in_any_order(keys, salt, p, perm):
    shuffled = [keys[i] for i in perm if i < len(keys)]
    assert Population(salt, keys).domain_keys(p) == Population(salt, shuffled).domain_keys(p)


@given(keys_st, salt_st, st.integers(min_value=1, max_value=99_999), pct_st, pct_st)
def test_unknown_key_is_sticky_and_monotonic(keys, salt, extra, p1, p2):
    key = f"camera:x{extra}"
    lo, hi = sorted((p1, p2))
    pop = Population(salt, keys)
    assert pop.is_domain(key, lo) == Population(salt, keys).is_domain(key, lo)
    if pop.is_domain(key, lo):
        assert pop.is_domain(key, hi)
    assert not pop.is_domain(key, 0) and pop.is_domain(key, 100)


def test_eight_cameras_at_25_percent_is_exactly_two_and_they_stay_at_50():
    keys = [f"camera:{i}" for i in range(1, 9)]
    at25 = Population("station-salt", keys).domain_keys(25)
    assert len(at25) == 2
    at50 = Population("station-salt", keys).domain_keys(50)
    assert len(at50) == 4 and at25 <= at50


@settings(max_examples=50)
@given(salt_st)
def test_stages_nest(salt):
    pop = Population(salt, [f"camera:{i}" for i in range(1, 41)])
    chain = [pop.domain_keys(p) for p in (0, 10, 25, 50, 100)]
    assert [len(c) for c in chain] == [0, 4, 10, 20, 40]
    assert all(a <= b for a, b in zip(chain, chain[1:], strict=False))
