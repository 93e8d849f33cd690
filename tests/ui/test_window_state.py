"""The window's own state is kept per data dir (defect 12): tab, geometry, wall grid, column widths."""

from __future__ import annotations

from pathlib import Path

from app.ui.window.main_window import WINDOW_STATE_FILE, MainWindow
from tests.ui.conftest import make_station


def _window(qtbot, data_dir: Path) -> MainWindow:
    st = make_station(data_dir)
    w = MainWindow(st)  # no settings passed: as the app starts it
    qtbot.addWidget(w)
    w._test_station = st
    return w


def _close(w: MainWindow) -> None:
    w.shutdown()
    w.close()
    w._test_station.close()


def test_state_is_kept_in_the_data_dir_and_isolated_by_it(qtbot, tmp_path, private_qsettings):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    w = _window(qtbot, a)
    w.tabs.setCurrentWidget(w.wall)
    w.wall.set_grid(3)
    w.table.setColumnWidth(0, 321)
    w.resize(900, 640)
    _close(w)
    assert (a / WINDOW_STATE_FILE).is_file(), "the window state lives in the data dir"
    assert not any(private_qsettings.rglob("*.conf")) and not any(private_qsettings.rglob("*.ini")), \
        "nothing written to the user's shared settings"

    again = _window(qtbot, a)
    try:
        assert again.tabs.currentWidget() is again.wall
        assert again.wall.grid == 3
        assert again.table.columnWidth(0) == 321
    finally:
        _close(again)

    other = _window(qtbot, b)  # another data dir: its own, fresh state
    try:
        assert other.tabs.currentIndex() == 0 and other.wall.grid == 2
        assert other.table.columnWidth(0) != 321
    finally:
        _close(other)
