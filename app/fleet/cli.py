"""``edge-station fleet status|stations|settings|move-camera|targets``: the stations sharing this database,
at a glance (``fleet rollout|rollback``, stations as a rollout population, are in app/fleet/rollout_cli.py).

Both read the ``stations`` table (app/store/stations.py) and judge every station by the database
server's clock: a running station whose last heartbeat is older than the fleet's gone threshold
(the ``fleet.gone_after`` setting, 20 s by default, or ``--gone-after``) is shown as gone. They
never migrate or create a database: a database without the fleet registry is an error that says
what to do. docs/fleet.md has examples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_DATA_DIR, EXIT_DATABASE, EXIT_OK, EXIT_USAGE, CliError, common_args

if TYPE_CHECKING:
    from app.domain.fleet import StationInfo
    from app.domain.fleet_rollout import FleetRolloutState
    from app.store.stations import StationRegistry

__all__ = ["STATION_COLUMNS", "add_cli", "age_parts", "fleet_document", "format_stations", "format_status", "open_registry", "parse_timing",
           "station_cells"]


def _gone_after(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds above 0")
    return v


def add_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("fleet", help="the stations that share this database: status, stations, rollout, rollback",
                       description="The fleet: every station registered in this database (one PostgreSQL "
                                   "for many stations; a SQLite database is a fleet of one). See docs/fleet.md.")
    add_common(p)
    p.set_defaults(handler=lambda a: _need_action(p))
    fsub = p.add_subparsers(dest="fleet_command",
                            metavar="{status,stations,rollout,rollback,settings,move-camera,targets}")
    for name, help_, handler in (
        ("status", "the fleet at a glance: stations up and gone, versions, rollout stages, health, cameras",
         cmd_fleet_status),
        ("stations", "one line per station (--json: every field)", cmd_fleet_stations),
    ):
        c = fsub.add_parser(name, help=help_, description=help_)
        add_common(c)
        c.add_argument("--json", action="store_true", help="print JSON instead of text")
        c.add_argument("--gone-after", type=_gone_after, default=None, metavar="S",
                       help="count a station as gone after S seconds without a heartbeat "
                            "(default: the fleet.gone_after setting, 20)")
        c.set_defaults(handler=handler)
    from app.fleet.rollout_cli import add_rollout_commands

    add_rollout_commands(fsub, add_common)
    c = fsub.add_parser("settings", help="show the fleet's timing, or change it: heartbeat_interval=S gone_after=S",
                        description="The fleet's timing, shared by every station on this database: how often a "
                                    "station heartbeats (heartbeat_interval, default 5 s; read when a station "
                                    "starts, $EDGE_STATION_HEARTBEAT_INTERVAL overrides it on one station) and "
                                    "after how long without a heartbeat it is gone (gone_after, default 20 s; at "
                                    "least twice the interval).")
    add_common(c)
    c.add_argument("changes", nargs="*", metavar="KEY=SECONDS")
    c.set_defaults(handler=cmd_fleet_settings)
    from app.fleet.move import add_move_cli
    from app.fleet.targets import add_targets_cli

    add_move_cli(fsub, add_common)
    add_targets_cli(fsub, add_common)


def _need_action(p: argparse.ArgumentParser) -> int:
    p.print_usage(sys.stderr)
    raise CliError("choose an action: status, stations, rollout, rollback, settings, move-camera or targets",
                   EXIT_USAGE)


# ------------------------------------------------------------------ opening the registry


@contextmanager
def open_registry(args: argparse.Namespace) -> Iterator[tuple[StationRegistry, str]]:
    """The registry of the database ``--db`` / the data dir names; never creates or migrates it."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from app.platform.paths import PathError, resolve_paths
    from app.store import StoreError
    from app.store.db import current_revision, make_engine, redact_url, sqlite_path
    from app.store.stations import StationRegistry
    from app.store.uow import Store

    try:
        paths = resolve_paths(*common_args(args).where())
    except PathError as e:
        raise CliError(str(e), EXIT_DATA_DIR) from None
    shown = redact_url(paths.db_url)
    try:
        engine = make_engine(paths.db_url)
    except StoreError as e:
        raise CliError(str(e), EXIT_DATABASE) from None
    try:
        db_file = sqlite_path(engine)
        if db_file is not None and not Path(db_file).exists():
            raise CliError(f"no database at {db_file}: no station has run with this data dir; for a fleet, "
                           "give the fleet's database with --db URL or $EDGE_STATION_DB", EXIT_DATABASE)
        try:
            with engine.connect() as conn:
                has_table = inspect(conn).has_table("stations")
            revision = current_revision(engine) if not has_table else None
        except SQLAlchemyError as e:
            raise CliError(f"cannot open database {shown}: {getattr(e, 'orig', None) or e}", EXIT_DATABASE) from None
        if not has_table:
            raise CliError(f"database {shown} (schema {revision or 'empty'}) has no fleet registry yet: run "
                           "'edge-station migrate' with this --db, or start a station of this version on it",
                           EXIT_DATABASE)
        yield StationRegistry(Store(engine)), shown
    finally:
        engine.dispose()


