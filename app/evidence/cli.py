"""``edge-station evidence list|usage|export|prune``: the evidence store from the command line.

These read the data dir's database and evidence files; they work with or without a running
station (recording a new clip needs the running station's workers: the window's
Camera > Save clip, or the control API).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli_common import common_args

__all__ = ["add_cli"]


def add_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("evidence", help="list, export or prune alert snapshots and clips",
                       description="Snapshots and clips of camera alerts, kept in <data dir>/evidence.")
    add_common(p)
    p.set_defaults(handler=cmd_evidence, evidence_command="usage")
    esub = p.add_subparsers(dest="evidence_command", metavar="{list,usage,export,prune,settings}")
    c = esub.add_parser("list", help="every snapshot and clip, newest first")
    add_common(c)
    c.add_argument("--camera", default=None, help="only this camera (name or id; a removed camera by id)")
    c.add_argument("--limit", type=int, default=200)
    c.set_defaults(handler=cmd_evidence)
    c = esub.add_parser("usage", help="per camera: snapshots, clips and the space they take")
    add_common(c)
    c.set_defaults(handler=cmd_evidence)
    c = esub.add_parser("export", help="one alert event as a ZIP: the event as JSON, its snapshots and clip")
    add_common(c)
    c.add_argument("event_id", type=int)
    c.add_argument("-o", "--output", type=Path, default=Path("."), help="a .zip file or a directory (default: .)")
    c.set_defaults(handler=cmd_evidence)
    c = esub.add_parser("prune", help="apply retention now (age, then total size, oldest first)")
    add_common(c)
    c.set_defaults(handler=cmd_evidence)
    c = esub.add_parser("settings", help="show the evidence settings, or change them: KEY=VALUE ...",
                        description="Keys: " + ", ".join(_KEYS) + " (see docs/evidence.md). "
                                    "A running station applies a change within a few seconds; a new "
                                    "pre-roll applies when a worker next starts.")
    add_common(c)
    c.add_argument("changes", nargs="*", metavar="KEY=VALUE")
    c.set_defaults(handler=cmd_evidence)


_KEYS = ("enabled", "clips", "preroll_s", "postroll_s", "max_age_days", "max_total_mb", "min_free_mb")


def _parse_changes(items: list[str]) -> dict[str, object]:
    """``["preroll_s=5", "clips=off"]`` -> ``{"evidence.preroll_s": 5.0, "evidence.clips": False}``,
    checked against the same bounds the station applies; all or nothing."""
    from app.domain.evidence import EvidenceSettings

    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().removeprefix("evidence.")
        if not sep or key not in _KEYS:
            raise _Refused(f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(_KEYS)}", 2)
        if key in ("enabled", "clips"):
            flags = {"on": True, "true": True, "yes": True, "1": True,
                     "off": False, "false": False, "no": False, "0": False}
            if text.strip().lower() not in flags:
                raise _Refused(f"{item!r}: {key} must be on or off", 2)
            out[f"evidence.{key}"] = flags[text.strip().lower()]
            continue
        try:
            value = float(text)
        except ValueError:
            raise _Refused(f"{item!r}: {key} must be a number", 2) from None
        checked = EvidenceSettings.from_settings({f"evidence.{key}": value})
        if getattr(checked, key) != value:
            raise _Refused(f"{item!r}: {key} is out of range (see docs/evidence.md)", 2)
        out[f"evidence.{key}"] = value
    return out


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} kB"


class _Refused(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def cmd_evidence(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _Refused as e:
        print(f"edge-station evidence: {e}", file=sys.stderr)
        return e.code


def _run(args: argparse.Namespace) -> int:
    from app.domain.evidence import EvidenceSettings
    from app.evidence.store import EvidenceStore
    from app.platform.identity import open_station_store
    from app.platform.paths import resolve_paths

    paths = resolve_paths(*common_args(args).where()).ensure()
    store = open_station_store(paths.db_url, paths.data_dir, common_args(args).station)
    try:
        ev_store = EvidenceStore(paths.data_dir / "evidence", store)
        with store.uow() as uow:
            settings = EvidenceSettings.from_settings(uow.settings.all())
        command = args.evidence_command
        if command == "usage":
            usage = ev_store.usage()
            if not usage:
                print("no evidence yet")
            for u in usage:
                print(f"{u.camera_name or u.camera_id}: {u.snapshots} snapshots, {u.clips} clips, {_size(u.bytes)}")
            print(f"total {_size(ev_store.total_bytes())} of at most {settings.max_total_mb:g} MB, kept "
                  f"{settings.max_age_days:g} days, in {ev_store.root}")
            return 0
        if command == "list":
            camera_id = None
            if args.camera is not None:
                with store.uow() as uow:
                    cam = uow.cameras.get_by_name(args.camera)
                if cam is None and not args.camera.isdigit():
                    raise _Refused(f"no camera named {args.camera!r} (a removed camera: give its id)", 1)
                camera_id = cam.id if cam is not None else int(args.camera)
            for e in ev_store.list(camera_id, args.limit):
                event = f"event {e.event_id}" if e.event_id is not None else "manual"
                print(f"{e.id:6d}  {e.created_at.astimezone():%Y-%m-%d %H:%M:%S}  {e.camera_name:<16} "
                      f"{e.kind:<8} {e.moment:<8} {event:<12} {_size(e.bytes):>9}  {ev_store.path_of(e)}")
            return 0
        if command == "export":
            from app.alerts.events import StoreEventSink
            from app.evidence.export import export_event

            alert_event = StoreEventSink(store).get(args.event_id)
            if alert_event is None:
                raise _Refused(f"alert event {args.event_id} does not exist", 1)
            try:
                out = export_event(ev_store, alert_event, args.output)
            except ValueError as e:
                raise _Refused(str(e), 2) from None
            print(f"exported event {alert_event.id} ({len(ev_store.for_event(args.event_id))} files) to {out}")
            return 0
        if command == "settings":
            changes = _parse_changes(args.changes)
            if changes:
                from app.domain.audit import AuditEntry

                with store.uow() as uow:
                    for key, value in changes.items():
                        old = uow.settings.get(key)
                        uow.settings.set(key, value)
                        uow.audit.add(AuditEntry(op="settings.set", outcome="ok", key=key, actor="cli",
                                                 detail={"old": old, "new": value}))
                    uow.commit()
                    settings = EvidenceSettings.from_settings(uow.settings.all())
            for key in _KEYS:
                print(f"evidence.{key} = {getattr(settings, key)}")
            return 0
        if command == "prune":
            report = ev_store.enforce(settings)
            swept = ev_store.sweep()
            print(f"removed {report.by_age} by age and {report.by_size} by size ({_size(report.freed_bytes)}); "
                  f"{swept} leftover files")
            return 0
    finally:
        store.dispose()
    raise _Refused(f"unknown evidence action {command!r}", 2)
