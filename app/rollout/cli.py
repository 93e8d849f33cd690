"""CLI: ``edge-station rollout status|set|advance|rollback|resume|options|rehearse|report`` and ``verify``.

Every rollout command takes ``--track rules|cameras`` (``set``, ``rollback`` and ``status``
also ``all``, their default). :func:`add_cli` registers both commands on an argparse
subparsers object; each sets ``handler`` in the namespace:

* rollout commands: ``cmd_rollout(args, store, make_station_parts=None, make_drill_station=None,
  open_live_station=None) -> int`` (``rehearse`` needs the scratch-station factory, ``drill`` the
  drill's scratch-station factory and, for ``--live``, the live-station opener)
* verify: ``cmd_verify(args, make_station_parts, store=None) -> int`` (with a store, the
  result is recorded for the stage gate and audited)

Exit codes: 0 done, 1 refused or failed (gate holds, verification or checklist failed),
2 bad input (one clear line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from app.rollout.analysis import as_dict as analysis_dict
from app.rollout.analysis import status_health, status_lines
from app.rollout.control import RolloutControl, report_dict
from app.rollout.errors import (
    GateRefused,
    RolloutError,
    RolloutLocked,
    RolloutSettingsError,
    VerificationError,
)
from app.rollout.health import Check, Checklist, GateResult, Status, _dur
from app.rollout.settings import STAGES, TRACK_NAMES, RolloutSettings, Thresholds, parse_tracks
from app.rollout.verify import StationFactory, verify_scratch_and_record

if TYPE_CHECKING:
    from app.rollout.drill import DrillStationFactory, LiveStationFactory

ACTOR = "cli"
_TRACK_HELP = f"the rollout track: {', '.join(TRACK_NAMES)}"


def add_cli(subparsers: Any) -> None:
    """Register ``rollout`` (with its sub-commands) and ``verify``."""
    ro = subparsers.add_parser(
        "rollout", help="rollout of the domain implementation per track: status, set, advance, rollback, ...")
    ro.set_defaults(handler=cmd_rollout, rollout_command="status", json=False, track="all")
    sub = ro.add_subparsers(dest="rollout_command",
                            metavar="{status,set,advance,rollback,resume,options,rehearse,report,drill}")
    st = sub.add_parser("status", help="per track: stage, time held and left, what the gate still needs")
    st.add_argument("--track", default="all", help=_TRACK_HELP + " or all (default)")
    st.add_argument("--json", action="store_true", help="print JSON")
    s = sub.add_parser("set", help="set the domain toggle and/or the percent of a track (audited; raising "
                                   "goes through the gate)")
    s.add_argument("--track", default="all", help=_TRACK_HELP + " or all (default: both)")
    s.add_argument("--domain", metavar="on|off", help="the track's toggle of the domain path")
    s.add_argument("--percent", metavar="N", help="share of the track's keys on the domain path, 0-100")
    s.add_argument("--reason", default="set from the command line", help="why (goes to the audit log)")
    s.add_argument("--override-reason", default=None,
                   help="raise the share although the gate holds (audited as an override)")
    a = sub.add_parser("advance", help=f"advance a track to its next stage ({' -> '.join(map(str, STAGES))}) "
                                       "if its gate passes")
    a.add_argument("--track", required=True, help=_TRACK_HELP)
    a.add_argument("--override-reason", default=None, help="advance although the gate holds (audited)")
    a.add_argument("--json", action="store_true", help="print JSON")
    r = sub.add_parser("rollback", help="one-step rollback of a track or all (toggle off, percent 0, latched), "
                                        "then its checklist, verified item by item")
    r.add_argument("--track", default="all", help=_TRACK_HELP + " or all (default)")
    r.add_argument("--reason", default="manual rollback from the command line", help="why (goes to the audit log)")
    r.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="keep verifying the checklist for up to S seconds (until every item is verified)")
    r.add_argument("--json", action="store_true", help="print JSON")
    rs = sub.add_parser("resume", help="clear a track's rollback latch (audited; the track stays at 0 %%)")
    rs.add_argument("--track", required=True, help=_TRACK_HELP + " or all")
    rs.add_argument("--reason", required=True, help="what was found and fixed (goes to the audit log)")
    o = sub.add_parser("options", help="show or change the shared rollout options, thresholds and stage holds")
    o.add_argument("assignments", nargs="*", metavar="NAME=VALUE",
                   help=f"auto_rollback, shadow_rate, canary_rate (calls/min) or a threshold: "
                        f"{', '.join(Thresholds.names())}")
    o.add_argument("--json", action="store_true", help="print JSON")
    rh = sub.add_parser("rehearse", help="rehearse and verify a rollback of a track on a scratch station "
                                         "(decision point 2)")
    rh.add_argument("--track", default="cameras", help=_TRACK_HELP + " (default: cameras)")
    rh.add_argument("--json", action="store_true", help="print JSON")
    rp = sub.add_parser("report", help="problem reports against a track's stage: file, list, resolve")
    rsub = rp.add_subparsers(dest="report_command", metavar="{file,list,resolve}")
    f = rsub.add_parser("file", help="file a report against the current stage of a track (holds its gate)")
    f.add_argument("--track", required=True, help=_TRACK_HELP)
    f.add_argument("--text", required=True, help="what went wrong")
    f.add_argument("--camera", type=int, default=None, help="the camera id it concerns (optional)")
    f.add_argument("--rule", type=int, default=None, help="the rule id it concerns (optional)")
    f.add_argument("--operator", default="", help="who reports it (default: the command line)")
    ls = rsub.add_parser("list", help="list reports")
    ls.add_argument("--track", default="all", help=_TRACK_HELP + " or all (default)")
    ls.add_argument("--open", action="store_true", help="only open reports")
    ls.add_argument("--json", action="store_true", help="print JSON")
    rv = rsub.add_parser("resolve", help="resolve a report (audited; releases the gate when none is open)")
    rv.add_argument("id", type=int)
    rv.add_argument("--note", required=True, help="what was found or done")
    rv.add_argument("--operator", default="", help="who resolves it")
    from app.rollout.drill import add_drill_parser

    add_drill_parser(sub)
    v = subparsers.add_parser("verify", help="compare legacy and domain on a scratch station (all 13 operations)")
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")
    v.add_argument("--frame-timeout", type=float, default=20.0, help="seconds to wait for the first frames")
    v.set_defaults(handler=cmd_verify)


def _fail(out: TextIO, message: str, code: int = 2) -> int:
    print(f"edge-station: {message}", file=out)
    return code


_MARK = {"pass": "[x]", "fail": "[!]", "pending": "[ ]", "inconclusive": "[?]"}


def _check_line(c: Check) -> str:
    return f"  {_MARK.get(str(c.status), '[?]')} {c.name:<24} {c.message}"


def _checks(checks: tuple[Check, ...], out: TextIO) -> None:
    for c in checks:
        print(_check_line(c), file=out)


def _track_lines(s: RolloutSettings, name: str, out: TextIO) -> None:
    t = s.track(name)
    lock = {f: f" (locked by {v})" for f, v in t.locked_fields().items()}
    print(f"track {name} ({len(t.operations)} operations: {', '.join(t.operations)})", file=out)
    print(f"  domain path    {'on' if t.use_domain else 'off'}{lock.get('use_domain', '')}", file=out)
    print(f"  percent        {t.percent} %{lock.get('percent', '')}", file=out)
    print(f"  stage          {t.stage} % (target share {t.target_percent} %)", file=out)
    if t.latched:
        print(f"  ROLLED BACK    latched: {t.latch_reason}", file=out)


def _gate_lines(g: GateResult, out: TextIO) -> None:
    if g.next is None and g.current == 100:
        head = "COMPLETE: legacy for this track may be retired" if g.complete else "at 100 %, not complete yet"
    else:
        head = f"{g.current} % -> {g.next} %: {'PASSES' if g.passed else 'holds'}"
    print(f"  stage gate     {head}", file=out)
    if g.current > 0:
        print(f"  held           {_dur(g.held_s)} of {_dur(g.hold_s)} (left {_dur(g.left_s)})", file=out)
    _checks(tuple(c for c in g.checks if c.name != "next_stage"), out)
    if g.needs:
        print(f"  the gate still needs: {len(g.needs)} item(s) above marked [ ], [?] or [!]", file=out)


def _checklist_lines(c: Checklist, out: TextIO) -> None:
    state = "verified" if c.complete else ("FAILED" if c.failed else "not yet verified")
    print(f"  rollback checklist of the {c.track} track: {state}", file=out)
    _checks(c.checks, out)


def _options_lines(s: RolloutSettings, out: TextIO) -> None:
    print(f"auto_rollback    {'on' if s.auto_rollback else 'off'}", file=out)
    print(f"shadow_rate      {s.shadow_rate:g}", file=out)
    print(f"canary_rate      {s.canary_rate:g} calls/min" + (" (off)" if not s.canary_rate else ""), file=out)
    for name in Thresholds.names():
        print(f"{name:<24} {getattr(s.thresholds, name):g}", file=out)


def _parse_assignments(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise RolloutSettingsError(f"{item!r} is not NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _rollback_and_verify(control: RolloutControl, args: argparse.Namespace, out: TextIO) -> int:
    tracks = parse_tracks(args.track)
    s = control.rollback(track=args.track, actor=ACTOR, reason=args.reason)
    as_json = getattr(args, "json", False)
    if not as_json:
        for name in tracks:
            print(f"rolled back the {name} track: domain path off, percent 0, latched "
                  "(wins over force, environment and shadow)", file=out)
    wait = max(float(getattr(args, "wait", 0.0) or 0.0), 0.0)
    deadline = time.monotonic() + wait
    shown: dict[str, set[str]] = {t: set() for t in tracks}
    lists: dict[str, Checklist | None] = {}
    while True:
        for name in tracks:
            c = control.checklist(name, s)
            lists[name] = c
            if c is None or as_json:
                continue
            for item in c.checks:
                final = item.status in (Status.PASS, Status.FAIL) or (
                    item.status is Status.INCONCLUSIVE and time.monotonic() >= deadline)
                if item.name not in shown[name] and (final or time.monotonic() >= deadline):
                    mark = _MARK.get(str(item.status), "[?]")
                    print(f"  {mark} {name + ': ' + item.name:<30} {item.message}", file=out, flush=True)
                    shown[name].add(item.name)
        done = all(c is not None and (c.complete or c.failed) for c in lists.values())
        if done or time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
    if as_json:
        print(json.dumps({"settings": s.as_dict(),
                          "checklists": {n: c.as_dict() if c else None for n, c in lists.items()}},
                         indent=2, default=str), file=out)
    complete = all(c is not None and c.complete for c in lists.values())
    failed = any(c is not None and c.failed for c in lists.values())
    if not as_json:
        if complete:
            print("rollback verified: every checklist item passed", file=out)
        elif failed:
            print("rollback checklist FAILED: see the items marked [!]", file=out)
        else:
            print(f"not every item is verified yet: run `edge-station rollout status` after "
                  f"{s.thresholds.window_s:.0f} s (or `rollout rollback --wait {s.thresholds.window_s:.0f}`)", file=out)
    return 1 if failed else 0


def cmd_rollout(args: argparse.Namespace, store: Any, *, out: TextIO | None = None,
                err: TextIO | None = None, env: Any = None,
                make_station_parts: Callable[[], Any] | None = None,
                make_drill_station: DrillStationFactory | None = None,
                open_live_station: LiveStationFactory | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    cmd = getattr(args, "rollout_command", None) or "status"
    try:
        control = RolloutControl(store, env=env)
        if cmd == "drill":
            from app.rollout.drill import cmd_drill

            return cmd_drill(args, store, out=out, err=err, make_station=make_drill_station,
                             open_live=open_live_station)
        if cmd == "status":
            tracks = parse_tracks(getattr(args, "track", "all"))
            status = control.status()
            health = status_health(control, status.settings)
            if getattr(args, "json", False):
                doc = status.as_dict() | {"health": analysis_dict(health)}
                doc["tracks"] = {n: v for n, v in doc["tracks"].items() if n in tracks}
                print(json.dumps(doc, indent=2, default=str), file=out)
                return 0
            s = status.settings
            print(f"auto-rollback {'on' if s.auto_rollback else 'off'}; canary "
                  f"{f'{s.canary_rate:g} calls/min' if s.canary_rate else 'off'}", file=out)
            for name in tracks:
                ts = status.tracks[name]
                _track_lines(s, name, out)
                for pop, k in ts.keys.items():
                    if k["keys"]:
                        print(f"  keys {pop:<9} {k['domain']} of {k['keys']} on the domain path", file=out)
                _gate_lines(ts.gate, out)
                for rep in ts.reports:
                    print(f"  open report #{rep.id} at {rep.stage} % by {rep.operator or '-'}: {rep.text}", file=out)
                if ts.checklist is not None:
                    _checklist_lines(ts.checklist, out)
            print("\n".join(status_lines(health, status.settings.thresholds.window_s)), file=out)
            return 0
        if cmd == "set":
            if args.domain is None and args.percent is None:
                return _fail(err, "rollout set: give --domain on|off, --percent N (0-100), or both")
            s = control.set(use_domain=args.domain, percent=args.percent, track=args.track, actor=ACTOR,
                            reason=args.reason, override_reason=args.override_reason)
            for name in parse_tracks(args.track):
                t = s.track(name)
                print(f"rollout set: {name} track domain path {'on' if t.use_domain else 'off'}, {t.percent} % "
                      f"(target share {t.target_percent} %)", file=out)
            if args.override_reason:
                print(f"override recorded in the audit log: {args.override_reason}", file=out)
            return 0
        if cmd == "advance":
            try:
                s, gate = control.advance(track=args.track, actor=ACTOR, override_reason=args.override_reason)
            except GateRefused as e:
                result: GateResult = e.result  # type: ignore[assignment]
                if getattr(args, "json", False):
                    print(json.dumps({"advanced": False, "gate": result.as_dict()}, indent=2, default=str), file=out)
                else:
                    _gate_lines(result, out)
                print(f"edge-station: rollout advance refused: {e}", file=err)
                return 1
            if getattr(args, "json", False):
                print(json.dumps({"advanced": True, "track": args.track, "percent": s.track(args.track).percent,
                                  "gate": gate.as_dict()}, indent=2, default=str), file=out)
            else:
                _gate_lines(gate, out)
                how = f" (OVERRIDE: {args.override_reason})" if not gate.passed else ""
                print(f"rollout advanced: {args.track} track {gate.current} % -> {s.track(args.track).percent} %"
                      f"{how}", file=out)
            return 0
        if cmd == "rollback":
            return _rollback_and_verify(control, args, out)
        if cmd == "resume":
            s = control.resume(track=args.track, actor=ACTOR, reason=args.reason)
            for name in parse_tracks(args.track):
                print(f"resumed the {name} track: latch cleared (audited); it stays at "
                      f"{s.track(name).target_percent} % until `rollout advance --track {name}`", file=out)
            return 0
        if cmd == "options":
            changes = _parse_assignments(getattr(args, "assignments", []) or [])
            s = control.set_options(changes, actor=ACTOR) if changes else control.load()
            if getattr(args, "json", False):
                print(json.dumps(s.as_dict(), indent=2, default=str), file=out)
            else:
                _options_lines(s, out)
            return 0
        if cmd == "rehearse":
            if make_station_parts is None:
                return _fail(err, "rollout rehearse: no scratch station available here", 1)
            from app.rollout.rehearse import RehearsalResult, rehearse_and_record

            track = parse_tracks(args.track)[0] if args.track != "all" else "all"
            as_json = getattr(args, "json", False)

            def show_rehearsal(r: RehearsalResult) -> None:
                print(json.dumps(r.as_dict(), indent=2, default=str) if as_json else r.table(), file=out)

            rehearsal = rehearse_and_record(
                make_station_parts, control, actor=ACTOR, track=track, show=show_rehearsal,
                progress=None if as_json else (lambda m: print(f"rehearse: {m}", file=err)))
            return 0 if rehearsal.passed else 1
        if cmd == "report":
            sub = getattr(args, "report_command", None)
            if sub == "file":
                rep = control.file_report(track=args.track, text=args.text, operator=args.operator or ACTOR,
                                          camera_id=args.camera, rule_id=args.rule)
                print(f"report #{rep.id} filed against the {rep.track} track at {rep.stage} %: "
                      "its gate holds until the report is resolved", file=out)
                return 0
            if sub == "list":
                reps = control.list_reports(args.track, open_only=args.open)
                if getattr(args, "json", False):
                    print(json.dumps([report_dict(r) for r in reps], indent=2, default=str), file=out)
                    return 0
                if not reps:
                    print("no problem reports", file=out)
                for r in reps:
                    state = "open" if r.open else f"resolved by {r.resolved_by or '-'}: {r.resolution}"
                    print(f"#{r.id} {r.track} at {r.stage} % by {r.operator or '-'} [{state}] {r.text}", file=out)
                return 0
            if sub == "resolve":
                rep = control.resolve_report(args.id, by=args.operator or ACTOR, note=args.note)
                left = len(control.open_reports(rep.track))
                print(f"report #{rep.id} resolved; {left} open report(s) left on the {rep.track} track", file=out)
                return 0
            return _fail(err, "rollout report: choose file, list or resolve")
        return _fail(err, f"rollout: unknown command {cmd!r} (use status, set, advance, rollback, resume, "
                          "options, rehearse or report)")
    except GateRefused as e:
        return _fail(err, f"rollout {cmd} refused: {e}", 1)
    except RolloutLocked as e:
        return _fail(err, f"rollout {cmd}: {e}")
    except RolloutSettingsError as e:
        return _fail(err, f"rollout {cmd}: {e}")
    except RolloutError as e:
        return _fail(err, f"rollout {cmd}: {e}", 1)


def cmd_verify(args: argparse.Namespace, make_station_parts: StationFactory, store: Any = None, *,
               out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    as_json = getattr(args, "json", False)
    timeout = getattr(args, "frame_timeout", 20.0)
    if not (0 < timeout <= 600):
        return _fail(err, f"verify: --frame-timeout {timeout} must be between 0 and 600 seconds")
    try:
        report = verify_scratch_and_record(
            make_station_parts, RolloutControl(store) if store is not None else None, actor=ACTOR,
            show=lambda r: print(r.to_json() if as_json else r.table(), file=out), frame_timeout=timeout,
            progress=None if as_json else (lambda m: print(f"verify: {m}", file=err)))
    except VerificationError as e:
        return _fail(err, f"verify: cannot run: {e}", 1)
    return 0 if report.passed else 1
