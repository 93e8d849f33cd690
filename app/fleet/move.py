"""``edge-station fleet move-camera CAMERA --to STATION``: a camera moved to another station, losing nothing.

The move is one transaction in the fleet's database (``app/store/ownership.py``): the camera keeps
its id, settings and camera rules; alert history and evidence stay with the station that recorded
them. Nothing is sent to the stations: each notices through its change watch (about a second),
the old one stops the camera's worker, the new one starts it. docs/fleet.md has an example.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from app.cli_common import EXIT_DATABASE, EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError

ACTOR = "edge-station fleet move-camera"


def add_move_cli(fsub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    help_ = "move a camera to another station of the fleet (its settings and camera rules go with it)"
    c = fsub.add_parser("move-camera", help=help_, description=help_ + "; the old station stops its worker and "
                        "the new one starts it within a few seconds, each on its own")
    add_common(c)
    c.add_argument("camera", metavar="CAMERA", help="the camera's name or id")
    c.add_argument("--to", required=True, metavar="STATION", help="the name of the station that takes it")
    c.add_argument("--reason", default="", metavar="TEXT", help="why (kept in both stations' audit)")
    c.add_argument("--json", action="store_true", help="print what was moved as JSON")
    c.set_defaults(handler=cmd_move_camera)


def cmd_move_camera(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from app.domain.fleet import Liveness, liveness
    from app.fleet.cli import open_registry
    from app.store.ownership import MoveError, find_camera, move_camera

    with open_registry(args) as (registry, shown):
        engine = registry.engine
        try:
            with engine.connect() as conn:
                if not inspect(conn).has_table("station_settings"):
                    raise CliError(f"database {shown} is at an older schema, without stations owning cameras: run "
                                   "'edge-station migrate' with this --db first", EXIT_DATABASE)
            target = registry.by_name(args.to)
            if target is None:
                names = ", ".join(s.name for s in registry.all()[1]) or "none yet"
                raise CliError(f"no station named {args.to!r} in this fleet (stations: {names}); a station "
                               "registers when it first starts", EXIT_USAGE)
            now, stations = registry.all()
            by_id = {s.id: s for s in stations}
            gone_after = registry.timing()[1]
            camera_id, _name, from_id = find_camera(engine, args.camera)
            source = by_id.get(from_id) if from_id else None
            reason = args.reason.strip() or f"moved to {target.name}"
            moved = move_camera(engine, camera_id, expected_from=from_id, to_station=target.id,
                                why=f"moved to station {target.name}", actor=ACTOR,
                                detail={"from": source.name if source else "", "to": target.name,
                                        "reason": reason})
        except MoveError as e:
            raise CliError(f"camera {args.camera!r} not moved: {e}", EXIT_ERROR) from None
        except SQLAlchemyError as e:
            raise CliError(f"camera {args.camera!r} not moved (nothing changed): "
                           f"{getattr(e, 'orig', None) or e}", EXIT_DATABASE) from None
    from_name = source.name if source else "no station"
    notes = []
    if source is not None and liveness(source, now, gone_after) is Liveness.UP:
        notes.append(f"{source.name} stops its worker within a few seconds (it watches the database)")
    live = liveness(target, now, gone_after)
    if live is Liveness.UP:
        notes.append(f"{target.name} starts it within a few seconds if the camera is active")
    else:
        notes.append(f"{target.name} is {live.value} now: the camera runs there when it starts again")
    if args.json:
        print(json.dumps({"camera_id": moved.camera_id, "camera": moved.camera_name, "from": from_name,
                          "to": target.name, "rules_moved": moved.rules, "alerts_resolved": moved.resolved_alerts,
                          "notes": notes}, indent=2))
    else:
        rules = f"{moved.rules} camera rule{'s' if moved.rules != 1 else ''} went with it"
        alerts = (f"; {moved.resolved_alerts} firing alert{'s' if moved.resolved_alerts != 1 else ''} "
                  f"resolved at {from_name}" if moved.resolved_alerts else "")
        print(f"camera {moved.camera_name!r} ({moved.camera_id}) moved from {from_name} to {target.name}: "
              f"{rules}{alerts}; its alert history and evidence stay with {from_name}")
        for n in notes:
            print(f"  {n}")
    return EXIT_OK


__all__ = ["add_move_cli", "cmd_move_camera"]
