"""A private D-Bus session bus (``dbus-daemon``) for one test, stopped afterwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def private_bus(folder: Path) -> Iterator[str]:
    """Start ``dbus-daemon --session`` on a socket in ``folder``; yield its address."""
    daemon = shutil.which("dbus-daemon")
    assert daemon, "dbus-daemon is needed for the screen-saver tests (Debian package 'dbus')"
    sock = folder / "bus.sock"
    proc = subprocess.Popen([daemon, "--session", "--nofork", "--print-address=1", f"--address=unix:path={sock}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = proc.stdout.readline().strip() if proc.stdout else ""
        assert address.startswith("unix:"), f"dbus-daemon did not start (said {address!r})"
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def fake_screensaver(address: str) -> Iterator[subprocess.Popen]:
    """The stand-in desktop service on ``address``; its stdout carries one JSON line per call."""
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_screensaver.py"), address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line == "ready", f"fake screen saver did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=5)
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()
