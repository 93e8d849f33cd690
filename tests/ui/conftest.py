"""Fixtures of the window tests: a real station on a temp data dir, a private QSettings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.platform.paths import resolve_paths
from app.station import Station, StationOptions
from app.supervisor import RestartPolicy

#: a worker must get from "start" to frames in this long (spawn + PyAV import + first decode)
START_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def private_qsettings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real user's settings."""
    conf = tmp_path / "qsettings"
    conf.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(conf))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(conf))
    return conf


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


def make_station(data_dir: Path, *, autostart: bool = False) -> Station:
    policy = RestartPolicy(stop_timeout=3.0)
    return Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True,
                                  autostart=autostart, policy=policy))


@pytest.fixture
def station(data_dir: Path) -> Iterator[Station]:
    st = make_station(data_dir)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def window(qtbot, station: Station, ui_settings: QSettings):
    from app.ui.window.main_window import MainWindow

    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    w.show()
    w.open_station()
    qtbot.waitUntil(lambda: w.ready, timeout=20_000)
    yield w
    w.shutdown()
    w.close()


def camera_id(station: Station, name: str) -> int:
    for cam in station.cameras():
        if cam.name == name:
            assert cam.id is not None
            return cam.id
    raise AssertionError(f"no camera named {name!r}; have {[c.name for c in station.cameras()]}")


