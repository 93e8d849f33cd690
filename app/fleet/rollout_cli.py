"""``edge-station fleet rollout TRACK --percent N`` and ``fleet rollback TRACK``: stations as a
rollout population (app/domain/fleet_rollout.py; docs/fleet.md, "Stations as a rollout population").

Both validate everything before they write, and write the fleet-wide state and its audit entry in
one transaction. Widening a track's fleet percent goes through the fleet gate (every station on the
stage passes its own gate, as its heartbeat reported it) or an override reason (audited); narrowing
never needs one. A fleet rollback bumps the track's generation; every station applies its own
rollback at its next heartbeat, or when it returns.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from app.domain.fleet import StationInfo
    from app.domain.fleet_rollout import FleetRolloutState
    from app.store.stations import StationRegistry

ACTOR = "edge-station fleet"


def add_rollout_commands(fsub: Any, add_common: Any) -> None:
    from app.domain.operations import TRACKS

    tracks = ", ".join(TRACKS)
    c = fsub.add_parser(
        "rollout", help="set a track's fleet percent: which stations run it with their own percent",
        description="Stations as a rollout population: at a fleet percent N the first N % of the stations, "
                    "ranked by a sticky hash of their ids, run the track with their own percent; the others "
                    "run it as at 0 %. Widening goes through the fleet gate (every station on the stage passes "
                    "its own gate) or --override REASON. Without a fleet percent every station is inside.")
    add_common(c)
    c.add_argument("track", metavar="TRACK", help=f"the rollout track ({tracks})")
    c.add_argument("--percent", required=True, metavar="N", help="the fleet percent, an integer 0-100")
    c.add_argument("--reason", default="", help="why (goes to the audit log)")
    c.add_argument("--override", default=None, metavar="REASON",
                   help="widen although the fleet gate holds (audited with this reason)")
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.set_defaults(handler=cmd_fleet_rollout)
    c = fsub.add_parser(
        "rollback", help="roll a track back on every station (each applies its own rollback and reports it)",
        description="One fleet rollback of a track: every station applies its own one-step rollback of it at "
                    "its next heartbeat (a station that is down applies it when it returns, and says so), "
                    "verifies its checklist and reports it; `fleet status` shows who has applied it.")
    add_common(c)
    c.add_argument("track", metavar="TRACK", help=f"the rollout track ({tracks})")
    c.add_argument("--reason", default="", help="why (each station's rollback and the audit log carry it)")
    c.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for every station that is up to apply it")
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.set_defaults(handler=cmd_fleet_rollback)


def _track(text: str) -> str:
    from app.domain.fleet_rollout import FleetRolloutError, parse_fleet_track

    try:
        return parse_fleet_track(text)
    except FleetRolloutError as e:
        raise CliError(f"fleet: {e}", EXIT_USAGE) from None


def _percent(text: str) -> int:
    from app.domain.fleet_rollout import FleetRolloutError, parse_fleet_percent

    try:
        return parse_fleet_percent(text, what="--percent")
    except FleetRolloutError as e:
        raise CliError(f"fleet rollout: {e}", EXIT_USAGE) from None


def _state(registry: StationRegistry) -> FleetRolloutState:
    from app.domain.fleet_rollout import FLEET_PREFIX, FleetRolloutState

    return FleetRolloutState.from_stored(registry.fleet_settings(FLEET_PREFIX))


def _names(stations: Sequence[StationInfo], ids: frozenset[str] | set[str]) -> str:
    names = sorted(s.name for s in stations if s.id in ids)
    return ", ".join(names) if names else "none"


def _pct(p: int | None) -> str:
    return "every station (no fleet rollout)" if p is None else f"{p} %"


def cmd_fleet_rollout(args: argparse.Namespace) -> int:
    from app.domain.audit import AuditEntry
    from app.domain.fleet_rollout import (
        F_FLEET_PERCENT,
        K_FLEET_SALT,
        OP_FLEET_ROLLOUT,
        fleet_gate,
        fleet_key,
        new_fleet_salt,
        population_ids,
        share_ids,
    )
    from app.fleet.cli import open_registry

    track = _track(args.track)
    new = _percent(args.percent)
    override = (args.override or "").strip()
    if args.override is not None and not override:
        raise CliError("fleet rollout: --override needs a reason (it goes to the audit log)", EXIT_USAGE)
    with open_registry(args) as (registry, shown):
        now, stations = registry.all()
        gone_after = registry.timing()[1]
        state = _state(registry)
        cur = state.track(track).percent
        widening = new > (100 if cur is None else cur)
        gate = fleet_gate(track, state, stations, now, gone_after)
        if widening and not gate.passed and not override:
            raise CliError(
                f"fleet rollout refused: the {track} track stays at {_pct(cur)} of the fleet; the fleet gate "
                f"holds: " + "; ".join(gate.needs) + " (or give --override REASON)", EXIT_ERROR)
        salt = state.salt or new_fleet_salt()
        ids = population_ids(stations)
        before = share_ids(salt, ids, cur)
        after = share_ids(salt, ids, new)
        detail: dict[str, Any] = {"track": track, "old": cur, "new": new, "stations": len(ids),
                                  "inside": sorted(after), "reason": args.reason}
        if widening and not gate.passed:
            detail |= {"override_reason": override, "gate_needs": gate.needs}
        if cur != new or not state.salt:
            with registry.store.uow() as uow:
                if not state.salt:
                    uow.settings.set(K_FLEET_SALT, salt)
                uow.settings.set(fleet_key(track, F_FLEET_PERCENT), new)
                uow.audit.add(AuditEntry(op=OP_FLEET_ROLLOUT, outcome="ok", key=track, actor=ACTOR,
                                         reason=(args.reason or f"{cur} -> {new}")[:80], detail=detail))
                uow.commit()
    if args.json:
        print(json.dumps(detail | {"gate": gate.as_dict(), "added": sorted(after - before),
                                   "removed": sorted(before - after)}, indent=2))
        return EXIT_OK
    if cur == new:
        print(f"fleet rollout of the {track} track on {shown}: unchanged at {new} %")
    else:
        print(f"fleet rollout of the {track} track on {shown}: {_pct(cur)} -> {new} % of {len(ids)} "
              f"station{'s' if len(ids) != 1 else ''}")
    print(f"  inside ({len(after)}): {_names(stations, after)}")
    if after - before:
        print(f"  added: {_names(stations, after - before)}")
    if before - after:
        print(f"  left out (they run the {track} track as at 0 % within a second): {_names(stations, before - after)}")
    if widening and not gate.passed:
        print("  the fleet gate held (overridden, audited): " + "; ".join(gate.needs))
    return EXIT_OK


def cmd_fleet_rollback(args: argparse.Namespace) -> int:
    from app.domain.audit import AuditEntry
    from app.domain.fleet_rollout import (
        F_FLEET_ROLLBACK,
        OP_FLEET_ROLLBACK,
        FleetRolloutState,
        fleet_key,
        rollback_progress,
    )
    from app.fleet.cli import open_registry

    track = _track(args.track)
    key = fleet_key(track, F_FLEET_ROLLBACK)
    wait = float(args.wait)
    if not (wait >= 0 and wait <= 3600):
        raise CliError(f"fleet rollback: --wait {args.wait!r} must be 0-3600 seconds", EXIT_USAGE)
    reason = (args.reason or "").strip()
    with open_registry(args) as (registry, shown):
        issued = registry.now()  # the database server's clock, as every fleet time
        with registry.store.uow() as uow:
            prev = FleetRolloutState.from_stored({key: uow.settings.get(key)})  # read in the same transaction
            gen = prev.track(track).generation + 1
            record = {"generation": gen, "issued_at": issued.isoformat(), "reason": reason[:200], "actor": ACTOR}
            uow.settings.set(key, record)
            uow.audit.add(AuditEntry(op=OP_FLEET_ROLLBACK, outcome="ok", key=track, actor=ACTOR,
                                     reason=(reason or f"generation {gen}")[:80], detail=record))
            uow.commit()
        interval, gone_after = registry.timing()
        deadline = time.monotonic() + wait
        while True:
            now, stations = registry.all()
            progress = rollback_progress(track, _state(registry), stations, now, gone_after)
            up_waiting = [s for s, why in progress.waiting if why.startswith("up")]
            if not up_waiting or time.monotonic() >= deadline:
                break
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
    if args.json:
        print(json.dumps({"track": track, **record, "progress": progress.as_dict()}, indent=2))
        return EXIT_OK
    print(f"fleet rollback of the {track} track on {shown}: generation {gen} issued at "
          f"{issued:%Y-%m-%d %H:%M:%S} UTC" + (f" ({reason})" if reason else ""))
    for line in progress_lines(progress, interval):
        print("  " + line)
    return EXIT_OK


def progress_lines(progress: Any, interval: float | None = None) -> list[str]:
    """Who applied the track's last fleet rollback (and their checklists), and who has not yet."""
    out = []
    for s, rb in progress.applied:
        cl = rb.get("checklist") if isinstance(rb.get("checklist"), dict) else {}
        verdict = ("baseline: issued before it joined" if rb.get("baseline") else
                   "checklist complete" if cl.get("complete") else
                   "checklist FAILED: " + ", ".join(cl.get("open") or []) if cl.get("failed") else
                   "checklist pending: " + ", ".join(cl.get("open") or []))
        when = f" at {rb['applied_at']}" if rb.get("applied_at") else ""
        out.append(f"applied by {s.name}{when}{' (on return)' if rb.get('on_return') else ''}: {verdict}")
    for s, why in progress.waiting:
        if why.startswith("up") and interval is not None:
            why = f"up: applies it at its next heartbeat (every {interval:g} s)"
        out.append(f"not yet: {s.name} ({why})")
    return out


