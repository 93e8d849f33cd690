"""``edge-station fleet targets``: the fleet's Prometheus scrape targets, as a file_sd file.

Every running station heartbeats where its control API answers (``host:port``); this writes the
JSON that Prometheus's file-based discovery reads (docs/monitoring.md, "The targets file"): one
group per station with its ``station`` label. Written next to the file and renamed over it, so
Prometheus never reads half a file; run it from cron or after a station joins.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from app.domain.fleet import StationInfo


def add_targets_cli(fsub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    help_ = "the fleet's Prometheus scrape targets (file_sd JSON, one group per station with its station label)"
    c = fsub.add_parser("targets", help=help_, description=help_ + "; stations that stopped cleanly or were "
                        "replaced are left out (--all keeps them), stations that are gone stay in, so that "
                        "EdgeStationDown fires for them")
    add_common(c)
    c.add_argument("--write", metavar="FILE", default=None,
                   help="write the JSON to FILE (atomically: a temporary file renamed over it) instead of printing it")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="one more label on every target (site=north, say); may be repeated")
    c.add_argument("--all", action="store_true", help="list stopped and replaced stations too")
    c.set_defaults(handler=cmd_fleet_targets)


def _labels(items: list[str]) -> dict[str, str]:
    import re

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key) or key.startswith("__"):
            raise CliError(f"--label {item!r}: expected KEY=VALUE with KEY a Prometheus label name", EXIT_USAGE)
        if key in ("station", "job", "instance"):
            raise CliError(f"--label {item!r}: {key} is set by the scrape job or by this command", EXIT_USAGE)
        out[key] = value
    return out


def scrape_address(info: StationInfo) -> tuple[str | None, str | None]:
    """(``host:port`` for Prometheus, or None; a note when the address is not what a remote Prometheus can use)."""
    if not info.api:
        return None, f"{info.name}: serves no control API (api.enabled is off or it did not start)"
    host, _, port = info.api.rpartition(":")
    bare = host.strip("[]")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return info.api, None
    if ip.is_unspecified:  # listening on every address: reach it by its host name
        return f"{info.host or bare}:{port}", None
    if ip.is_loopback:
        return info.api, (f"{info.name}: its API listens on {bare} only: just a Prometheus on its own box "
                          f"({info.host or '?'}) can scrape it (docs/monitoring.md, 'Tokens and reaching a station')")
    return info.api, None


def targets_document(stations: list[StationInfo], *, labels: dict[str, str], every: bool) -> tuple[
        list[dict[str, Any]], list[str]]:
    """The file_sd groups (sorted by station name) and the notes about stations left out or unreachable."""
    from app.domain.fleet import StationState

    groups: list[dict[str, Any]] = []
    notes: list[str] = []
    for s in sorted(stations, key=lambda s: s.name.lower()):
        if not every and s.state is not StationState.RUNNING:
            continue
        address, note = scrape_address(s)
        if note:
            notes.append(note)
        if address is not None:
            groups.append({"targets": [address], "labels": {"station": s.name, **labels}})
    return groups, notes


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.json: Prometheus never reads it
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_ERROR) from None


def cmd_fleet_targets(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.cli_common import EXIT_DATABASE
    from app.fleet.cli import open_registry

    labels = _labels(args.label)
    with open_registry(args) as (registry, shown):
        try:
            _now, stations = registry.all()
        except SQLAlchemyError as e:
            raise CliError(f"cannot read the fleet registry of {shown}: {getattr(e, 'orig', None) or e}",
                           EXIT_DATABASE) from None
    groups, notes = targets_document(stations, labels=labels, every=args.all)
    text = json.dumps(groups, indent=2) + "\n"
    for n in notes:
        print(f"edge-station: note: {n}", file=sys.stderr)
    if args.write:
        path = Path(args.write)
        write_atomically(path, text)
        print(f"wrote {len(groups)} target{'s' if len(groups) != 1 else ''} to {path}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


__all__ = ["add_targets_cli", "cmd_fleet_targets", "scrape_address", "targets_document", "write_atomically"]