def _read(args: argparse.Namespace) -> tuple[datetime, list[StationInfo], float, str]:
    now, stations, gone_after, shown, _state = _read_with_rollout(args)
    return now, stations, gone_after, shown


def _read_with_rollout(args: argparse.Namespace) -> tuple[datetime, list[StationInfo], float, str,
                                                          FleetRolloutState]:
    from sqlalchemy.exc import SQLAlchemyError

    from app.domain.fleet_rollout import FLEET_PREFIX, FleetRolloutState

    with open_registry(args) as (registry, shown):
        try:
            now, stations = registry.all()
            gone_after = args.gone_after if args.gone_after is not None else registry.timing()[1]
            state = FleetRolloutState.from_stored(registry.fleet_settings(FLEET_PREFIX))
        except SQLAlchemyError as e:
            raise CliError(f"cannot read the fleet registry of {shown}: {getattr(e, 'orig', None) or e}",
                           EXIT_DATABASE) from None
    return now, stations, gone_after, shown, state


# ------------------------------------------------------------------ what is shown


def _station_doc(s: StationInfo, now: datetime, gone_after: float) -> dict[str, Any]:
    from app.domain.fleet import liveness

    return {
        "id": s.id, "name": s.name, "state": liveness(s, now, gone_after).value, "row_state": s.state.value,
        "host": s.host, "pid": s.pid, "version": s.version, "started_at": s.started_at.isoformat(),
        "heartbeat_at": s.heartbeat_at.isoformat(), "heartbeat_age_s": round(s.age(now), 3),
        "stopped_at": s.stopped_at.isoformat() if s.stopped_at else None,
        "clock_skew_s": round(s.skew, 3) if s.skew is not None else None,
        "cameras_up": s.cameras_up, "cameras_total": s.cameras_total, "rollout": s.stages,
        "health": s.health, "problems": list(s.problems), "replaced_by": s.replaced_by,
    }


def fleet_document(now: datetime, stations: list[StationInfo], gone_after: float) -> dict[str, Any]:
    """The fleet as JSON: the server time it was judged at, the threshold, and every station."""
    return {"now": now.isoformat(), "gone_after_s": gone_after,
            "stations": [_station_doc(s, now, gone_after) for s in stations]}


def _stages(stages: dict[str, Any]) -> str:
    out = []
    for track, t in sorted(stages.items()):
        if not isinstance(t, dict):
            continue
        outside = isinstance(t.get("fleet"), dict) and t["fleet"].get("in") is False
        if t.get("latched"):
            out.append(f"{track}:rolled-back")
        elif outside:  # outside the track's fleet share: it runs the track as at 0 %
            out.append(f"{track}:out-of-fleet")
        else:
            out.append(f"{track}:{t.get('stage', '?')}({t.get('percent', '?')}%)")
    return " ".join(out) or "-"


