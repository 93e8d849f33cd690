"""``edge-station pin|kiosk|language`` through a real argparse tree, on a real data dir and database."""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import subprocess
import sys

import pytest

from app.kiosk.cli import add_cli
from app.kiosk.pin import load_pin, pin_path
from app.kiosk.settings import K_ENABLED, K_LANGUAGE, OP_SETTINGS, read_startup_settings
from app.platform.paths import resolve_paths
from tests.conftest import REPO_ROOT


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edge-station")
    sub = parser.add_subparsers(dest="command")

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=argparse.SUPPRESS)
        p.add_argument("--db", default=argparse.SUPPRESS)

    add_cli(sub, add_common)
    return parser.parse_args(argv)


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    args = parse(argv)
    out, err = io.StringIO(), io.StringIO()
    if args.command == "pin":
        code = args.handler(args, stdin=io.StringIO(stdin), out=out, err=err)
    else:
        code = args.handler(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_pin_set_from_stdin_status_and_clear(data_dir):
    d = str(data_dir)
    assert run(["pin", "status", "--data-dir", d])[1].startswith("no kiosk PIN is set")
    code, out, err = run(["pin", "set", "--stdin", "--data-dir", d], stdin="135790\n")
    assert code == 0, err
    assert "kiosk PIN set" in out
    assert load_pin(data_dir).matches("135790")
    assert stat.S_IMODE(os.stat(pin_path(data_dir)).st_mode) == 0o600
    assert run(["pin", "--data-dir", d])[1].startswith("a kiosk PIN is set")
    assert run(["pin", "clear", "--data-dir", d])[0] == 0
    assert load_pin(data_dir) is None


@pytest.mark.parametrize("bad", ["12", "12ab", ""])
def test_a_bad_pin_changes_nothing(data_dir, bad):
    code, _out, err = run(["pin", "set", "--stdin", "--data-dir", str(data_dir)], stdin=bad + "\n")
    assert code == 2 and "4 to 12 digits" in err and "nothing changed" in err
    assert load_pin(data_dir) is None


def test_pin_set_without_a_terminal_says_how(data_dir):
    """No terminal to ask on and no --stdin: a clear message, not a hang (a real process with stdin closed)."""
    code = (
        "import argparse, sys\n"
        "from app.kiosk.cli import cmd_pin\n"
        f"sys.exit(cmd_pin(argparse.Namespace(data_dir={str(data_dir)!r}, db=None, pin_command='set', stdin=False)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--stdin" in proc.stderr
    assert load_pin(data_dir) is None


def test_kiosk_and_language_settings_are_stored_and_audited(data_dir):
    d = str(data_dir)
    assert "off" in run(["kiosk", "--data-dir", d])[1]
    assert run(["kiosk", "on", "--data-dir", d])[0] == 0
    assert run(["language", "zh-CN", "--data-dir", d])[0] == 0
    paths = resolve_paths(data_dir)
    assert read_startup_settings(paths.db_url, paths.data_dir) == {K_ENABLED: True, K_LANGUAGE: "zh_CN"}
    assert "zh_CN" in run(["language", "--data-dir", d])[1]
    assert "on" in run(["kiosk", "status", "--data-dir", d])[1]
    from app.store import open_store

    store = open_store(paths.db_url)
    try:
        with store.uow() as uow:
            entries = uow.audit.recent(op_prefix=OP_SETTINGS)
    finally:
        store.dispose()
    changes = {(e.key, json.dumps(e.detail["new"]), e.actor) for e in entries}
    assert {(K_ENABLED, "true", "cli"), (K_LANGUAGE, '"zh_CN"', "cli")} <= changes


def test_an_unknown_language_is_refused(data_dir):
    code, _out, err = run(["language", "tlh", "--data-dir", str(data_dir)])
    assert code == 2 and "not available" in err
    assert read_startup_settings(resolve_paths(data_dir).db_url) == {}
