"""The window's own argument parser answers exactly as the full one does, or hands over to it."""

from __future__ import annotations

import sys

import pytest

from app.cli import _parse_window_args, build_parser


@pytest.mark.parametrize("argv", [
    [], ["--kiosk"], ["--no-demo"], ["--data-dir", "/tmp/x"], ["--data-dir=/tmp/x", "--db", "sqlite:///a.db"],
    ["--kiosk", "--no-demo", "--data-dir", "d"],
])
def test_window_arguments_parse_as_the_full_parser_does(argv):
    fast = _parse_window_args(argv)
    assert fast is not None
    full = vars(build_parser().parse_args(argv))
    assert full.pop("command") is None
    assert vars(fast) == full


@pytest.mark.parametrize("argv", [
    ["headless"], ["--data-dir", "d", "migrate"], ["-h"], ["--help"], ["--version"], ["--data-dir"],
    ["--data", "d"], ["--kioks"], ["rollout", "status"], ["--kiosk", "verify"],
])
def test_anything_else_goes_to_the_full_parser(argv):
    assert _parse_window_args(argv) is None


def test_the_window_path_imports_no_feature_commands():
    import subprocess

    code = ("import sys; from app.cli import _parse_window_args; _parse_window_args(['--kiosk']); "
            "print(sorted(m for m in sys.modules if m in ('app.rollout.cli', 'app.api.cli', 'app.kiosk.cli', "
            "'sqlalchemy', 'alembic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("value", ["nan", "-5", "0", "inf", "-inf", "soon"])
def test_headless_duration_must_be_a_finite_positive_number(value, capsys):
    with pytest.raises(SystemExit) as ei:
        build_parser().parse_args(["headless", "--duration", value])
    assert ei.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_headless_duration_and_status_interval_accept_numbers():
    args = build_parser().parse_args(["headless", "--duration", "2.5", "--status-interval", "0"])
    assert (args.duration, args.status_interval) == (2.5, 0.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["headless", "--status-interval", "nan"])