def age_parts(seconds: float) -> tuple[int, str]:
    """A heartbeat's age as a whole number of the unit that reads best: ``(2, "s")``, ``(5, "min")``,
    ``(3, "h")``, ``(2, "d")`` (the window's Fleet page says the same in its language)."""
    for limit, unit, per in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return round(seconds / per), unit
    return round(seconds / 86400), "d"


def _age(seconds: float) -> str:
    n, unit = age_parts(seconds)
    return f"{n} {unit} ago"


def _skew(s: StationInfo) -> str:
    from app.domain.fleet import SKEW_WORTH_SAYING

    sk = s.skew
    if sk is None or abs(sk) < SKEW_WORTH_SAYING:
        return ""
    return f"clock {sk:+.1f} s"


#: the columns of ``fleet stations`` (and of the window's Fleet page, app/ui/fleet/page.py)
STATION_COLUMNS = ("NAME", "STATE", "ID", "VERSION", "HOST", "UP SINCE (UTC)", "HEARTBEAT", "CAMERAS", "ROLLOUT",
                   "HEALTH", "NOTE")


def station_cells(s: StationInfo, now: datetime, gone_after: float) -> tuple[str, ...]:
    """One station's line of ``fleet stations``, cell by cell (see :data:`STATION_COLUMNS`)."""
    from app.domain.fleet import liveness

    live = liveness(s, now, gone_after)
    note = [x for x in (_skew(s), "; ".join(s.problems[:2]) if live.value == "up" else "") if x]
    if s.replaced_by:
        note.append(f"name taken over by {s.replaced_by[:8]}")
    return (s.name, live.value, s.id[:8], s.version or "?", s.host or "?",
            f"{s.started_at:%Y-%m-%d %H:%M:%S}", _age(s.age(now)), f"{s.cameras_up}/{s.cameras_total}",
            _stages(s.stages), s.health if live.value == "up" else "-", "; ".join(note))


def format_stations(now: datetime, stations: list[StationInfo], gone_after: float) -> list[str]:
    """One line per station, under a header."""
    header = STATION_COLUMNS
    rows = [station_cells(s, now, gone_after) for s in stations]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def format_status(now: datetime, stations: list[StationInfo], gone_after: float, where: str) -> list[str]:
    """The fleet at a glance: a few lines, problems named."""
    from app.domain.fleet import liveness

    live = {s.id: liveness(s, now, gone_after).value for s in stations}
    counts = Counter(live.values())
    states = ", ".join(f"{counts[k]} {k}" for k in ("up", "gone", "stopped", "replaced") if counts[k])
    lines = [f"fleet on {where}: {len(stations)} station{'s' if len(stations) != 1 else ''}"
             f"{': ' + states if states else ''} (gone after {gone_after:g} s without a heartbeat; "
             f"database time {now:%Y-%m-%d %H:%M:%S} UTC)"]
    up = [s for s in stations if live[s.id] == "up"]
    versions = Counter(s.version or "?" for s in up)
    if up:
        lines.append("versions: " + ", ".join(f"{v} on {n}" for v, n in sorted(versions.items())))
        tracks: dict[str, Counter[str]] = {}
        for s in up:
            for track, t in s.stages.items():
                if isinstance(t, dict):
                    label = "rolled back" if t.get("latched") else f"stage {t.get('stage', '?')}"
                    tracks.setdefault(track, Counter())[label] += 1
        if tracks:
            lines.append("rollout: " + "; ".join(
                f"{track} " + ", ".join(f"{label} on {n}" for label, n in sorted(c.items()))
                for track, c in sorted(tracks.items())))
        health = Counter(s.health for s in up)
        lines.append("health: " + ", ".join(f"{h} {n}" for h, n in sorted(health.items())))
        for s in up:
            if s.health != "ok":
                lines.append(f"  {s.name}: {s.health}" + (f": {'; '.join(s.problems[:3])}" if s.problems else ""))
        cam_up = sum(s.cameras_up for s in up)
        cam_total = sum(s.cameras_total for s in up)
        lines.append(f"cameras: {cam_up}/{cam_total} running on the stations that are up")
    for s in stations:
        if live[s.id] == "gone":
            lines.append(f"gone: {s.name} ({s.id[:8]} on {s.host or '?'}): last heartbeat "
                         f"{s.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, {_age(s.age(now))}")
    skewed = [f"{s.name} {_skew(s)}" for s in up if _skew(s)]
    if skewed:
        lines.append("clock skew (station vs database; liveness uses the database's clock): " + ", ".join(skewed))
    if not stations:
        lines.append("no station has registered yet: a station registers when it starts "
                     "(edge-station --db URL --station NAME, or edge-station headless ...)")
    return lines


