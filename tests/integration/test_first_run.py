"""First run on a fresh machine says what is missing (defect 10): the window and doctor name the
shared libraries Qt's platform plugin lacks and the install command; a database not created yet is
information, not a failure. Real processes; the "missing" library is a plugin copy that needs a
version of libxcb-cursor this machine does not have."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import PySide6
import pytest

REPO = Path(__file__).resolve().parents[2]
QT = Path(PySide6.__file__).parent / "Qt"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=timeout,
                          env=e, cwd=REPO)


@pytest.fixture
def broken_xcb(tmp_path: Path) -> dict[str, str]:
    plugin = QT / "plugins" / "platforms" / "libqxcb.so"
    data = plugin.read_bytes()
    needed = b"libxcb-cursor.so.0\x00"
    assert needed in data, "the xcb plugin no longer links libxcb-cursor directly"
    platforms = tmp_path / "platforms"
    platforms.mkdir()
    (platforms / "libqxcb.so").write_bytes(data.replace(needed, b"libxcb-cursor.so.9\x00"))
    return {"QT_QPA_PLATFORM": "xcb", "QT_QPA_PLATFORM_PLUGIN_PATH": str(platforms),
            "LD_LIBRARY_PATH": str(QT / "lib"), "DISPLAY": ":97"}


def test_doctor_names_the_missing_library_and_its_package(tmp_path, broken_xcb):
    out = run("doctor", "--data-dir", str(tmp_path / "data"), env=broken_xcb)
    assert out.returncode == 5, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "Qt platform" in ln)
    assert line.startswith("[FAIL]") and "libxcb-cursor.so.9" in line
    assert "sudo apt-get install libxcb-cursor0" in line


def test_the_window_names_the_missing_library_instead_of_aborting(tmp_path, broken_xcb):
    out = run("--data-dir", str(tmp_path / "data"), "--no-demo", env=broken_xcb)
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "libxcb-cursor.so.9" in out.stderr and "sudo apt-get install libxcb-cursor0" in out.stderr
    assert "Traceback" not in out.stderr


def test_doctor_on_a_fresh_data_dir_says_the_database_comes_at_first_start(tmp_path):
    out = run("doctor", "--data-dir", str(tmp_path / "fresh"), env={"QT_QPA_PLATFORM": "offscreen"})
    assert "[info] database:" in out.stdout and "not created yet (created at first start)" in out.stdout
    assert "[FAIL]" not in out.stdout, out.stdout
    assert out.returncode == 0
    assert not (tmp_path / "fresh" / "station.db").exists(), "doctor does not create the database"
