"""Stations as a rollout population: the fleet share, the fleet gate and the fleet rollback (pure).

On top of each station's own per-track percent, a fleet rollout chooses **which stations** run a
track at all: the stations are ranked by the cameras' sticky, exact-share bucketing
(:mod:`app.domain.bucketing`) keyed by station id with a fleet-wide salt, and at a fleet percent
``F`` the first ``round_half_up(F * N / 100)`` stations are inside (10 % of 20 stations is exactly
2, the same 2 at 25 %). A station outside the share runs the track as if its percent were 0 (the
legacy path); a station inside uses its own percent. With no fleet percent set every station is
inside, so a SQLite station (a fleet of one) and an existing fleet see no change.

The population is every registered station except those whose name was taken over (``replaced``):
a stopped or gone station keeps its place, so the share does not move when a station restarts.

Everything fleet-wide lives in settings keys starting with ``fleet.`` (they stay fleet-wide when
the other settings belong to a station); what each station did about it (the rollback generation
it applied, when, its checklist verdict) travels in its heartbeat report, per track under
``stages[<track>]["fleet"]`` and its gate under ``stages[<track>]["gate"]`` (docs/fleet.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.domain.bucketing import Population, domain_count
from app.domain.fleet import Liveness, StationInfo, StationState, liveness
from app.domain.operations import TRACKS

#: the fleet-wide salt of the station ranking (created by the first ``fleet rollout``)
K_FLEET_SALT = "fleet.rollout.salt"
F_FLEET_PERCENT = "percent"
F_FLEET_ROLLBACK = "rollback"
FLEET_PREFIX = "fleet.rollout."

OP_FLEET_ROLLOUT = "fleet.rollout"
OP_FLEET_ROLLBACK = "fleet.rollback"
#: written by a station when it applied a fleet rollback (``reason`` says whether on its return)
OP_FLEET_ROLLBACK_APPLIED = "fleet.rollback_applied"


def fleet_key(track: str, name: str) -> str:
    return f"{FLEET_PREFIX}{track}.{name}"


@dataclass(frozen=True)
class FleetTrack:
    """One track's fleet-wide state: the fleet percent (None: no fleet rollout, every station
    inside) and the last fleet rollback (generation 0: none yet)."""

    track: str
    percent: int | None = None
    generation: int = 0
    issued_at: datetime | None = None  # the database server's time of the last fleet rollback
    reason: str = ""
    actor: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "percent": self.percent, "rollback_generation": self.generation,
                "rollback_issued_at": self.issued_at.isoformat() if self.issued_at else None,
                "rollback_reason": self.reason, "rollback_actor": self.actor}


@dataclass(frozen=True)
class FleetRolloutState:
    """The fleet-wide rollout state, from the ``fleet.rollout.*`` settings."""

    tracks: dict[str, FleetTrack] = field(default_factory=lambda: {t: FleetTrack(t) for t in TRACKS})
    salt: str = ""

    def track(self, name: str) -> FleetTrack:
        return self.tracks[name]

    @property
    def any_share(self) -> bool:
        """Whether some track has a fleet percent that leaves stations out (so station ids matter)."""
        return any(t.percent is not None and t.percent < 100 for t in self.tracks.values())

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> FleetRolloutState:
        """Tolerant of what a hand edit left: a percent that is not 0-100 is read as no fleet
        rollout, a rollback record without a whole generation as none."""
        tracks = {}
        for t in TRACKS:
            pct = stored.get(fleet_key(t, F_FLEET_PERCENT))
            percent = pct if isinstance(pct, int) and not isinstance(pct, bool) and 0 <= pct <= 100 else None
            rb = stored.get(fleet_key(t, F_FLEET_ROLLBACK))
            gen, issued, reason, actor = 0, None, "", ""
            if isinstance(rb, dict):
                g = rb.get("generation")
                if isinstance(g, int) and not isinstance(g, bool) and g > 0:
                    gen = g
                    issued = _when(rb.get("issued_at"))
                    reason, actor = str(rb.get("reason") or ""), str(rb.get("actor") or "")
            tracks[t] = FleetTrack(t, percent, gen, issued, reason, actor)
        return cls(tracks, str(stored.get(K_FLEET_SALT) or ""))


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return None
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


class FleetRolloutError(ValueError):
    """A fleet rollout input that cannot be used; the message says which and why."""


def parse_fleet_track(track: object) -> str:
    t = str(track).strip().lower() if track is not None else ""
    if t not in TRACKS:
        raise FleetRolloutError(f"unknown rollout track {track!r} (tracks: {', '.join(TRACKS)})")
    return t


def parse_fleet_percent(text: object, *, what: str = "--percent") -> int:
    """An integer 0-100 (a trailing % allowed), or :class:`FleetRolloutError` saying why not."""
    if isinstance(text, bool):
        raise FleetRolloutError(f"{what}={text!r} is not a percentage (an integer 0-100)")
    s = str(text).strip().rstrip("%").strip()
    try:
        value = int(s)
    except ValueError:
        raise FleetRolloutError(f"{what}={text!r} is not a percentage (an integer 0-100)") from None
    if not 0 <= value <= 100:
        raise FleetRolloutError(f"{what}={text!r} is out of range (an integer 0-100)")
    return value


def new_fleet_salt() -> str:
    return secrets.token_hex(8)


def population_ids(stations: Iterable[StationInfo]) -> list[str]:
    """The station ids the fleet share is taken over (every station except replaced ones)."""
    return [s.id for s in stations if s.state is not StationState.REPLACED]


def share_ids(salt: str, ids: Iterable[str], percent: int | None) -> frozenset[str]:
    """The ids inside the fleet share at ``percent`` (None: all of them)."""
    ids = list(ids)
    if percent is None:
        return frozenset(ids)
    return Population(salt, ids).domain_keys(percent)


def is_inside(state: FleetRolloutState, track: str, station_id: str | None, ids: Iterable[str]) -> bool:
    """Whether ``station_id`` runs ``track`` with its own percent (True with no fleet rollout, or
    for a station without an id); a station not yet in ``ids`` is ranked as if it joined."""
    pct = state.track(track).percent
    if pct is None or pct >= 100 or station_id is None:
        return True
    if pct <= 0:
        return False
    return Population(state.salt, ids).is_domain(station_id, pct)


def inside_count(percent: int | None, n: int) -> int:
    return n if percent is None else domain_count(percent, n)


# ------------------------------------------------------------------ the fleet gate


@dataclass(frozen=True)
class StationGate:
    """One station as the fleet gate sees it: on the stage or not, and whether it holds the gate."""

    station_id: str
    name: str
    state: str  # liveness: up | gone | stopped
    inside: bool
    holds: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.station_id, "name": self.name, "state": self.state, "inside": self.inside,
                "holds": self.holds, "why": self.why}


@dataclass(frozen=True)
class FleetGateResult:
    track: str
    percent: int | None  # the current fleet percent (None: every station inside)
    stations: tuple[StationGate, ...]
    at: datetime

    @property
    def holders(self) -> list[StationGate]:
        return [s for s in self.stations if s.holds]

    @property
    def on_stage(self) -> list[StationGate]:
        return [s for s in self.stations if s.inside and s.state == Liveness.UP.value]

    @property
    def unjudged(self) -> bool:
        """Stations are inside the share but none is up: nobody's gate could be read."""
        return any(s.inside for s in self.stations) and not self.on_stage and not self.holders

    @property
    def passed(self) -> bool:
        return not self.holders and not self.unjudged

    @property
    def needs(self) -> list[str]:
        out = [f"station {s.name}: {s.why}" for s in self.holders]
        if self.unjudged:
            out.append("no station inside the fleet share is up: none of their gates can be judged")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "percent": self.percent, "passed": self.passed, "needs": self.needs,
                "at": self.at.isoformat(), "stations": [s.as_dict() for s in self.stations]}