#: ``fleet status`` names every station that applied a fleet rollback up to this many
SHOW_APPLIED = 10


def _verdict(rb: dict[str, Any]) -> str:
    got = rb.get("checklist")
    cl: dict[str, Any] = got if isinstance(got, dict) else {}
    if rb.get("baseline"):
        return "baseline"
    return "complete" if cl.get("complete") else "failed" if cl.get("failed") else "pending"


def rollout_status_lines(registry_state: FleetRolloutState, stations: Sequence[StationInfo], now: datetime,
                         gone_after: float) -> list[str]:
    """``fleet status``'s lines about the fleet rollouts: per track with a fleet percent or a fleet
    rollback, the percent, the stations inside, the gate and the rollback's progress."""
    from app.domain.fleet_rollout import (
        fleet_gate,
        inside_count,
        population_ids,
        rollback_progress,
        share_ids,
    )

    lines = []
    ids = population_ids(stations)
    for track, ft in registry_state.tracks.items():
        if ft.percent is None and not ft.generation:
            continue
        inside = share_ids(registry_state.salt, ids, ft.percent)
        if ft.percent is None:
            lines.append(f"fleet rollout {track}: every station (no fleet percent set)")
        else:
            lines.append(f"fleet rollout {track}: {ft.percent} % of {len(ids)} stations = "
                         f"{inside_count(ft.percent, len(ids))} inside: {_names(stations, inside)}")
            gate = fleet_gate(track, registry_state, stations, now, gone_after)
            lines.append("  fleet gate: " + ("passes (every station on the stage passes its own gate)"
                                             if gate.passed else "held: " + "; ".join(gate.needs)))
        if ft.generation:
            p = rollback_progress(track, registry_state, stations, now, gone_after)
            lines.append(f"  fleet rollback: generation {ft.generation} issued at "
                         f"{ft.issued_at:%Y-%m-%d %H:%M:%S} UTC" if ft.issued_at else
                         f"  fleet rollback: generation {ft.generation}")
            lines[-1] += f": applied by {len(p.applied)}, not yet {len(p.waiting)}"
            if len(p.applied) > SHOW_APPLIED:  # a large fleet: the counts, the failed ones and who is missing
                verdicts = Counter(_verdict(rb) for _s, rb in p.applied)
                lines.append("    checklists: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
                failed = [(x, rb) for x, rb in p.applied if _verdict(rb) == "failed"]
                p = replace(p, applied=tuple(failed))
            lines.extend("    " + x for x in progress_lines(p))
    return lines


def rollout_status_doc(registry_state: FleetRolloutState, stations: Sequence[StationInfo], now: datetime,
                       gone_after: float) -> dict[str, Any]:
    from app.domain.fleet_rollout import fleet_gate, population_ids, rollback_progress, share_ids

    ids = population_ids(stations)
    out = {}
    for track, ft in registry_state.tracks.items():
        inside = share_ids(registry_state.salt, ids, ft.percent)
        out[track] = {**ft.as_dict(), "stations": len(ids),
                      "inside": sorted(s.name for s in stations if s.id in inside),
                      "gate": fleet_gate(track, registry_state, stations, now, gone_after).as_dict(),
                      "rollback": rollback_progress(track, registry_state, stations, now, gone_after).as_dict()}
    return out


__all__ = ["add_rollout_commands", "cmd_fleet_rollback", "cmd_fleet_rollout", "progress_lines",
           "rollout_status_doc", "rollout_status_lines"]
