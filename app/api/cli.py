"""``edge-station ctl``: run operations on the *running* station through its local API.

    edge-station ctl list
    edge-station ctl start Lobby --force-domain
    edge-station ctl snapshot 3 -o lobby.png
    edge-station ctl create-rule --rule '{"name": "low fps", "metric": "fps", "comparator": "<", "threshold": 5}'
    edge-station ctl update-rule 7 --set threshold=3 --expected-version 1
    edge-station ctl rollout --percent 25
    edge-station ctl verify            # the verification scenario, live, through the API

The station is found through ``run/api.json`` in the data dir (or ``--url``) and
the token is read from the data dir. Exit codes: 0 done, 1 the station refused
(the error code is printed) or could not be reached, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.api.client import ApiClient, ClientError, Response
from app.cli_common import EXIT_ERROR, EXIT_USAGE, CliError, add_common, common_args

if TYPE_CHECKING:
    from app.store import Store

#: ctl name -> (operation or endpoint, needs a target)
COMMANDS: dict[str, tuple[str, bool]] = {
    "list": ("list_status", False),
    "status": ("camera_status", True),
    "start": ("start_camera", True),
    "stop": ("stop_camera", True),
    "restart": ("restart_camera", True),
    "activate": ("activate_camera", True),
    "deactivate": ("deactivate_camera", True),
    "logs": ("camera_logs", True),
    "snapshot": ("camera_snapshot", True),
    "probe": ("probe_camera", True),
    "stats": ("camera_stats", True),
    "create-rule": ("create_rule", False),
    "update-rule": ("update_rule", True),
    "clip": ("save_clip", True),
    "rollout": ("rollout", False),
    "health": ("health", False),
    "metrics": ("metrics", False),
    "verify": ("verify", False),
}
ALIASES = {op: name for name, (op, _) in COMMANDS.items()}  # start_camera -> start, ...

_CAMERA_ACTIONS = {"camera_status": "status", "start_camera": "start", "stop_camera": "stop",
                   "restart_camera": "restart", "activate_camera": "activate", "deactivate_camera": "deactivate",
                   "camera_logs": "logs", "camera_snapshot": "snapshot", "probe_camera": "probe",
                   "camera_stats": "stats"}


def _fail(message: str, code: int = EXIT_ERROR) -> CliError:
    return CliError(message, code)


def add_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``ctl`` on the ``edge-station`` subparsers."""
    names = sorted({*COMMANDS, *ALIASES})
    p = sub.add_parser("ctl", help="run an operation on the running station through its local API",
                       description=__doc__.split("\n\n")[0] + " Operations: " + ", ".join(COMMANDS) + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("operation", choices=names, metavar="OPERATION", help=", ".join(COMMANDS))
    p.add_argument("target", nargs="?", help="camera (id or name), or the rule id for update-rule")
    force = p.add_mutually_exclusive_group()
    force.add_argument("--force-domain", dest="force", action="store_const", const="domain",
                       help="run on the domain implementation")
    force.add_argument("--force-legacy", dest="force", action="store_const", const="legacy",
                       help="run on the legacy implementation")
    p.add_argument("--url", help="the station's API (default: found through the data dir)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.add_argument("--active-only", action="store_true", help="list: only active cameras")
    p.add_argument("--timeout", type=float, help="stop: seconds before KILL; probe: seconds the probe may take")
    p.add_argument("--limit", type=int, help="logs: at most this many lines")
    p.add_argument("--window", type=float, help="stats: window in seconds")
    p.add_argument("-o", "--output", type=Path, help="snapshot: write the PNG here")
    p.add_argument("--rule", help="create-rule: the rule as JSON, or @FILE")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="update-rule: a change (VALUE is JSON, or text); repeatable")
    p.add_argument("--expected-version", type=int, help="update-rule: refuse if the rule changed meanwhile")
    p.add_argument("--use-domain", choices=("on", "off"), help="rollout: the master toggle")
    p.add_argument("--percent", type=int, help="rollout: the domain percentage")
    p.add_argument("--rollback", action="store_true", help="rollout: roll back in one step")
    p.add_argument("--advance", action="store_true", help="rollout: advance to the next stage (gated)")
    p.add_argument("--track", choices=("rules", "cameras", "all"),
                   help="rollout: the track to change (default: both; advance: each whose gate passes)")
    p.add_argument("--override-reason", help="rollout: raise a share or advance although the gate holds (audited)")
    p.add_argument("--pre", type=float, help="clip: seconds before now from the camera's buffer")
    p.add_argument("--post", type=float, help="clip: seconds after now to record")
    p.add_argument("--camera", help="verify: the camera to run the scenario on (default: the first)")
    p.set_defaults(handler=cmd_ctl)


def _client(args: argparse.Namespace) -> ApiClient:
    from app.platform.paths import resolve_paths

    paths = resolve_paths(*common_args(args).where())
    try:
        return ApiClient.for_data_dir(paths.data_dir, url=args.url)
    except ClientError as e:
        raise _fail(str(e)) from None


def _camera_id(client: ApiClient, ref: str | None) -> int:
    if ref is None:
        raise _fail("name the camera (its id or name)", 2)
    if ref.isdigit():
        return int(ref)
    r = client.cameras()
    if not r.ok:
        raise _fail(_describe_error(r))
    for item in r.data["items"]:
        if item["name"].lower() == ref.lower():
            return int(item["camera_id"])
    raise _fail(f"the station has no camera named {ref!r}")


def _describe_error(r: Response) -> str:
    try:
        err = r.json.get("error") or {}
    except ClientError:
        return f"HTTP {r.status}: {r.body[:200]!r}"
    text = f"{err.get('message', 'HTTP ' + str(r.status))} [{err.get('code', r.status)}]"
    problems = (err.get("details") or {}).get("errors") or []
    if problems:
        text += "".join(f"\n  {p['field']}: {p['message']}" for p in problems)
    return text


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_ctl(args: argparse.Namespace) -> int:
    op = COMMANDS[args.operation][0] if args.operation in COMMANDS else args.operation
    client = _client(args)
    try:
        if op == "verify":
            return _verify(client, args)
        r = _request(client, op, args)
    except ClientError as e:
        raise _fail(str(e)) from None
    finally:
        client.close()
    if not r.ok:
        if args.json:
            print(r.body.decode(errors="replace"))
        raise _fail(_describe_error(r))
    if op == "metrics":
        sys.stdout.write(r.body.decode())
        return 0
    if op == "camera_snapshot" and args.output is not None:
        args.output.write_bytes(r.body)
        print(f"wrote {args.output} ({len(r.body)} bytes, frame {r.headers.get('x-snapshot-seq')}, "
              f"served by {r.headers.get('x-edge-path')})")
        return 0
    if args.json:
        print(json.dumps(r.json, indent=2))
        return 0
    print(_human(op, r.json))
    return 0


def _request(client: ApiClient, op: str, args: argparse.Namespace) -> Response:
    force = args.force
    if op == "list_status":
        return client.cameras(force=force, query={"active_only": args.active_only or None})
    if op in _CAMERA_ACTIONS:
        cam = _camera_id(client, args.target)
        query: dict[str, Any] = {}
        if op in ("stop_camera", "probe_camera") and args.timeout is not None:
            query["timeout"] = args.timeout
        if op == "camera_logs" and args.limit is not None:
            query["limit"] = args.limit
        if op == "camera_stats" and args.window is not None:
            query["window_s"] = args.window
        if op == "camera_snapshot" and args.output is not None:
            query["format"] = "png"
        return client.camera(_CAMERA_ACTIONS[op], cam, force=force, query=query)
    if op == "create_rule":
        if not args.rule:
            raise _fail("give the rule with --rule JSON or --rule @FILE", 2)
        text = Path(args.rule[1:]).read_text() if args.rule.startswith("@") else args.rule
        try:
            body = json.loads(text)
        except ValueError as e:
            raise _fail(f"--rule is not JSON: {e}", 2) from None
        return client.op("POST", "/alerts/rules", force=force, body=body)
    if op == "update_rule":
        if args.target is None or not args.target.isdigit():
            raise _fail("name the rule by its id: ctl update-rule ID --set FIELD=VALUE", 2)
        changes = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise _fail(f"--set {item!r}: write FIELD=VALUE", 2)
            changes[key.strip()] = _parse_value(value)
        body = {"changes": changes, "expected_version": args.expected_version}
        return client.op("PUT", f"/alerts/rules/{args.target}", force=force, body=body)
    if op == "rollout":
        change: dict[str, Any] = {}
        if args.use_domain is not None:
            change["use_domain"] = args.use_domain == "on"
        if args.percent is not None:
            change["percent"] = args.percent
        if args.rollback:
            change["rollback"] = True
        if args.advance:
            change["advance"] = True
        if change:
            if args.track:
                change["track"] = args.track
            if args.override_reason and not args.rollback:
                change["override_reason"] = args.override_reason
            return client.request("PUT", "/api/v1/rollout", body={**change, "reason": "ctl"})
        return client.request("GET", "/api/v1/rollout")
    if op == "save_clip":
        cam = _camera_id(client, args.target)
        clip = {k: v for k, v in (("pre", args.pre), ("post", args.post)) if v is not None}
        return client.request("POST", f"/api/v1/cameras/{cam}/clip", body=clip)
    if op == "health":
        return client.request("GET", "/api/v1/monitoring/health")
    if op == "metrics":
        return client.request("GET", "/api/v1/monitoring/metrics", headers={"Accept": "text/plain"})
    raise _fail(f"unknown operation {op!r}", 2)


def _status_line(s: dict[str, Any]) -> str:
    fps = f" {s['fps']:.1f} fps" if s.get("fps") is not None and s["state"] == "running" else ""
    pid = f" pid {s['pid']}" if s.get("pid") else ""
    src = f" source {s['source']}" if s.get("source") else ""
    active = "" if s["active"] else " (inactive)"
    return f"{s['camera_id']:>4}  {s['name']}: {s['state']}{active}{pid}{fps}{src}"


def _human(op: str, payload: dict[str, Any]) -> str:
    data: Any = payload.get("data")  # the answer's JSON document
    route: Any = payload.get("route")
    via = f"  [served by {route['served_by']}: {route['reason']}]" if route else ""
    if op == "list_status":
        lines = [_status_line(s) for s in data["items"]] or ["no cameras"]
        return "\n".join(lines) + via
    if op in ("camera_status", "start_camera", "stop_camera", "restart_camera", "activate_camera",
              "deactivate_camera"):
        return _status_line(data) + via
    if op == "camera_logs":
        return "\n".join(f"{ln['source']:<10} {ln['level']:<7} {ln['text']}" for ln in data["lines"]) + via
    if op == "camera_snapshot":
        return f"frame {data['seq']} {data['width']}x{data['height']} (use -o FILE to save the PNG){via}"
    if op == "probe_camera":
        if data["ok"]:
            return (f"camera {data['camera_id']}: {data['codec']} {data['width']}x{data['height']} "
                    f"{data['fps'] or '?'} fps ({data['elapsed']:.2f} s){via}")
        return f"camera {data['camera_id']}: probe failed: {data['error']}{via}"
    if op == "camera_stats":
        return "\n".join(f"{k}: {v}" for k, v in data.items()) + via
    if op in ("create_rule", "update_rule"):
        rule = data["rule"]
        return (f"rule {rule['id']} {rule['name']!r} v{rule['version']}: {rule['metric']} {rule['comparator']} "
                f"{rule['threshold']:g} ({'enabled' if rule['enabled'] else 'disabled'}){via}")
    if op == "rollout":
        tracks = data.get("tracks") or {"all": {"settings": data["settings"]}}
        lines = []
        for name, t in tracks.items():
            s = t["settings"]
            latch = f"LATCHED (rolled back): {s.get('latch_reason', '')}" if s["latched"] else "not latched"
            lines.append(f"{name}: domain {'on' if s['use_domain'] else 'off'}, {s['percent']} %, {latch}")
        return "\n".join(lines)
    if op == "save_clip":
        ev = data.get("evidence", data) if isinstance(data, dict) else {}
        length = f"{ev['duration']:.1f} s" if ev.get("duration") else "?"
        pre = f", {ev['preroll']:.1f} s before now" if ev.get("preroll") else ""
        note = f" ({ev['note']})" if ev.get("note") else ""
        return (f"saved clip {ev.get('id')}: {length}{pre}, {ev.get('bytes', 0)} bytes, "
                f"evidence/{ev.get('path')} in the data dir{note}")
    if op == "health":
        lines = [f"station: {data['status']}",
                 f"database: {'ok' if data['database']['ok'] else data['database']['error']}",
                 f"supervisor: {'ok' if data['supervisor']['ok'] else data['supervisor']['error']}",
                 f"rollout: {data['rollout']['verdict']}"]
        lines += [f"camera {c['camera_id']} {c['name']}: {c['state']}" + (f" - {c['problem']}" if c['problem'] else "")
                  for c in data["cameras"]]
        return "\n".join(lines)
    return json.dumps(payload, indent=2)


def _verify(client: ApiClient, args: argparse.Namespace) -> int:
    from app.api.live_verify import LiveReport, LiveVerifyError, run_live_verification
    from app.rollout.gate_record import StoreRecorder, verify_and_record

    def show(report: LiveReport) -> None:
        if args.json:
            print(json.dumps({"passed": report.passed, "mismatches": report.mismatches,
                              "failures": report.failures, "rows": report.rows}, indent=2))
        else:
            print(report.table())

    # the result goes where the stage gate reads it (the station's database), as ``verify`` does
    recorder = StoreRecorder(
        lambda: _station_store(args),
        unavailable=lambda e: print(f"edge-station: warning: the result was not recorded for the stage gate: {e}",
                                    file=sys.stderr))
    try:
        report = verify_and_record(
            lambda: run_live_verification(client, args.camera, log=lambda s: print(s, file=sys.stderr)),
            recorder, actor="verify --live", show=show)
    except LiveVerifyError as e:
        raise _fail(str(e)) from None
    return 0 if report.passed else 1


def _station_store(args: argparse.Namespace) -> Store:
    """The database of the station this box runs, for its own settings and audit (docs/fleet.md)."""
    from app.platform.identity import open_station_store
    from app.platform.paths import resolve_paths

    paths = resolve_paths(*common_args(args).where())
    return open_station_store(paths.db_url, paths.data_dir, common_args(args).station)


def cmd_verify_live(args: argparse.Namespace) -> int:
    """For ``edge-station verify --live`` (args: data_dir/db, optional url, camera, json)."""
    for name, default in (("url", None), ("camera", None), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    client = _client(args)
    try:
        return _verify(client, args)
    except ClientError as e:
        raise _fail(str(e)) from None
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """Run ``ctl`` on its own (``python -m app.api.cli ...``), with the app's error handling."""
    parser = argparse.ArgumentParser(prog="edge-station")
    sub = parser.add_subparsers(dest="command")
    add_cli(sub, add_common)
    try:
        args = parser.parse_args(["ctl", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as e:
        return int(e.code or 0) and EXIT_USAGE
    try:
        return int(args.handler(args))
    except CliError as e:
        print(f"edge-station: error: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    sys.exit(main())