def station_passes(gate: Mapping[str, Any] | None) -> tuple[bool, str]:
    """A station's own gate verdict as it reported it: passes when the gate passed (or the track is
    complete at 100 %); else why not (its first needs)."""
    if not isinstance(gate, Mapping):
        return False, "has not reported its gate (a station of an older version, or its gate could not be read)"
    if gate.get("passed") or gate.get("complete"):
        return True, f"its gate passes at {gate.get('current', '?')} %"
    needs = [str(n) for n in gate.get("needs") or []]
    at = gate.get("current", "?")
    if not needs:
        needs = ["its gate does not pass"]
    return False, f"its gate at {at} % needs: " + "; ".join(needs[:2]) + (
        f" (+{len(needs) - 2} more: `edge-station rollout status` there)" if len(needs) > 2 else "")


def fleet_gate(track: str, state: FleetRolloutState, stations: Sequence[StationInfo], now: datetime,
               gone_after: float) -> FleetGateResult:
    """Whether the fleet may widen ``track``'s fleet percent at server time ``now``: every station on
    the stage (inside the share and up) must pass its own gate, as its last heartbeat reported it.
    A station inside the share whose heartbeat stopped (gone) holds it too (its gate is unknown);
    a stopped station is not on the stage, but a share whose stations are all stopped holds (nobody
    was judged). An empty share (0 %) passes: its first stations are judged by their own gates."""
    ft = state.track(track)
    ids = population_ids(stations)
    inside = share_ids(state.salt, ids, ft.percent)
    out = []
    for s in stations:
        if s.state is StationState.REPLACED:
            continue
        live = liveness(s, now, gone_after)
        ins = s.id in inside
        if not ins:
            out.append(StationGate(s.id, s.name, live.value, False, False, "outside the fleet share"))
            continue
        if live is Liveness.STOPPED:
            out.append(StationGate(s.id, s.name, live.value, True, False, "stopped: not on the stage"))
            continue
        if live is Liveness.GONE:
            out.append(StationGate(s.id, s.name, live.value, True, True,
                                   f"gone (last heartbeat {s.age(now):.0f} s ago): its gate is unknown"))
            continue
        stage = s.stages.get(track) if isinstance(s.stages, dict) else None
        stage = stage if isinstance(stage, dict) else {}
        if stage.get("latched"):
            out.append(StationGate(s.id, s.name, live.value, True, True,
                                   "its track is rolled back (latched): resume it there first"))
            continue
        ok, why = station_passes(stage.get("gate"))
        out.append(StationGate(s.id, s.name, live.value, True, not ok, why))
    return FleetGateResult(track, ft.percent, tuple(out), now)


