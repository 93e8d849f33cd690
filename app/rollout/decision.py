"""The routing decision, per track: rollback latch -> force -> toggle -> percent (pure functions).

Each operation belongs to one track (``app.domain.operations.track_of``); the decision of a
call reads only that track's settings, so the two tracks are independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.domain.operations import TRACKS
from app.rollout.bucketing import Population
from app.rollout.metrics import DOMAIN, LEGACY
from app.rollout.settings import RolloutSettings, TrackSettings


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
    track: str = ""

    @property
    def routed(self) -> bool:
        """Routed by percent (not forced, not latched, not off): the only calls a gate or health counts."""
        return self.reason in (R_PERCENT_IN, R_PERCENT_OUT)

    @property
    def served_by(self) -> str:
        return LEGACY if self.fallback else self.path

    @property
    def forced(self) -> bool:
        return self.reason in (R_FORCE_DOMAIN, R_FORCE_LEGACY)


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


def decide(track: TrackSettings, population: Population, key: str, force: Force | str | None = None) -> Decision:
    """Apply the decision order of one track to one key (a station outside the track's fleet share
    routes as at 0 %; app.domain.fleet_rollout)."""
    t = track.name
    if track.latched:
        return Decision(LEGACY, R_LATCH, key, track=t)
    if force is not None:
        force = Force(force)
        if force is Force.DOMAIN:
            return Decision(DOMAIN, R_FORCE_DOMAIN, key, track=t)
        if force is Force.LEGACY:
            return Decision(LEGACY, R_FORCE_LEGACY, key, track=t)
    if not track.use_domain:
        return Decision(LEGACY, R_OFF, key, track=t)
    p = track.percent if track.fleet_in else 0  # outside the fleet share: as if its percent were 0
    if population.is_domain(key, p):
        return Decision(DOMAIN, R_PERCENT_IN, key, p, track=t)
    return Decision(LEGACY, R_PERCENT_OUT, key, p, track=t)


#: which populations of keys each track routes (cameras by id, the station's one list key, rules)
TRACK_POPULATIONS: dict[str, tuple[str, ...]] = {"rules": (POP_RULE,), "cameras": (POP_CAMERA, POP_STATION)}
assert set(TRACK_POPULATIONS) == set(TRACKS)


KeysProvider = Callable[[], Mapping[str, Iterable[str]]]


def build_populations(salt: str, keys: Mapping[str, Iterable[str]]) -> dict[str, Population]:
    pops = {name: Population(salt, ks) for name, ks in keys.items()}
    pops.setdefault(POP_CAMERA, Population(salt, ()))
    pops.setdefault(POP_RULE, Population(salt, ()))
    pops[POP_STATION] = Population(salt, (STATION_KEY,))
    return pops


def store_keys_provider(store: Any) -> KeysProvider:
    """Keys of the current cameras (from the store's camera snapshot, loaded again only after a
    commit that wrote the cameras) and rules (one query)."""

    def provide() -> dict[str, list[str]]:
        snapshot = getattr(store, "camera_snapshot", None)
        with store.uow() as uow:
            cams = [f"camera:{c.id}" for c in (snapshot() if snapshot is not None else uow.cameras.list())]
            rules = [f"rule:{rid}" for rid in uow.rules.ids()]
        return {POP_CAMERA: cams, POP_RULE: rules}

    return provide


def key_share(settings: RolloutSettings, populations: Mapping[str, Population]) -> dict[str, dict[str, Any]]:
    """Per track and population: how many current keys the decision puts on the domain path (no force).

    ``{"rules": {"rule": {...}}, "cameras": {"camera": {...}, "station": {...}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for track, pop_names in TRACK_POPULATIONS.items():
        ts = settings.track(track)
        per: dict[str, Any] = {}
        for name in pop_names:
            pop = populations.get(name) or Population(settings.salt, ())
            keys = pop.ranked()
            on = [k for k in keys if decide(ts, pop, k).path == DOMAIN]
            per[name] = {"keys": len(keys), "domain": len(on),
                         "share": (len(on) / len(keys)) if keys else None, "domain_keys": on}
        out[track] = per
    return out


def keys_on_domain(share: Mapping[str, dict[str, Any]], track: str) -> int:
    """How many current keys of ``track`` route to the domain path (from :func:`key_share`)."""
    return sum(v["domain"] for v in share.get(track, {}).values())
