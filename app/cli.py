"""``edge-station`` / ``python -m app``: the window, the headless station, and admin commands.

Every failure the user can cause ends in one clear line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import APP_NAME, __version__
from app.cli_common import (
    EXIT_ALREADY_RUNNING,
    EXIT_CHECK_FAILED,
    EXIT_DATA_DIR,
    EXIT_DATABASE,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    common_args,
)
from app.cli_common import add_common as _add_common

if TYPE_CHECKING:
    from app.domain import Camera
    from app.platform.paths import StationPaths
    from app.station.port import ApiHandle, StationPort
    from app.store import Store
    from app.store.uow import SqlUnitOfWork

__all__ = [
    "EXIT_ALREADY_RUNNING", "EXIT_CHECK_FAILED", "EXIT_DATABASE", "EXIT_DATA_DIR", "EXIT_ERROR", "EXIT_OK",
    "EXIT_USAGE", "CliError", "build_parser", "main",
]


def _seconds(*, positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds (> 0, or >= 0); nan, inf and negatives refused."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "above 0" if positive else "0 or more"
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds, {bound}")
        return value

    return parse


def _api_port(text: str) -> int:
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535)")
    return port


def _add_api_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-port", metavar="PORT", type=_api_port, default=argparse.SUPPRESS,
                   help="serve the local control API on this port (default: $EDGE_STATION_API_PORT, "
                        "else the api.port setting, 8765)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description="Edge Station: a camera station on a small PC. Without a command it opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    _add_common(parser)
    parser.add_argument("--kiosk", action="store_true", help="fullscreen camera wall for an unattended screen")
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo cameras into a new database")
    _add_api_port(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_common(p)
        p.set_defaults(handler=handler)
        return p

    p = add("headless", "run the station without a window until TERM or Ctrl-C", cmd_headless)
    p.add_argument("--no-demo", action="store_true", help="do not seed demo cameras into a new database")
    _add_api_port(p)
    p.add_argument("--duration", type=_seconds(positive=True), default=None, metavar="S",
                   help="stop after S seconds (a number above 0)")
    p.add_argument("--status-interval", type=_seconds(positive=False), default=10.0, metavar="S",
                   help="print every camera's state every S seconds (0: never; default 10)")

    p = add("import", "import cameras from a YAML file (all or nothing)", cmd_import)
    p.add_argument("file", type=Path)
    p.add_argument("--replace", action="store_true", help="remove cameras that are not in the file")
    p.add_argument("--dry-run", action="store_true", help="check the file and report what would change")

    p = add("export", "export cameras to a YAML file", cmd_export)
    p.add_argument("file", type=Path)
    p.add_argument("--include-secrets", action="store_true", help="write passwords in source URLs in clear")

    p = add("cameras", "list, add or remove cameras", lambda a: _need_sub(p_cams))
    p_cams = p
    csub = p.add_subparsers(dest="cameras_command", metavar="ACTION")
    c = csub.add_parser("list", help="list cameras")
    _add_common(c)
    c.add_argument("--show-secrets", action="store_true", help="show passwords in source URLs")
    c.set_defaults(handler=cmd_cameras_list)
    c = csub.add_parser("add", help="add a camera")
    _add_common(c)
    c.add_argument("name")
    c.add_argument("source", help="test://moving, rtsp://user:pass@host/path, /path/to/file.mp4, /dev/video0 ...")
    c.add_argument("--inactive", action="store_true", help="add it without autostart")
    c.add_argument("--max-fps", type=float, default=None)
    c.add_argument("--loop", action="store_true", help="loop a file source")
    c.add_argument("--stall-timeout", type=float, default=10.0)
    c.add_argument("--location", default="")
    c.add_argument("--tag", action="append", default=[], dest="tags")
    c.set_defaults(handler=cmd_cameras_add)
    c = csub.add_parser("remove", help="remove a camera (by name or id)")
    _add_common(c)
    c.add_argument("camera")
    c.add_argument("--delete-evidence", action="store_true",
                   help="also delete its snapshots and clips now (default: kept until retention removes them)")
    c.set_defaults(handler=cmd_cameras_remove)

    p = add("doctor", "check that this machine can run the station", cmd_doctor)

    # Feature modules register their own commands.
    for register in _feature_commands():
        register(sub, _add_common)

    add("migrate", "create or upgrade the database schema, then exit", cmd_migrate)

    return parser


def _window_parser() -> argparse.ArgumentParser:
    """The options of the default command (the window): the full parser's, without its commands."""
    p = argparse.ArgumentParser(prog=APP_NAME, add_help=False, allow_abbrev=False, exit_on_error=False)
    _add_common(p)
    p.add_argument("--kiosk", action="store_true")
    p.add_argument("--no-demo", action="store_true")
    _add_api_port(p)
    return p


