"""Kiosk mode against a real station: fullscreen frameless wall, the PIN, cycling, pop-ups, the cursor."""

from __future__ import annotations

import io
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMenuBar

from app.domain.alerts import AlertChange, ChangeKind
from app.domain.rules import Severity
from app.kiosk.cli import cmd_pin
from app.kiosk.pin import save_pin
from app.kiosk.settings import KioskSettings
from app.station import Station, StationEvent
from app.ui.kiosk.screensaver import ScreenSaverInhibitor
from app.ui.kiosk.window import KioskWindow, PinDialog, UnprotectedDialog
from app.ui.wall.camera_wall import CameraWall
from tests.ui.conftest import camera_id

PIN = "4711"


class FakeClock:
    def __init__(self) -> None:
        self.t = 10_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_kiosk(qtbot, station: Station, ui_settings, clock: FakeClock, settings: dict | None = None,
               *, autostart: bool = False, tmp_path: Path | None = None) -> KioskWindow:
    """Open the station, store kiosk ``settings`` in its database, then show the kiosk on it."""
    station.open()
    if settings:
        with station.parts().store.uow() as uow:
            uow.settings.set_many(settings)
            uow.commit()
    # No desktop here: point the inhibitor at a bus that does not exist (it logs and carries on).
    bus = f"unix:path={tmp_path / 'no-bus.sock'}" if tmp_path else "unix:path=/nonexistent/bus"
    w = KioskWindow(station, settings=ui_settings, clock=clock, autostart=autostart,
                    inhibitor=ScreenSaverInhibitor(bus_address=bus))
    qtbot.addWidget(w)
    w.showFullScreen()
    w.open_station()
    qtbot.waitUntil(lambda: w.ready, timeout=20_000)
    return w


