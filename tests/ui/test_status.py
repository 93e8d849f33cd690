"""Status bar, notifications and remembered window state."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.station import StationEvent
from app.ui.window.main_window import MainWindow
from app.ui.window.sysinfo import rollout_text

pytestmark = pytest.mark.slow


def test_status_bar_shows_station_load(qtbot, window):
    qtbot.waitUntil(lambda: window.status_sample is not None and window.status_sample.load is not None,
                    timeout=10_000)
    sample = window.status_sample
    assert 0 <= sample.load.memory_percent <= 100 and sample.load.disk_free > 0
    assert "free" in window.load_label.text()
    metrics = getattr(window.station, "metrics", None)
    if metrics is not None:  # read from the station's series, not a second psutil reader
        assert metrics.latest("memory_percent") is not None
    assert window.load_label.text().startswith("CPU ")
    assert f"RAM {sample.load.memory_percent:.0f} %" in window.load_label.text()


def test_an_alert_event_becomes_a_notification(qtbot, window, station):
    from datetime import UTC, datetime

    from app.domain.alerts import AlertChange, ChangeKind
    from app.domain.rules import Severity

    change = AlertChange(kind=ChangeKind.FIRING, rule_name="Lobby offline", severity=Severity.CRITICAL,
                         subject="camera 1", at=datetime.now(UTC), notify=True, message="Lobby is offline")
    with qtbot.waitSignal(window.notifier.notified, timeout=5_000) as sig:
        station.emit(StationEvent("alert", 1, change))
    n = sig.args[0]
    assert n.title == "Lobby offline — firing" and n.severity == "critical"
    assert "Lobby is offline" in window.statusBar().currentMessage()


def test_window_geometry_and_wall_layout_are_remembered(qtbot, station, ui_settings):
    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    w.show()
    w.resize(700, 500)  # within the offscreen 800x600 screen
    w.wall.set_grid(3)
    w.tabs.setCurrentWidget(w.wall)
    qtbot.waitUntil(lambda: w.size().width() == 700, timeout=2_000)
    w.shutdown()
    w.close()

    again = MainWindow(station, settings=QSettings(ui_settings.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.wall.grid == 3
    assert again.tabs.currentWidget() is again.wall
    assert (again.size().width(), again.size().height()) == (700, 500)
    again.shutdown()


def test_rollout_text():
    from app.rollout.settings import RolloutSettings

    assert rollout_text(RolloutSettings())[0] == "legacy"
    rules25 = RolloutSettings().with_track("rules", use_domain=True, percent=25)
    assert rollout_text(rules25)[0] == "rules 25 % · cameras legacy"
    text, tip = rollout_text(rules25.with_track("cameras", use_domain=False, percent=0, latched=True,
                                                latch_reason="p95"))
    assert text == "rules 25 % · cameras ROLLED BACK" and "p95" in tip
    _t, tip = rollout_text(RolloutSettings().with_track("cameras", use_domain=True, percent=10,
                                                        overrides={"percent": "ROLLOUT_PERCENT=10"}))
    assert "ROLLOUT_PERCENT" in tip


def test_a_page_refreshes_on_its_timer_only_while_visible(qtbot):
    from PySide6.QtWidgets import QTabWidget, QWidget

    from app.ui.common.refresh import RefreshWhileVisible

    ticks: list[int] = []
    shows: list[int] = []

    class Page(RefreshWhileVisible, QWidget):
        def __init__(self) -> None:
            super().__init__()
            self._refresh_while_visible(20, lambda: ticks.append(1), on_show=lambda: shows.append(1))

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    page, other = Page(), QWidget()
    tabs.addTab(other, "other")
    tabs.addTab(page, "page")
    tabs.show()
    qtbot.wait(100)
    assert not ticks and not shows and not page.timer.isActive()  # on a hidden tab: nothing
    tabs.setCurrentWidget(page)
    assert shows == [1] and page.timer.isActive()  # refreshed at once when shown
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=2_000)
    tabs.setCurrentWidget(other)
    assert not page.timer.isActive()
    n = len(ticks)
    qtbot.wait(100)
    assert len(ticks) == n
