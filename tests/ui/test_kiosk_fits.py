"""The kiosk fits and shows every camera (defect 9): any screen from 1024x600 up, every active camera,
paging with an indicator, only new unacknowledged critical pop-ups, logged wrong PINs, no doubled text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QRect

from app.domain import Camera
from app.domain.alerts import AlertChange, AlertEvent, ChangeKind, EventState
from app.domain.rules import Severity
from app.kiosk.pin import save_pin
from app.station import StationEvent
from tests.ui.conftest import camera_id
from tests.ui.test_kiosk import FakeClock, enter, open_kiosk, prompt_of

LONG_RULE = "Front entrance camera offline during opening hours (critical, escalate to security)"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def six_cameras(station) -> None:
    station.open()
    for name in ("Yard", "Roof", "Car park"):
        station.parts().admin.add_camera(Camera(name=name, source="test://still"))
    station.reload_cameras()


def change(cid: int, *, rule: str = LONG_RULE, message: str | None = None, severity=Severity.CRITICAL,
           acknowledged: bool = False, fired_ago: float = 0.0) -> StationEvent:
    fired = datetime.now(UTC) - timedelta(seconds=fired_ago)
    msg = message if message is not None else f"{rule}: camera {cid} offline = 1 (>= 1)"
    ev = AlertEvent(rule_id=3, rule_name=rule, camera_id=cid, subject=f"camera {cid}", severity=severity,
                    state=EventState.FIRING, value=1.0, threshold=1.0, message=msg, started_at=fired,
                    fired_at=fired, acknowledged_by="operator" if acknowledged else None,
                    acknowledged_at=fired if acknowledged else None, id=11)
    return StationEvent("alert", cid, AlertChange(kind=ChangeKind.FIRING, rule_name=rule, severity=severity,
                                                  subject=f"camera {cid}", at=datetime.now(UTC), notify=True,
                                                  rule_id=3, camera_id=cid, event=ev, message=msg))


@pytest.mark.parametrize("size", [(1024, 600), (1600, 1000), (1920, 1080)])
def test_the_kiosk_fits_the_screen_with_every_active_camera(qtbot, station, ui_settings, clock, tmp_path, size):
    six_cameras(station)
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    try:
        active = [c.id for c in station.cameras() if c.active]
        assert len(active) == 6 and len(station.cameras()) == 7  # the demo's Front gate is inactive
        w.setGeometry(QRect(0, 0, *size))
        w.show_popup(active[0], "⚠ CRITICAL · Lobby — " + LONG_RULE + ": no frames for 30 s", "critical")
        qtbot.wait(20)
        hint = w.minimumSizeHint()
        assert hint.width() <= size[0] and hint.height() <= size[1], hint
        assert (w.width(), w.height()) == size, "the kiosk is wider or taller than the screen"
        assert w.popup.banner.width() <= size[0]
        w.close_popup()
        shown = {t.camera_id for t in w.wall.visible_tiles()}
        assert shown == set(active), "every active camera on one page (3×2 for 6)"
        assert (w.wall.grid, w.wall.rows) == (3, 2) and not w.page_label.isVisible()
    finally:
        w.shutdown()


def test_more_cameras_than_fit_page_with_an_indicator_and_cycle_by_default(qtbot, station, ui_settings, clock,
                                                                          tmp_path):
    station.open()
    for i in range(15):
        station.parts().admin.add_camera(Camera(name=f"Extra {i}", source="test://still", active=True))
    station.reload_cameras()
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    try:
        assert w.wall.grid == 4 and w.wall.page_count() == 2  # 18 active cameras
        assert w.page_label.isVisible() and w.page_label.text() == "page 1/2"
        clock.advance(w.kiosk.cycle_s)
        w.tick()
        assert w.wall.page == 1 and w.page_label.text() == "page 2/2"
    finally:
        w.shutdown()


def test_only_new_unacknowledged_critical_alerts_pop_up(qtbot, station, ui_settings, clock, tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    try:
        lobby = camera_id(station, "Lobby")
        shown: list[int] = []
        w.popupShown.connect(shown.append)
        w.on_alert_event(change(lobby, acknowledged=True))
        w.on_alert_event(change(lobby, fired_ago=3600))  # firing since before the kiosk opened
        w.on_alert_event(change(lobby, severity=Severity.WARNING))
        assert shown == [] and w.popup is None
        assert len(w.ticker.items()) == 1, "each is in the ticker (one rule, one camera)"
        w.on_alert_event(change(lobby))
        assert shown == [lobby]
    finally:
        w.shutdown()


def test_the_rule_name_is_not_doubled_and_the_title_names_the_product_once(qtbot, station, ui_settings, clock,
                                                                           tmp_path):
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    try:
        lobby = camera_id(station, "Lobby")
        w.on_alert_event(change(lobby, rule="FPS under 100 (test)",
                                message="FPS under 100 (test): camera Lobby fps = 15 (< 100)"))
        (item,) = w.ticker.items()
        assert item.text.count("FPS under 100 (test)") == 1, item.text
        assert w.popup is not None and w.popup.banner.text().count("FPS under 100 (test)") == 1
        assert "Edge Station" not in w.windowTitle(), "the desktop adds the product name itself"
    finally:
        w.shutdown()


def test_the_pin_prompt_is_centred_and_wrong_pins_are_logged(qtbot, station, ui_settings, clock, tmp_path, caplog):
    station.open()
    save_pin(station.paths.data_dir, "4711")
    w = open_kiosk(qtbot, station, ui_settings, clock, tmp_path=tmp_path)
    try:
        w.setGeometry(QRect(0, 0, 1024, 600))
        w.request_exit()
        dlg = prompt_of(qtbot, w)
        qtbot.waitExposed(dlg)
        centre, mine = dlg.frameGeometry().center(), w.geometry().center()
        assert abs(centre.x() - mine.x()) <= 2 and abs(centre.y() - mine.y()) <= 2, (centre, mine)
        assert dlg.width() <= 1024 and dlg.height() <= 600
        caplog.set_level(logging.WARNING, logger="edge_station.kiosk")
        enter(qtbot, dlg, "0000")
        assert any("wrong operator PIN" in r.getMessage() for r in caplog.records)
        dlg.reject()
    finally:
        w.shutdown()
