"""``edge-station pin set|clear|status``, ``kiosk on|off|status`` and ``language [CODE]``.

``pin``: the kiosk's operator PIN. ``kiosk on`` makes a plain ``edge-station``
start in kiosk mode (the ``kiosk.enabled`` setting; ``--kiosk`` always does).
``language`` shows or sets the window's language (``ui.language``: ``en``,
``zh_CN`` or ``system``). Settings changes are audited.

Whoever can write the data dir can set or reset the PIN (that is the recovery
path for a forgotten PIN). The PIN is never taken as a command-line argument
(other users could read it in the process list): it is asked for twice on a
terminal, or read as one line from standard input with ``--stdin``.

A running kiosk reads the stored hash at every unlock attempt, so a new PIN
counts at once, without a restart.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from app.cli_common import (
    EXIT_DATA_DIR,
    EXIT_DATABASE,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    common_args,
)
from app.kiosk.pin import (
    MAX_LEN,
    MIN_LEN,
    PinError,
    check_pin_format,
    clear_pin,
    load_pin,
    save_pin,
)

if TYPE_CHECKING:
    from app.store import Store



def add_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``pin set|clear|status``, ``kiosk on|off|status`` and ``language [CODE]``."""
    _add_pin_cli(sub, add_common)
    add_settings_cli(sub, add_common)


def _add_pin_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("pin", help="set, clear or check the kiosk's operator PIN",
                       description="The operator PIN guards exit and settings in kiosk mode. It is stored "
                                   "in the data dir as a salted scrypt hash.")
    add_common(p)
    p.set_defaults(handler=cmd_pin, pin_command="status")
    psub = p.add_subparsers(dest="pin_command", metavar="{set,clear,status}")
    s = psub.add_parser("set", help=f"set or reset the PIN ({MIN_LEN} to {MAX_LEN} digits)")
    add_common(s)
    s.add_argument("--stdin", action="store_true",
                   help="read the PIN as one line from standard input (for scripts) instead of asking twice")
    s.set_defaults(handler=cmd_pin)
    c = psub.add_parser("clear", help="remove the PIN (kiosk exit and settings are then unprotected)")
    add_common(c)
    c.set_defaults(handler=cmd_pin)
    st = psub.add_parser("status", help="say whether a PIN is set")
    add_common(st)
    st.set_defaults(handler=cmd_pin)


