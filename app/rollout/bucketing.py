"""The rollout's sticky, exact-share bucketing; it lives in :mod:`app.domain.bucketing` (pure
Python), where the fleet rollout (stations as keys, app.domain.fleet_rollout) uses it too."""

from __future__ import annotations

from app.domain.bucketing import Population, domain_count, key_hash

__all__ = ["Population", "domain_count", "key_hash"]
