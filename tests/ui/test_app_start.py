"""The window's start: the station opens once, after the first paint, or after a fallback delay."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication, QWidget

from app.ui.app import OPEN_FALLBACK_MS, FirstPaintWatch, _open_after_first_paint, process_age_ms


class _Window(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.opened_at: list[float] = []

    def open_station(self) -> None:
        self.opened_at.append(time.monotonic())


def test_the_station_opens_once_right_after_the_first_paint(qtbot):
    w = _Window()
    qtbot.addWidget(w)
    watch = FirstPaintWatch(QApplication.instance(), w)
    _open_after_first_paint(w, watch)
    t0 = time.monotonic()
    with qtbot.waitSignal(watch.painted, timeout=5_000) as sig:
        w.show()
    # the process's age, in ms (the whole suite runs in this process: it may be long past 10 min)
    assert 0 < sig.args[0] <= process_age_ms() and watch.ms == sig.args[0]
    qtbot.waitUntil(lambda: bool(w.opened_at), timeout=2_000)
    assert w.opened_at[0] - t0 < OPEN_FALLBACK_MS / 1000
    qtbot.wait(OPEN_FALLBACK_MS + 200)  # the fallback timer fires too, and must not open it again
    assert len(w.opened_at) == 1


def test_without_a_paint_the_station_still_opens_after_the_fallback_delay(qtbot):
    w = _Window()  # never shown: no paint
    qtbot.addWidget(w)
    watch = FirstPaintWatch(QApplication.instance(), w)
    _open_after_first_paint(w, watch)
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: bool(w.opened_at), timeout=OPEN_FALLBACK_MS + 3_000)
    assert w.opened_at[0] - t0 >= OPEN_FALLBACK_MS / 1000 * 0.9
    assert watch.ms is None


def test_process_age_grows_with_time():
    a = process_age_ms()
    time.sleep(0.05)
    b = process_age_ms()
    assert 0 < a < b and 30 <= b - a <= 1_000


def _fail_closed(station, monkeypatch, capsys) -> None:
    from app.ui.app import EXIT_KIOSK_UNAVAILABLE, run_window
    from app.ui.window.main_window import MainWindow

    closed: list[bool] = []
    real_close = station.close
    monkeypatch.setattr(station, "close", lambda: (closed.append(True), real_close())[1])
    code = run_window(station, kiosk=True)
    assert code == EXIT_KIOSK_UNAVAILABLE != 0
    assert closed, "the station is closed again"
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.station is station], \
        "no admin window (it has no PIN) opens in the kiosk's place"
    err = capsys.readouterr().err
    assert "edge-station: error: the kiosk window cannot be built" in err and "without --kiosk" in err


def test_kiosk_that_cannot_be_imported_exits_instead_of_opening_the_admin_window(qtbot, station, monkeypatch,
                                                                                capsys):
    import sys

    monkeypatch.setitem(sys.modules, "app.ui.kiosk.window", None)  # the import raises ImportError
    _fail_closed(station, monkeypatch, capsys)


def test_kiosk_that_cannot_be_built_exits_instead_of_opening_the_admin_window(qtbot, station, monkeypatch, capsys):
    from app.ui.kiosk.window import KioskWindow

    def broken(self, *args, **kwargs):
        raise RuntimeError("no screen")

    monkeypatch.setattr(KioskWindow, "__init__", broken)
    _fail_closed(station, monkeypatch, capsys)