# ------------------------------------------------------------------ the fleet rollback's progress


def reported_rollback(info: StationInfo, track: str) -> dict[str, Any] | None:
    """What ``info`` last reported about the fleet rollbacks of ``track`` (None: nothing)."""
    stage = info.stages.get(track) if isinstance(info.stages, dict) else None
    fleet = stage.get("fleet") if isinstance(stage, dict) else None
    rb = fleet.get("rollback") if isinstance(fleet, dict) else None
    return rb if isinstance(rb, dict) else None


def applied_generation(info: StationInfo, track: str) -> int:
    rb = reported_rollback(info, track)
    g = rb.get("generation") if rb else None
    return g if isinstance(g, int) and not isinstance(g, bool) else 0


@dataclass(frozen=True)
class RollbackProgress:
    track: str
    generation: int
    applied: tuple[tuple[StationInfo, dict[str, Any]], ...]
    waiting: tuple[tuple[StationInfo, str], ...]  # not applied yet, and why (up: any moment; down: on return)

    def as_dict(self) -> dict[str, Any]:
        return {"generation": self.generation,
                "applied": [{"id": s.id, "name": s.name, **rb} for s, rb in self.applied],
                "not_yet": [{"id": s.id, "name": s.name, "why": why} for s, why in self.waiting]}


def rollback_progress(track: str, state: FleetRolloutState, stations: Sequence[StationInfo], now: datetime,
                      gone_after: float) -> RollbackProgress:
    gen = state.track(track).generation
    applied: list[tuple[StationInfo, dict[str, Any]]] = []
    waiting: list[tuple[StationInfo, str]] = []
    if gen:
        for s in stations:
            if s.state is StationState.REPLACED:
                continue
            rb = reported_rollback(s, track) or {}
            if applied_generation(s, track) >= gen:
                applied.append((s, rb))
                continue
            live = liveness(s, now, gone_after)
            if live is Liveness.UP:
                waiting.append((s, "up: applies it at its next heartbeat"))
            else:
                waiting.append((s, f"{live.value}: applies it when it returns"))
    return RollbackProgress(track, gen, tuple(applied), tuple(waiting))


__all__ = [
    "F_FLEET_PERCENT", "F_FLEET_ROLLBACK", "FLEET_PREFIX", "K_FLEET_SALT", "OP_FLEET_ROLLBACK",
    "OP_FLEET_ROLLBACK_APPLIED", "OP_FLEET_ROLLOUT", "FleetGateResult", "FleetRolloutError", "FleetRolloutState",
    "FleetTrack", "new_fleet_salt", "parse_fleet_percent",
    "RollbackProgress", "StationGate", "applied_generation", "fleet_gate", "fleet_key", "inside_count", "is_inside",
    "parse_fleet_track", "population_ids", "reported_rollback", "rollback_progress", "share_ids", "station_passes",
]
