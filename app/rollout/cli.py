"""CLI: ``edge-station rollout status|set|advance|rollback`` and ``edge-station verify``.

:func:`add_cli` registers both commands on an argparse subparsers object; each
sets ``handler`` in the namespace:

* rollout commands: ``cmd_rollout(args, store) -> int``
* verify: ``cmd_verify(args, make_station_parts, store=None) -> int`` (with a store, the
  result is recorded for the stage gate and audited)

Exit codes: 0 done, 1 refused or failed (gate not passed, verification failed),
2 bad input (one clear line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from app.rollout.control import RolloutControl
from app.rollout.errors import (
    GateRefused,
    RolloutError,
    RolloutLocked,
    RolloutSettingsError,
    VerificationError,
)
from app.rollout.health import Check, Checklist, GateResult
from app.rollout.settings import STAGES, RolloutSettings
from app.rollout.verify import StationFactory, run_verification

ACTOR = "cli"


def add_cli(subparsers: Any) -> None:
    """Register ``rollout`` (with its sub-commands) and ``verify``."""
    ro = subparsers.add_parser("rollout", help="rollout of the domain implementation: status, set, advance, rollback")
    ro.set_defaults(handler=cmd_rollout, rollout_command="status", json=False)
    sub = ro.add_subparsers(dest="rollout_command", metavar="{status,set,advance,rollback}")
    st = sub.add_parser("status", help="stage, share, gate checklist, rollback checklist")
    st.add_argument("--json", action="store_true", help="print JSON")
    s = sub.add_parser("set", help="set the domain toggle and/or the rollout percent (audited)")
    s.add_argument("--domain", metavar="on|off", help="master toggle of the domain path")
    s.add_argument("--percent", metavar="N", help="share of keys on the domain path, 0-100")
    s.add_argument("--reason", default="set from the command line", help="why (goes to the audit log)")
    a = sub.add_parser("advance", help=f"advance to the next stage ({' -> '.join(map(str, STAGES))}) if the gate passes")
    a.add_argument("--json", action="store_true", help="print JSON")
    r = sub.add_parser("rollback", help="one-step rollback to legacy (toggle off, percent 0, latched)")
    r.add_argument("--reason", default="manual rollback from the command line", help="why (goes to the audit log)")
    r.add_argument("--json", action="store_true", help="print JSON")
    v = subparsers.add_parser("verify", help="compare legacy and domain on a scratch station (all 13 operations)")
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")
    v.add_argument("--frame-timeout", type=float, default=20.0, help="seconds to wait for the first frames")
    v.set_defaults(handler=cmd_verify)


def _fail(out: TextIO, message: str, code: int = 2) -> int:
    print(f"edge-station: {message}", file=out)
    return code


_MARK = {"pass": "[x]", "fail": "[!]", "pending": "[ ]", "inconclusive": "[?]"}


def _checks(checks: tuple[Check, ...], out: TextIO) -> None:
    for c in checks:
        print(f"  {_MARK.get(str(c.status), '[?]')} {c.name:<22} {c.message}", file=out)


def _settings_lines(s: RolloutSettings, out: TextIO) -> None:
    locked = s.locked_fields()
    lock = {f: f" (locked by {v})" for f, v in locked.items()}
    print(f"domain path      {'on' if s.use_domain else 'off'}{lock.get('use_domain', '')}", file=out)
    print(f"percent          {s.percent} %{lock.get('percent', '')}", file=out)
    print(f"stage            {s.stage} % (target share {s.target_percent} %)", file=out)
    print(f"auto-rollback    {'on' if s.auto_rollback else 'off'}", file=out)
    if s.latched:
        print(f"ROLLED BACK      latched: {s.latch_reason}", file=out)


def _gate_lines(g: GateResult, out: TextIO) -> None:
    nxt = f"{g.current} % -> {g.next} %" if g.next is not None else "no further stage"
    print(f"stage gate       {nxt}: {'PASSES' if g.passed else 'holds'}", file=out)
    _checks(g.checks, out)


def _checklist_lines(c: Checklist, out: TextIO) -> None:
    state = "verified" if c.complete else ("FAILED" if c.failed else "not yet verified")
    print(f"rollback checklist: {state}", file=out)
    _checks(c.checks, out)


def cmd_rollout(args: argparse.Namespace, store: Any, *, out: TextIO | None = None,
                err: TextIO | None = None, env: Any = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    control = RolloutControl(store, env=env)
    cmd = getattr(args, "rollout_command", None) or "status"
    try:
        if cmd == "status":
            status = control.status()
            if getattr(args, "json", False):
                print(json.dumps(status.as_dict(), indent=2, default=str), file=out)
                return 0
            _settings_lines(status.settings, out)
            for name, k in status.keys.items():
                if k["keys"]:
                    print(f"keys {name:<11} {k['domain']} of {k['keys']} on the domain path", file=out)
            _gate_lines(status.gate, out)
            if status.checklist is not None:
                _checklist_lines(status.checklist, out)
            return 0
        if cmd == "set":
            if args.domain is None and args.percent is None:
                return _fail(err, "rollout set: give --domain on|off, --percent N (0-100), or both")
            s = control.set(use_domain=args.domain, percent=args.percent, actor=ACTOR, reason=args.reason)
            print(f"rollout set: domain path {'on' if s.use_domain else 'off'}, {s.percent} % "
                  f"(target share {s.target_percent} %)", file=out)
            return 0
        if cmd == "advance":
            try:
                s, gate = control.advance(actor=ACTOR)
            except GateRefused as e:
                result: GateResult = e.result  # type: ignore[assignment]
                if getattr(args, "json", False):
                    print(json.dumps({"advanced": False, "gate": result.as_dict()}, indent=2, default=str), file=out)
                else:
                    _gate_lines(result, out)
                print(f"edge-station: rollout advance refused: the gate holds at {result.current} % "
                      f"({len(result.reasons)} items not passed)", file=err)
                return 1
            if getattr(args, "json", False):
                print(json.dumps({"advanced": True, "percent": s.percent, "gate": gate.as_dict()}, indent=2,
                                 default=str), file=out)
            else:
                _gate_lines(gate, out)
                print(f"rollout advanced: {gate.current} % -> {s.percent} %", file=out)
            return 0
        if cmd == "rollback":
            s = control.rollback(actor=ACTOR, reason=args.reason)
            checklist = control.checklist(s)
            if getattr(args, "json", False):
                print(json.dumps({"settings": s.as_dict(), "checklist": checklist.as_dict() if checklist else None},
                                 indent=2, default=str), file=out)
            else:
                print("rolled back: domain path off, percent 0, latched (wins over force and environment)", file=out)
                if checklist is not None:
                    _checklist_lines(checklist, out)
                    print(f"run `edge-station rollout status` after {s.thresholds.window_s:.0f} s to verify "
                          "the rest of the checklist", file=out)
            return 0
        return _fail(err, f"rollout: unknown command {cmd!r} (use status, set, advance or rollback)")
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
        report = run_verification(make_station_parts, frame_timeout=timeout,
                                  progress=None if as_json else (lambda m: print(f"verify: {m}", file=err)))
    except VerificationError as e:
        return _fail(err, f"verify: cannot run: {e}", 1)
    print(report.to_json() if as_json else report.table(), file=out)
    if store is not None:
        RolloutControl(store).record_verification(
            report.passed, len(report.mismatches), len(report.failures), actor=ACTOR,
            detail={"mismatches": report.as_dict()["mismatches"], "failures": report.as_dict()["failures"],
                    "errors": report.errors})
    return 0 if report.passed else 1
