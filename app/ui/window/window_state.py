"""The window's own state — tab, geometry, wall grid, table column widths — kept in ``window-state.ini``
in the station's data dir, so ``EDGE_STATION_DATA_DIR`` / ``--data-dir`` isolates it like everything else."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings

from app.station.port import StationPort

if TYPE_CHECKING:
    from app.ui.window.main_window import MainWindow

#: the window's own state (tab, geometry, wall grid, column widths), in the data dir
WINDOW_STATE_FILE = "window-state.ini"


def window_settings(station: StationPort) -> QSettings:
    """Where the window keeps its own state: ``window-state.ini`` in the station's data dir."""
    return QSettings(str(Path(station.paths.data_dir) / WINDOW_STATE_FILE), QSettings.Format.IniFormat)


class WindowState:
    """Restores the window as it was left and saves it when it closes."""

    def __init__(self, settings: QSettings):
        self.settings = settings

    def restore(self, window: MainWindow) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            window.restoreGeometry(geo)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        grid = _int(s.value("wall/grid"), 2)
        if grid in (1, 2, 3, 4):
            window.wall.set_grid(grid)
        tab = _int(s.value("window/tab"), 0)
        if 0 <= tab < window.tabs.count():
            window.tabs.setCurrentIndex(tab)
        columns = s.value("table/header")
        if isinstance(columns, QByteArray) and not columns.isEmpty():
            window.table.horizontalHeader().restoreState(columns)

    def save(self, window: MainWindow) -> None:
        s = self.settings
        s.setValue("window/geometry", window.saveGeometry())
        s.setValue("window/state", window.saveState())
        s.setValue("wall/grid", window.wall.grid)
        s.setValue("window/tab", window.tabs.currentIndex())
        s.setValue("table/header", window.table.horizontalHeader().saveState())
        s.sync()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
