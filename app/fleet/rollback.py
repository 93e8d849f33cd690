"""This station's side of a fleet rollback: see a generation newer than the one it applied, apply
its own one-step rollback of that track, verify the track's checklist, and say so.

The fleet-wide generation lives in the ``fleet.rollout.<track>.rollback`` setting
(app.domain.fleet_rollout); what this station applied travels in its heartbeat report, per track under
``stages[<track>]["fleet"]["rollback"]``, so it survives a restart in the station's own row:
a station that was down (or could not reach the database) when the rollback was issued applies it
when it returns, and says so in its log, its report (``on_return``) and the audit log
("fleet rollback applied on return, generation N issued at T"). A station new to the fleet takes
the generations it finds as its baseline: a rollback issued before it joined is not its own.

The checklist is verified when the rollback is applied and again at most every ``recheck_s``
seconds while it is pending (its window is the track's health window).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.domain.audit import AuditEntry
from app.domain.fleet_rollout import (
    OP_FLEET_ROLLBACK_APPLIED,
    FleetRolloutState,
    FleetTrack,
    reported_rollback,
)
from app.domain.operations import TRACKS

if TYPE_CHECKING:
    from app.domain.fleet import StationInfo

log = logging.getLogger("edge_station.fleet")

ACTOR = "fleet"

#: a checklist as a heartbeat carries it: {"complete": bool, "failed": bool, "open": [items not passed], "at"}
Verdict = dict[str, Any]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def applied_message(track: str, ft: FleetTrack, on_return: bool) -> str:
    issued = f"{ft.issued_at:%Y-%m-%d %H:%M:%S} UTC" if ft.issued_at else "at an unknown time"
    return (f"fleet rollback of the {track} track applied{' on return' if on_return else ''}, "
            f"generation {ft.generation} issued at {issued}" + (f" ({ft.reason})" if ft.reason else ""))


class FleetRollback:
    """Applies the fleet rollbacks this station has not applied yet.

    ``read`` returns the ``fleet.rollout.*`` settings; ``apply(track, reason)`` is the station's
    own rollback of one track; ``checklist(track)`` verifies it (a :data:`Verdict`);
    ``audit(entry)`` writes one audit entry. ``wall`` is the station's clock (the report's times)."""

    def __init__(self, *, read: Callable[[], Mapping[str, Any]], apply: Callable[[str, str], None],
                 checklist: Callable[[str], Verdict], audit: Callable[[AuditEntry], None],
                 wall: Callable[[], float] = time.time, recheck_s: float = 5.0):
        self._read = read
        self._apply = apply
        self._checklist = checklist
        self._audit = audit
        self._wall = wall
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._acks: dict[str, dict[str, Any]] = {}
        self._next_verify: dict[str, float] = {}

    def acks(self) -> dict[str, dict[str, Any]]:
        """Per track: what the heartbeat reports about the fleet rollbacks (a copy)."""
        with self._lock:
            return {t: dict(a) for t, a in self._acks.items()}

    def resume_from(self, previous: StationInfo | None) -> None:
        """At registration, before the claim overwrites the row: take what the station's row kept
        from its last run; a station new to the fleet takes the current generations as baseline."""
        if previous is not None:
            with self._lock:
                for t in TRACKS:
                    rb = reported_rollback(previous, t)
                    if rb is not None:
                        self._acks[t] = dict(rb)
            return
        state = FleetRolloutState.from_stored(self._read())
        with self._lock:
            for t, ft in state.tracks.items():
                if ft.generation:
                    self._acks[t] = {"generation": ft.generation, "baseline": True,
                                     "issued_at": ft.issued_at.isoformat() if ft.issued_at else None}
                    log.info("fleet: the fleet rollback of the %s track (generation %d) was issued before this "
                             "station joined the fleet: not applied here", t, ft.generation)

    def check(self, *, on_return: bool = False) -> list[str]:
        """Apply every newer fleet rollback (returns the tracks applied now); re-verify pending
        checklists. Raises when the fleet settings cannot be read (the caller logs it)."""
        state = FleetRolloutState.from_stored(self._read())
        done = []
        for t, ft in state.tracks.items():
            with self._lock:
                acked = self._acks.get(t, {}).get("generation", 0)
            if isinstance(acked, int) and ft.generation > acked:
                if self._apply_one(t, ft, on_return):
                    done.append(t)
            else:
                self._reverify(t)
        return done

    def _apply_one(self, track: str, ft: FleetTrack, on_return: bool) -> bool:
        message = applied_message(track, ft, on_return)
        reason = f"fleet rollback {ft.generation}: {ft.reason or 'no reason given'}"
        for attempt in (1, 2):  # stations writing one setting at one instant: the loser tries again at once
            try:
                self._apply(track, reason)
                break
            except Exception as e:
                if attempt == 1:
                    log.info("fleet: applying the fleet rollback of the %s track failed once (%s); trying again",
                             track, type(e).__name__)
                    continue
                log.error("fleet: could not apply the fleet rollback of the %s track (generation %d): %s: %s; "
                          "trying again at the next heartbeat", track, ft.generation, type(e).__name__, e)
                return False
        now = self._wall()
        verdict = self._verify(track, now)
        ack = {"generation": ft.generation, "issued_at": ft.issued_at.isoformat() if ft.issued_at else None,
               "applied_at": _iso(now), "on_return": on_return, "checklist": verdict}
        with self._lock:
            self._acks[track] = ack
        (log.warning if on_return else log.info)("fleet: %s; checklist %s", message, _summary(verdict))
        try:
            self._audit(AuditEntry(
                op=OP_FLEET_ROLLBACK_APPLIED, outcome="ok", key=track, actor=ACTOR,
                reason=(f"on return, generation {ft.generation}" if on_return else f"generation {ft.generation}"),
                detail={"message": message, **ack}))
        except Exception as e:
            log.warning("fleet: the audit entry of the applied fleet rollback could not be written (%s)", e)
        return True

    def _verify(self, track: str, now: float) -> dict[str, Any]:
        try:
            verdict = {**self._checklist(track), "at": _iso(now)}
        except Exception as e:
            verdict = {"complete": False, "failed": False, "open": [f"not verified: {type(e).__name__}"],
                       "at": _iso(now)}
        self._next_verify[track] = time.monotonic() + self._recheck_s
        return verdict

    def _reverify(self, track: str) -> None:
        with self._lock:
            ack = self._acks.get(track)
        cl = ack.get("checklist") if ack else None
        if not isinstance(cl, dict) or cl.get("complete") or cl.get("failed"):
            return
        if time.monotonic() < self._next_verify.get(track, 0.0):
            return
        verdict = self._verify(track, self._wall())
        with self._lock:
            if self._acks.get(track) is ack and ack is not None:
                self._acks[track] = {**ack, "checklist": verdict}
        if verdict.get("complete") or verdict.get("failed"):
            log.info("fleet: the checklist of the fleet rollback of the %s track: %s", track, _summary(verdict))


def _summary(verdict: Mapping[str, Any]) -> str:
    if verdict.get("complete"):
        return "complete"
    if verdict.get("failed"):
        return "FAILED (" + ", ".join(verdict.get("open") or []) + ")"
    return "pending (" + ", ".join(verdict.get("open") or []) + ")"


def merge_acks(stages: Mapping[str, Any], acks: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``stages`` with each track's ack under ``[track]["fleet"]["rollback"]``."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stages.items()}
    for track, ack in acks.items():
        t = out.get(track)
        if not isinstance(t, dict):
            t = out[track] = {}
        fleet = dict(t.get("fleet") or {})
        fleet["rollback"] = ack
        t["fleet"] = fleet
    return out


__all__ = ["FleetRollback", "Verdict", "applied_message", "merge_acks"]
