"""Sticky, exact-share bucketing of routing keys.

The keys of one population (all cameras, all rules; or all stations of a fleet,
app.domain.fleet_rollout) are ranked by a stable hash of ``salt + key`` (BLAKE2b, 64 bits);
the salt is persisted (per station for cameras and rules, fleet-wide for stations), so the
ranking survives restarts. At ``p`` percent the first ``round_half_up(p * N / 100)``
keys of the ranking go to the domain path, and at least one key when ``p > 0`` (a stage
with no key on the domain path would collect no evidence: 3 rules at 10 % -> 1). Therefore:

* the actual share over the current keys is the target as closely as N allows
  (8 cameras at 25 % -> exactly 2),
* the same keys are chosen after a restart (same salt, same keys),
* raising the percent only adds keys (a key on the domain path at 10 % stays there).

A key that is **not** in the current population (an unknown camera id, the name
of a rule being created) is ranked as if it joined the population: it goes to the
domain path when its rank among ``population + {key}`` is below
``round_half_up(p * (N + 1) / 100)``. That rule is just as sticky and monotonic.
Adding or removing keys re-ranks only around them: a key keeps its hash, so a
change of population moves at most the keys next to the cut.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable


def key_hash(salt: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest(), "big")


def domain_count(percent: int, n: int) -> int:
    """How many of ``n`` keys go to the domain path at ``percent`` (round half up, at least one)."""
    if percent <= 0 or n <= 0:
        return 0
    if percent >= 100:
        return n
    return max(1, (percent * n * 2 + 100) // 200)


class Population:
    """One population of keys ranked for one salt; answers "is this key on the domain path at p %?"."""

    __slots__ = ("_cache", "_hashes", "_ranked", "_salt", "keys")

    def __init__(self, salt: str, keys: Iterable[str]):
        self._salt = salt
        self.keys = frozenset(keys)
        ranked = sorted((key_hash(salt, k), k) for k in self.keys)
        self._hashes = [h for h, _ in ranked]
        self._cache: dict[int, frozenset[str]] = {}
        self._ranked = [k for _, k in ranked]

    def ranked(self) -> list[str]:
        """The keys in domain-first order."""
        return list(self._ranked)

    def domain_keys(self, percent: int) -> frozenset[str]:
        got = self._cache.get(percent)
        if got is None:
            got = frozenset(self._ranked[: domain_count(percent, len(self._ranked))])
            self._cache[percent] = got
        return got

    def rank_of(self, key: str) -> int:
        """The 0-based rank of ``key``: its place in the ranking, or where it would be inserted."""
        return bisect.bisect_left(self._hashes, key_hash(self._salt, key))

    def is_domain(self, key: str, percent: int) -> bool:
        if percent <= 0:
            return False
        if percent >= 100:
            return True
        if key in self.keys:
            return key in self.domain_keys(percent)
        return self.rank_of(key) < domain_count(percent, len(self._ranked) + 1)

    def __len__(self) -> int:
        return len(self._ranked)