@pytest.fixture
def kiosk(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    yield w
    w.shutdown()


def prompt_of(qtbot, w: KioskWindow):
    qtbot.waitUntil(lambda: w._prompt is not None, timeout=5_000)
    return w._prompt


def enter(qtbot, dlg: PinDialog, pin: str) -> None:
    before = dlg.attempts
    dlg.pin_edit.setText(pin)
    dlg.submit()
    qtbot.waitUntil(lambda: dlg.attempts > before or not dlg.isVisible(), timeout=5_000)


def alert(cid: int | None, severity: Severity = Severity.CRITICAL, kind: ChangeKind = ChangeKind.FIRING,
          rule: str = "Camera offline", rule_id: int = 7) -> StationEvent:
    change = AlertChange(kind=kind, rule_name=rule, severity=severity, subject=f"camera {cid}",
                         at=datetime.now(UTC), notify=True, rule_id=rule_id, camera_id=cid,
                         message="no frames for 30 s")
    return StationEvent("alert", cid, change)


# ---------------------------------------------------------------------- window


def test_kiosk_is_fullscreen_frameless_and_has_no_menus(qtbot, kiosk):
    qtbot.waitExposed(kiosk)
    assert kiosk.isFullScreen()
    assert kiosk.windowState() & Qt.WindowState.WindowFullScreen
    assert kiosk.windowFlags() & Qt.WindowType.FramelessWindowHint
    assert kiosk.geometry() == kiosk.screen().geometry(), "covers the screen even without a window manager"
    assert not kiosk.findChildren(QMenuBar)
    wall = kiosk.findChild(CameraWall, "kioskWall")
    assert wall is not None and wall.isVisible()
    assert not wall._bar.isVisible(), "the wall's layout/page controls are hidden in kiosk mode"
    active = [c for c in kiosk.station.cameras() if c.active]
    assert len(wall.tiles()) == len(active) < len(kiosk.station.cameras()), "an inactive camera takes no slot"


def test_kiosk_goes_back_to_fullscreen_when_the_desktop_takes_it_away(qtbot, kiosk):
    kiosk.showNormal()
    qtbot.waitUntil(kiosk.isFullScreen, timeout=5_000)


# ---------------------------------------------------------------------- PIN


def test_close_is_refused_without_the_pin(qtbot, kiosk, station):
    save_pin(station.paths.data_dir, PIN)
    assert kiosk.close() is False, "a close event (Alt+F4, the window manager) is refused"
    dlg = prompt_of(qtbot, kiosk)
    assert isinstance(dlg, PinDialog) and dlg.purpose == "exit"
    dlg.reject()
    qtbot.waitUntil(lambda: kiosk._prompt is None, timeout=5_000)
    assert kiosk.isVisible()
    # Esc and Alt+F4 as keys ask for the PIN too
    qtbot.keyClick(kiosk, Qt.Key.Key_Escape)
    prompt_of(qtbot, kiosk).reject()
    qtbot.waitUntil(lambda: kiosk._prompt is None, timeout=5_000)
    qtbot.keyClick(kiosk, Qt.Key.Key_F4, Qt.KeyboardModifier.AltModifier)
    assert isinstance(prompt_of(qtbot, kiosk), PinDialog)
    assert kiosk.isVisible()


def test_a_wrong_pin_is_refused_and_the_right_one_closes(qtbot, kiosk, station):
    save_pin(station.paths.data_dir, PIN)
    kiosk.close()
    dlg = prompt_of(qtbot, kiosk)
    enter(qtbot, dlg, "1234")
    assert dlg.isVisible() and "Wrong PIN" in dlg.message.text()
    assert kiosk.isVisible()
    enter(qtbot, dlg, PIN)
    qtbot.waitUntil(lambda: not kiosk.isVisible(), timeout=5_000)


def test_repeated_wrong_pins_are_rate_limited(qtbot, kiosk, station, clock):
    save_pin(station.paths.data_dir, PIN)
    dlg = kiosk.request_exit()
    assert isinstance(dlg, PinDialog)
    for _ in range(kiosk.guard.free_attempts):
        enter(qtbot, dlg, "0000")
    assert dlg.locked and not dlg.pin_edit.isEnabled() and not dlg.ok_button.isEnabled()
    assert "Try again in 30 s." in dlg.message.text()
    assert kiosk.check_pin(PIN) is False, "the right PIN is refused while locked"
    dlg.pin_edit.setText(PIN)
    dlg.submit()  # ignored while locked
    assert dlg.isVisible() and kiosk.isVisible()
    clock.advance(30)
    dlg._update_lock()
    assert dlg.pin_edit.isEnabled()
    enter(qtbot, dlg, "0000")  # one more miss: the wait doubles
    assert "Try again in 60 s." in dlg.message.text()
    clock.advance(60)
    dlg._update_lock()
    enter(qtbot, dlg, PIN)
    qtbot.waitUntil(lambda: not kiosk.isVisible(), timeout=5_000)


def test_settings_need_the_pin(qtbot, kiosk, station):
    save_pin(station.paths.data_dir, PIN)
    kiosk.settings_button.click()
    dlg = prompt_of(qtbot, kiosk)
    assert isinstance(dlg, PinDialog) and dlg.purpose == "settings"
    enter(qtbot, dlg, "9999")
    assert kiosk.settings_dialog is None
    enter(qtbot, dlg, PIN)
    qtbot.waitUntil(lambda: kiosk.settings_dialog is not None, timeout=5_000)
    assert kiosk.isVisible(), "the kiosk stays up behind the settings"
    kiosk.settings_dialog.reject()


def test_without_a_pin_leaving_needs_a_confirmation_and_the_ticker_warns(qtbot, kiosk, station):
    assert kiosk.has_pin is False
    assert "No operator PIN" in kiosk.ticker.text()
    kiosk.close()
    dlg = prompt_of(qtbot, kiosk)
    assert isinstance(dlg, UnprotectedDialog)
    assert str(station.paths.data_dir) in " ".join(lbl.text() for lbl in dlg.findChildren(type(kiosk.clock_label)))
    dlg.reject()
    qtbot.waitUntil(lambda: kiosk._prompt is None, timeout=5_000)
    assert kiosk.isVisible()
    kiosk.close()
    prompt_of(qtbot, kiosk).accept()
    qtbot.waitUntil(lambda: not kiosk.isVisible(), timeout=5_000)


def test_a_pin_set_from_the_command_line_counts_without_a_restart(qtbot, kiosk, station):
    assert kiosk.has_pin is False
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(data_dir=str(station.paths.data_dir), db=None, pin_command="set", stdin=True)
    assert cmd_pin(args, stdin=io.StringIO(PIN + "\n"), out=out, err=err) == 0, err.getvalue()
    dlg = kiosk.request_exit()
    assert isinstance(dlg, PinDialog)
    enter(qtbot, dlg, PIN)
    qtbot.waitUntil(lambda: not kiosk.isVisible(), timeout=5_000)


# ---------------------------------------------------------------------- cycling, pop-up, cursor


def test_auto_cycle_advances_pages_on_the_clock(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, {"kiosk.grid": 1, "kiosk.cycle_s": 10}, tmp_path=tmp_path)
    try:
        pages = w.wall.page_count()
        assert w.wall.grid == 1 and pages == len([c for c in station.cameras() if c.active]) >= 3
        assert w.wall.page == 0
        clock.advance(9.9)
        w.tick()
        assert w.wall.page == 0
        clock.advance(0.1)
        w.tick()
        assert w.wall.page == 1
        shown = w.wall.visible_tiles()
        assert len(shown) == 1 and shown[0].isVisible()
        for expected in [*range(2, pages), 0]:  # wraps around to the first page
            clock.advance(10)
            w.tick()
            assert w.wall.page == expected
        assert w.cycles == pages
    finally:
        w.shutdown()


def test_no_cycling_when_it_is_off(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, {"kiosk.grid": 1, "kiosk.cycle_s": 0}, tmp_path=tmp_path)
    try:
        clock.advance(3600)
        w.tick()
        assert w.wall.page == 0 and w.cycles == 0
    finally:
        w.shutdown()


def test_a_new_critical_alert_pops_its_camera_up_for_the_set_time(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, {"kiosk.popup_s": 15, "kiosk.popup_severity": "critical"},
                   tmp_path=tmp_path)
    try:
        dock = camera_id(station, "Loading dock")
        with qtbot.waitSignal(w.popupShown, timeout=5_000) as sig:
            station.emit(alert(dock, Severity.CRITICAL))
        assert sig.args == [dock]
        assert w.popup is not None and w.popup.camera_id == dock
        assert w.stack.currentWidget() is w.popup and w.popup.isVisible()
        assert "Camera offline" in w.popup.banner.text() and "Loading dock" in w.popup.banner.text()
        assert any("Loading dock" in i.text for i in w.ticker.items())
        clock.advance(14.9)
        w.tick()
        assert w.popup is not None
        clock.advance(0.1)
        w.tick()
        assert w.popup is None and w.stack.currentWidget() is w.wall
        # below the pop-up severity: into the ticker, no pop-up
        lobby = camera_id(station, "Lobby")
        station.emit(alert(lobby, Severity.WARNING, rule="Low fps", rule_id=8))
        qtbot.waitUntil(lambda: any("Low fps" in i.text for i in w.ticker.items()), timeout=5_000)
        assert w.popup is None
        # resolved: out of the ticker
        station.emit(alert(dock, Severity.CRITICAL, kind=ChangeKind.RESOLVED))
        qtbot.waitUntil(lambda: not any("Loading dock" in i.text for i in w.ticker.items()), timeout=5_000)
        assert [i.severity for i in w.ticker.items()] == ["warning"]
    finally:
        w.shutdown()


def test_a_click_dismisses_the_pop_up_and_cycling_waits_for_it(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, {"kiosk.grid": 1, "kiosk.cycle_s": 10, "kiosk.popup_s": 60},
                   tmp_path=tmp_path)
    try:
        with qtbot.waitSignal(w.popupShown, timeout=5_000):
            station.emit(alert(camera_id(station, "Lobby")))
        clock.advance(30)
        w.tick()
        assert w.wall.page == 0, "no page change under a pop-up"
        qtbot.mouseClick(w.popup.banner, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.popup is None, timeout=5_000)
    finally:
        w.shutdown()


def test_the_cursor_hides_when_idle_and_comes_back_on_movement(qtbot, kiosk, clock):
    assert kiosk.kiosk.cursor_idle_s == KioskSettings().cursor_idle_s
    kiosk.tick()
    assert not kiosk.cursor_hidden
    clock.advance(kiosk.kiosk.cursor_idle_s)
    kiosk.tick()
    assert kiosk.cursor_hidden and kiosk.cursor().shape() == Qt.CursorShape.BlankCursor
    qtbot.mouseMove(kiosk, QPoint(50, 60))
    qtbot.mouseMove(kiosk, QPoint(70, 80))
    qtbot.waitUntil(lambda: not kiosk.cursor_hidden, timeout=5_000)
    assert kiosk.cursor().shape() == Qt.CursorShape.ArrowCursor
    clock.advance(kiosk.kiosk.cursor_idle_s / 2)
    kiosk.tick()
    assert not kiosk.cursor_hidden


# ---------------------------------------------------------------------- autostart


@pytest.mark.slow
def test_active_cameras_autostart_in_kiosk_mode(qtbot, station, ui_settings, clock, tmp_path):
    from app.domain import CameraState

    assert station.options.autostart is False  # the kiosk starts them, not the station options
    w = open_kiosk(qtbot, station, ui_settings, clock, autostart=True, tmp_path=tmp_path)
    try:
        active = {c.id for c in station.cameras() if c.active}
        inactive = {c.id for c in station.cameras() if not c.active}
        assert active and inactive

        def states() -> dict:
            return {s.camera_id: s.state for s in station.live_status()}

        qtbot.waitUntil(lambda: all(states()[c] in (CameraState.STARTING, CameraState.RUNNING) for c in active),
                        timeout=20_000)
        assert all(states()[c] == CameraState.INACTIVE for c in inactive)
    finally:
        w.shutdown()
        station.close()


def test_the_ticker_scrolls_only_when_the_alerts_do_not_fit(qtbot, kiosk, station):
    ticker = kiosk.ticker
    ticker.step()
    assert ticker.offset == 0
    for i in range(12):
        station.emit(alert(None, Severity.WARNING, rule=f"Disk almost full on volume {i}", rule_id=100 + i))
    qtbot.waitUntil(lambda: len(ticker.items()) == 12, timeout=5_000)
    ticker.step()
    ticker.step()
    assert ticker.offset > 0, "a line longer than the screen scrolls"
    assert ticker.items()[0].severity == "warning" and kiosk.popup is None, "no camera: no pop-up"