def _parse_window_args(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` parsed as the window command, or None when it is anything else (a command, help, a typo).

    Building the full parser imports every feature's commands (rollout, API, kiosk), which costs the
    window about a third of a second before its first paint; the full parser handles everything else.
    """
    try:
        args, rest = _window_parser().parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    return None if rest else args


def _feature_commands() -> list[Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]]:
    from app.api.cli import add_cli as api_cli
    from app.evidence.cli import add_cli as evidence_cli
    from app.fleet.cli import add_cli as fleet_cli
    from app.kiosk.cli import add_cli as kiosk_cli

    return [_register_rollout, api_cli, kiosk_cli, evidence_cli, fleet_cli]


def _register_rollout(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    from app.rollout.cli import add_cli

    add_cli(sub)
    # The rollout module's handlers take an open store / a scratch-station factory; adapt them.
    sub.choices["rollout"].set_defaults(handler=cmd_rollout)
    sub.choices["verify"].set_defaults(handler=cmd_verify)
    for name in ("rollout", "verify"):
        add_common(sub.choices[name])
    verify = sub.choices["verify"]
    verify.add_argument("--live", action="store_true",
                        help="run the scenario against the running station through its control API")
    verify.add_argument("--url", default=None, help="the running station's API URL (default: from the data dir)")
    verify.add_argument("--camera", default=None, help="camera (name or id) to exercise with --live")


def cmd_rollout(args: argparse.Namespace) -> int:
    from app.rollout.cli import cmd_rollout as run
    from app.station import live_drill_station, scratch_drill_station, scratch_station

    with _store(args) as store:
        return run(args, store, make_station_parts=scratch_station, make_drill_station=scratch_drill_station,
                   open_live_station=live_drill_station)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify on a scratch station; the result is recorded in this station's database for the gate."""
    if args.live:
        from app.api.cli import cmd_verify_live

        return cmd_verify_live(args)
    from app.rollout.cli import cmd_verify as run
    from app.station import scratch_station

    with _store(args) as store:
        return run(args, scratch_station, store)


def _need_sub(p: argparse.ArgumentParser) -> int:
    p.print_usage(sys.stderr)
    raise CliError("choose an action: list, add or remove", EXIT_USAGE)


# ------------------------------------------------------------------ helpers


def _paths(args: argparse.Namespace) -> StationPaths:
    from app.platform.paths import PathError, resolve_paths

    paths = resolve_paths(*common_args(args).where())
    try:
        return paths.ensure()
    except PathError as e:
        raise CliError(str(e), EXIT_DATA_DIR) from None


def _open_store(args: argparse.Namespace) -> Store:
    """The store, for the station this command acts for (``acting_station_id``): its own cameras,
    rules and settings, as the station sees them (docs/fleet.md)."""
    from app.platform.identity import IdentityError, open_station_store
    from app.store import StoreError

    paths = _paths(args)
    try:
        return open_station_store(paths.db_url, paths.data_dir, common_args(args).station)
    except StoreError as e:
        raise CliError(str(e), EXIT_DATABASE) from None
    except IdentityError as e:
        raise CliError(str(e), EXIT_DATA_DIR) from None


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    """The opened (migrated) store for one command, released when it is done."""
    store = _open_store(args)
    try:
        yield store
    finally:
        store.dispose()


def _find_camera(uow: SqlUnitOfWork, ref: str) -> Camera:
    cam = uow.cameras.get_by_name(ref)
    if cam is None and ref.isdigit():
        cam = uow.cameras.get(int(ref))
    if cam is None:
        raise CliError(f"no camera named or numbered {ref!r}", EXIT_ERROR)
    return cam


def _station_name(args: argparse.Namespace) -> str:
    """The station's name (--station, $EDGE_STATION_NAME, the host name), checked before anything opens."""
    from app.platform.identity import IdentityError, station_name

    try:
        return station_name(common_args(args).station)
    except IdentityError as e:
        raise CliError(str(e), EXIT_USAGE) from None


def _fleet_refusal(e: BaseException) -> CliError | None:
    """A station refused by its fleet at start, as the one line to print (else None)."""
    from app.domain.fleet import StationNameTaken
    from app.platform.identity import IdentityError

    if isinstance(e, StationNameTaken):
        return CliError(str(e), EXIT_ALREADY_RUNNING)
    if isinstance(e, IdentityError):
        return CliError(str(e), EXIT_DATA_DIR)
    return None


def _start_api(station: StationPort, port_override: int | None) -> ApiHandle | None:
    """The local API for the window and headless stations (imported when the station opens, not before)."""
    from app.api import start_for_station

    return start_for_station(station, port_override)


# ------------------------------------------------------------------ commands


def cmd_window(args: argparse.Namespace) -> int:
    from app.kiosk.instance import hand_off
    from app.kiosk.settings import K_ENABLED, read_startup_settings
    from app.station import Station, StationOptions

    paths = _paths(args)
    # One station per data dir: a second launch raises the running window instead.
    answer = hand_off(paths.data_dir)
    if answer is not None:
        print(f"{APP_NAME}: {answer.message}", file=sys.stderr)
        return answer.exit_code
    from app.platform.logsetup import setup_logging

    setup_logging(paths.log_dir)
    # Migrate (or refuse a newer database) before any window shows. A SQLite file already at this
    # app's schema needs nothing: the preflight tells without importing SQLAlchemy and Alembic,
    # and the station checks again through Alembic when it opens, after the first paint.
    from app.store.preflight import preflight

    if not preflight(paths.db_url).ready:
        _open_store(args).dispose()
    kiosk = args.kiosk or bool(read_startup_settings(paths.db_url, paths.data_dir).get(K_ENABLED))
    import importlib.util

    if importlib.util.find_spec("PySide6") is None:  # the window's toolkit, an installed package
        raise CliError(f"the window cannot start: PySide6 (Qt) is not installed. Try '{APP_NAME} doctor'.",
                       EXIT_ERROR)
    from app.ui.app import run_window  # the app's own window: it fails loudly, never falls back

    station = Station(StationOptions(paths=paths, seed_demo=not args.no_demo, api=_start_api,
                                     api_port=common_args(args).api_port, station_name=_station_name(args)))
    return run_window(station, kiosk=kiosk)


def cmd_headless(args: argparse.Namespace) -> int:
    from app.platform.logsetup import setup_logging
    from app.rollout.errors import RolloutSettingsError
    from app.station import Station, StationAlreadyRunning, StationOptions, run_headless
    from app.store import StoreError

    paths = _paths(args)
    name = _station_name(args)
    setup_logging(paths.log_dir)
    station = Station(StationOptions(paths=paths, seed_demo=not args.no_demo, api=_start_api,
                                     api_port=common_args(args).api_port, station_name=name))
    try:
        return run_headless(station, duration=args.duration, status_interval=args.status_interval)
    except StationAlreadyRunning as e:
        raise CliError(f"{e}; stop it first or use another --data-dir", EXIT_ALREADY_RUNNING) from None
    except StoreError as e:
        raise CliError(str(e), EXIT_DATABASE) from None
    except RolloutSettingsError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except Exception as e:
        refusal = _fleet_refusal(e)
        if refusal is None:
            raise
        raise refusal from None


def cmd_import(args: argparse.Namespace) -> int:
    from app.store.yaml_io import (
        ConfigFileError,
        import_cameras,
        max_file_bytes,
        parse_cameras_file,
    )

    with _store(args) as store:
        try:
            cameras = parse_cameras_file(args.file, max_bytes=max_file_bytes(store))
        except ConfigFileError as e:
            raise CliError(str(e), EXIT_USAGE) from None
        if args.dry_run:
            print(f"{args.file}: {len(cameras)} cameras, file is valid (nothing applied)")
            return EXIT_OK
        report = import_cameras(store, cameras, replace=args.replace)
    print(f"imported {args.file}: {report.summary()}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from app.store.yaml_io import ConfigFileError, export_file

    try:
        with _store(args) as store:
            n = export_file(store, args.file, include_secrets=args.include_secrets)
    except ConfigFileError as e:
        raise CliError(str(e), EXIT_ERROR) from None
    masked = "" if args.include_secrets else " (passwords masked)"
    print(f"exported {n} cameras to {args.file}{masked}")
    return EXIT_OK


def cmd_cameras_list(args: argparse.Namespace) -> int:
    from app.domain import mask_secrets

    with _store(args) as store, store.uow() as uow:
        cams = uow.cameras.list()
    if not cams:
        print("no cameras (add one with 'edge-station cameras add NAME SOURCE')")
        return EXIT_OK
    width = max(len(c.name) for c in cams)
    print(f"{'ID':>4}  {'NAME':<{width}}  {'ACTIVE':<6}  SOURCE")
    for c in cams:
        src = c.source if args.show_secrets else mask_secrets(c.source)
        print(f"{c.id:>4}  {c.name:<{width}}  {'yes' if c.active else 'no':<6}  {src}")
    return EXIT_OK


def cmd_cameras_add(args: argparse.Namespace) -> int:
    from app.domain import Camera, ValidationError

    try:
        cam = Camera(
            name=args.name, source=args.source, active=not args.inactive, max_fps=args.max_fps,
            loop=args.loop, stall_timeout=args.stall_timeout, location=args.location, tags=tuple(args.tags),
        ).validated()
    except ValidationError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    with _store(args) as store, store.uow() as uow:
        if uow.cameras.get_by_name(cam.name) is not None:
            raise CliError(f"a camera named {cam.name!r} already exists", EXIT_USAGE)
        saved = uow.cameras.add(cam)
        uow.commit()
    print(f"added camera {saved.id}: {saved.name}")
    return EXIT_OK


def cmd_cameras_remove(args: argparse.Namespace) -> int:
    with _store(args) as store:
        with store.uow() as uow:
            cam = _find_camera(uow, args.camera)
            assert cam.id is not None  # a stored camera has its id
            camera_id = cam.id
            uow.cameras.remove(camera_id)
            uow.commit()
        print(f"removed camera {camera_id}: {cam.name}")
        if getattr(args, "delete_evidence", False):
            from app.evidence.store import EvidenceStore

            count, freed = EvidenceStore(_paths(args).data_dir / "evidence", store).delete_camera(camera_id)
            print(f"deleted its evidence: {count} files, {freed} bytes")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from app.platform.doctor import run_checks

    paths = _paths(args)
    ok = True
    for check in run_checks(paths):
        mark = ("info" if getattr(check, "info", False) else "ok  ") if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
        ok = ok and check.ok
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.store.db import head_revision, redact_url

    _open_store(args).dispose()  # opening runs the migrations
    print(f"database {redact_url(_paths(args).db_url)} is at schema {head_revision()}")
    return EXIT_OK


# ------------------------------------------------------------------ entry


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Internal entry points (not in --help): the frozen bundle runs workers and probes through
    # itself, and doctor starts Qt in a child process. No parser, no imports beyond their own.
    if argv[:1] == ["worker"]:
        from app.worker.cli import main as worker_main

        return worker_main(argv[1:])
    if argv[:1] == ["worker-zygote"]:  # the worker launcher (app.supervisor.launcher)
        from app.worker.zygote import main as zygote_main

        return zygote_main(argv[1:])
    if argv == ["--version"]:  # without building the parser, which imports every feature's commands
        print(f"{APP_NAME} {__version__}")
        return EXIT_OK
    if argv[:1] == ["_qtcheck"]:
        from app.ui.qtcheck import main as qtcheck

        return qtcheck()
    args = _parse_window_args(argv)
    if args is None:
        args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None) or cmd_window
    try:
        return int(handler(args) or 0)
    except CliError as e:
        print(f"{APP_NAME}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # the last line of defence: one line, and the log has the details
        from app.domain import OperationError

        if isinstance(e, OperationError):
            print(f"{APP_NAME}: error: {e} [{e.code}]", file=sys.stderr)
            return EXIT_ERROR
        if "sqlalchemy" in sys.modules or "sqlite3" in sys.modules:
            from app.store.db import describe_db_error

            known = describe_db_error(e)
            if known is not None:  # busy, damaged, disk full: one line, no SQL
                print(f"{APP_NAME}: error: {known}", file=sys.stderr)
                return EXIT_DATABASE
        import logging

        logging.getLogger(APP_NAME).debug("unexpected error", exc_info=True)
        print(f"{APP_NAME}: error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