# ------------------------------------------------------------------ commands


def cmd_fleet_status(args: argparse.Namespace) -> int:
    from app.fleet.rollout_cli import rollout_status_doc, rollout_status_lines

    now, stations, gone_after, where, state = _read_with_rollout(args)
    if args.json:
        from app.domain.fleet import liveness

        doc = fleet_document(now, stations, gone_after)
        doc["summary"] = dict(Counter(liveness(s, now, gone_after).value for s in stations))
        doc["fleet_rollout"] = rollout_status_doc(state, stations, now, gone_after)
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(format_status(now, stations, gone_after, where)
                        + rollout_status_lines(state, stations, now, gone_after)))
    return EXIT_OK


def cmd_fleet_stations(args: argparse.Namespace) -> int:
    now, stations, gone_after, _where = _read(args)
    if args.json:
        print(json.dumps(fleet_document(now, stations, gone_after), indent=2))
    elif not stations:
        print("no stations registered (a station registers when it starts)")
    else:
        print("\n".join(format_stations(now, stations, gone_after)))
    return EXIT_OK


def parse_timing(items: list[str], current: tuple[float, float]) -> dict[str, float]:
    """``["gone_after=30"]`` -> ``{"fleet.gone_after": 30.0}``, checked together with the current values
    (a healthy station must not look gone); all or nothing (CliError naming the bad item)."""
    import math

    from app.domain.fleet import check_interval
    from app.store.stations import SETTING_GONE_AFTER, SETTING_HEARTBEAT_INTERVAL

    keys = {"heartbeat_interval": SETTING_HEARTBEAT_INTERVAL, "gone_after": SETTING_GONE_AFTER}
    out: dict[str, float] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in keys:
            raise CliError(f"{item!r}: expected KEY=SECONDS with KEY one of {', '.join(keys)}", EXIT_USAGE)
        try:
            value = float(text)
        except ValueError:
            raise CliError(f"{item!r}: {text!r} is not a number of seconds", EXIT_USAGE) from None
        if not math.isfinite(value) or value <= 0:
            raise CliError(f"{item!r}: must be a finite number of seconds above 0", EXIT_USAGE)
        out[keys[key]] = value
    interval = out.get(SETTING_HEARTBEAT_INTERVAL, current[0])
    gone = out.get(SETTING_GONE_AFTER, current[1])
    try:
        check_interval(interval, gone)
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    return out


def cmd_fleet_settings(args: argparse.Namespace) -> int:
    from app.domain.audit import AuditEntry

    with open_registry(args) as (registry, shown):
        current = registry.timing()
        changes = parse_timing(args.changes, current)
        if changes:
            with registry.store.uow() as uow:
                for key, value in changes.items():
                    old = uow.settings.get(key)
                    uow.settings.set(key, value)
                    uow.audit.add(AuditEntry(op="settings.set", outcome="ok", key=key, actor="edge-station fleet",
                                             detail={"old": old, "new": value}))
                uow.commit()
            current = registry.timing()
    print(f"fleet on {shown}: heartbeat_interval={current[0]:g} s, gone_after={current[1]:g} s")
    if changes:
        print("a running station uses a new heartbeat interval from its next start; readers use the new "
              "gone_after at once")
    return EXIT_OK
