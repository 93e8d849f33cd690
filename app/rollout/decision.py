"""The routing decision: rollback latch -> force -> master toggle -> percent (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.rollout.bucketing import Population
from app.rollout.metrics import DOMAIN, LEGACY
from app.rollout.settings import RolloutSettings


class Force(StrEnum):
    """A per-call override of the path. ``NONE`` is the same as passing no force."""

    DOMAIN = "domain"
    LEGACY = "legacy"
    NONE = "none"


# Reasons (stable strings; they go to the audit log's ``reason`` column)
R_LATCH = "rollback_latch"
R_FORCE_DOMAIN = "force_domain"
R_FORCE_LEGACY = "force_legacy"
R_OFF = "domain_off"
R_PERCENT_IN = "percent_in"
R_PERCENT_OUT = "percent_out"


@dataclass(frozen=True)
class Decision:
    """Which path a call took and why. ``path`` is the chosen path, ``served_by`` the one
    that produced the answer (``legacy`` after a fallback)."""

    path: str
    reason: str
    key: str = ""
    percent: int = 0
    fallback: bool = False
    fallback_cause: str = ""

    @property
    def served_by(self) -> str:
        return LEGACY if self.fallback else self.path

    @property
    def forced(self) -> bool:
        return self.reason in (R_FORCE_DOMAIN, R_FORCE_LEGACY)

    def describe(self) -> str:
        text = f"{self.path} ({self.reason}"
        if self.reason in (R_PERCENT_IN, R_PERCENT_OUT):
            text += f" at {self.percent} %"
        text += ")"
        if self.fallback:
            text += f", fell back to legacy after {self.fallback_cause}"
        return text


POP_CAMERA = "camera"
POP_RULE = "rule"
POP_STATION = "station"
STATION_KEY = "station:list_status"


def routing_key(op: str, req: Any) -> tuple[str, str]:
    """``(population, key)`` of a call: cameras by id, rules by id (update) or name (create)."""
    if op == "create_rule":
        return POP_RULE, f"rule:{req.rule.name}"
    if op == "update_rule":
        return POP_RULE, f"rule:{req.rule_id}"
    if op == "list_status":
        return POP_STATION, STATION_KEY
    return POP_CAMERA, f"camera:{req.camera_id}"


def decide(settings: RolloutSettings, population: Population, key: str, force: Force | str | None = None) -> Decision:
    """Apply the decision order to one key."""
    if settings.latched:
        return Decision(LEGACY, R_LATCH, key)
    if force is not None:
        force = Force(force)
        if force is Force.DOMAIN:
            return Decision(DOMAIN, R_FORCE_DOMAIN, key)
        if force is Force.LEGACY:
            return Decision(LEGACY, R_FORCE_LEGACY, key)
    if not settings.use_domain:
        return Decision(LEGACY, R_OFF, key)
    p = settings.percent
    if population.is_domain(key, p):
        return Decision(DOMAIN, R_PERCENT_IN, key, p)
    return Decision(LEGACY, R_PERCENT_OUT, key, p)


KeysProvider = Callable[[], Mapping[str, Iterable[str]]]


def build_populations(salt: str, keys: Mapping[str, Iterable[str]]) -> dict[str, Population]:
    pops = {name: Population(salt, ks) for name, ks in keys.items()}
    pops.setdefault(POP_CAMERA, Population(salt, ()))
    pops.setdefault(POP_RULE, Population(salt, ()))
    pops[POP_STATION] = Population(salt, (STATION_KEY,))
    return pops


def store_keys_provider(store: Any) -> KeysProvider:
    """Keys of the current cameras and rules, read from the store (one unit of work)."""

    def provide() -> dict[str, list[str]]:
        with store.uow() as uow:
            cams = [f"camera:{c.id}" for c in uow.cameras.list()]
            rules = [f"rule:{r.id}" for r in uow.rules.list()]
        return {POP_CAMERA: cams, POP_RULE: rules}

    return provide


def key_share(settings: RolloutSettings, populations: Mapping[str, Population]) -> dict[str, dict[str, Any]]:
    """Per population: how many current keys the decision puts on the domain path (no force)."""
    out: dict[str, dict[str, Any]] = {}
    for name, pop in populations.items():
        keys = pop.ranked()
        on = [k for k in keys if decide(settings, pop, k).path == DOMAIN]
        out[name] = {"keys": len(keys), "domain": len(on),
                     "share": (len(on) / len(keys)) if keys else None, "domain_keys": on}
    return out