def add_settings_cli(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``kiosk on|off|status`` and ``language [CODE]``."""
    k = sub.add_parser("kiosk", help="start the window in kiosk mode by default (on), or not (off)",
                       description="Whether a plain 'edge-station' opens the fullscreen kiosk (setting "
                                   "kiosk.enabled). 'edge-station --kiosk' always does.")
    add_common(k)
    k.add_argument("state", nargs="?", choices=("on", "off", "status"), default="status")
    k.set_defaults(handler=cmd_kiosk)
    lg = sub.add_parser("language", help="show or set the window's language (en, zh_CN, system)",
                        description="The window's language (setting ui.language). 'system' follows the "
                                    "system locale. Takes effect when the window starts again.")
    add_common(lg)
    lg.add_argument("code", nargs="?", help="en, zh_CN or system; without it: show the current setting")
    lg.set_defaults(handler=cmd_language)


def _store(args: argparse.Namespace, err: TextIO) -> tuple[Store | None, int]:
    from app.platform.identity import IdentityError, open_station_store
    from app.platform.paths import PathError, resolve_paths
    from app.store import StoreError

    try:
        paths = resolve_paths(*common_args(args).where()).ensure()
    except PathError as e:
        print(f"edge-station: error: {e}", file=err)
        return None, EXIT_DATA_DIR
    try:  # the settings of the station this box runs (docs/fleet.md)
        return open_station_store(paths.db_url, paths.data_dir, common_args(args).station), EXIT_OK
    except IdentityError as e:
        print(f"edge-station: error: {e}", file=err)
        return None, EXIT_DATA_DIR
    except StoreError as e:
        print(f"edge-station: error: {e}", file=err)
        return None, EXIT_DATABASE


def cmd_kiosk(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from app.kiosk.settings import K_ENABLED, write_settings

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    store, code = _store(args, err)
    if store is None:
        return code
    try:
        if args.state == "status":
            with store.uow() as uow:
                on = bool(uow.settings.get(K_ENABLED))
        else:
            on = args.state == "on"
            write_settings(store, {K_ENABLED: on}, actor="cli", reason=f"kiosk {args.state}")
    finally:
        store.dispose()
    print("kiosk mode: on (a plain 'edge-station' opens the fullscreen kiosk)" if on else
          "kiosk mode: off (use 'edge-station --kiosk' for the kiosk)", file=out)
    return EXIT_OK


def cmd_language(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from app.kiosk.settings import K_LANGUAGE, LanguageError, normalize_language, write_settings

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    code_arg = args.code
    lang: str | None = None
    if code_arg is not None:
        try:
            lang = normalize_language(code_arg)
        except LanguageError as e:
            print(f"edge-station: error: {e}", file=err)
            return EXIT_USAGE
    store, code = _store(args, err)
    if store is None:
        return code
    try:
        if code_arg is None:
            with store.uow() as uow:
                lang = normalize_language(uow.settings.get(K_LANGUAGE))
        else:
            write_settings(store, {K_LANGUAGE: lang or "system"}, actor="cli", reason="language")
    finally:
        store.dispose()
    shown = lang or "system (follows the system locale)"
    print(f"window language: {shown}" + ("; takes effect when the window starts again" if code_arg else ""),
          file=out)
    return EXIT_OK


def cmd_pin(args: argparse.Namespace, *, stdin: TextIO | None = None, out: TextIO | None = None,
            err: TextIO | None = None, ask: Callable[[str], str] = getpass.getpass) -> int:
    from app.platform.paths import PathError, resolve_paths

    stdin = stdin if stdin is not None else sys.stdin
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        paths = resolve_paths(*common_args(args).where()).ensure()
    except PathError as e:
        print(f"edge-station: error: {e}", file=err)
        return EXIT_DATA_DIR
    data_dir = paths.data_dir
    command = getattr(args, "pin_command", None) or "status"
    try:
        if command == "status":
            stored = load_pin(data_dir)
            print(f"a kiosk PIN is set (data dir {data_dir})" if stored is not None else
                  f"no kiosk PIN is set (data dir {data_dir}); kiosk exit and settings are unprotected",
                  file=out)
            return EXIT_OK
        if command == "clear":
            removed = clear_pin(data_dir)
            print("kiosk PIN removed; kiosk exit and settings are now unprotected" if removed else
                  "no kiosk PIN was set", file=out)
            return EXIT_OK
        if command == "set":
            if args.stdin:
                pin = stdin.readline().strip()
            else:
                if not stdin.isatty():
                    print("edge-station: error: no terminal to ask for the PIN; pipe it in with "
                          "'edge-station pin set --stdin'", file=err)
                    return EXIT_USAGE
                pin = ask(f"New kiosk PIN ({MIN_LEN}-{MAX_LEN} digits): ").strip()
                check_pin_format(pin)
                again = ask("Repeat the PIN: ").strip()
                if again != pin:
                    print("edge-station: error: the two PINs differ; nothing changed", file=err)
                    return EXIT_USAGE
            check_pin_format(pin)
            path = save_pin(data_dir, pin)
            print(f"kiosk PIN set ({path}); a running kiosk uses it from the next attempt", file=out)
            return EXIT_OK
    except PinError as e:
        bad_input = "digits" in str(e)
        print(f"edge-station: error: {e}{'; nothing changed' if bad_input else ''}", file=err)
        return EXIT_USAGE if bad_input else EXIT_ERROR
    print(f"edge-station: error: unknown pin command {command!r}", file=err)
    return EXIT_USAGE
