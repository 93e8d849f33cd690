"""Rollout page and settings dialog against a real station and its rollout router."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from app.ui.rollout_page import RolloutPage
from app.ui.settings_dialog import SettingsDialog
from app.ui.station_settings import K_API_PORT, K_KIOSK_CYCLE, StationSettings
from tests.ui.conftest import make_station

#: state set up for a test of something else than the gate: the gate is tested in test_rollout_gate.py
SETUP = "test setup"

pytestmark = pytest.mark.slow


def _page(qtbot, window) -> RolloutPage:
    page = window.show_page("rollout")
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
    return page


def test_rollout_page_follows_the_router_and_rolls_back(qtbot, window, station):
    page = _page(qtbot, window)
    assert "legacy" in page.stage_label.text()
    station.router.set(use_domain=True, percent=25, actor="test", override_reason=SETUP)
    with qtbot.waitSignal(page.snapshotShown, timeout=10_000):
        page.refresh()
    assert "domain 25 %" in page.stage_label.text()
    assert page.rollback_btn.isEnabled()
    # Gate: no verification and no calls yet: it holds, advance is off.
    assert not page.advance_btn.isEnabled()
    assert page.gate_table.rowCount() > 0

    with qtbot.waitSignal(page.actionFinished, timeout=10_000) as sig:
        page.rollback(confirm=False)
    assert sig.args[:2] == ["rollback", True]
    assert station.router.settings.latched and station.router.settings.target_percent == 0
    qtbot.waitUntil(lambda: "ROLLED BACK" in page.stage_label.text(), timeout=10_000)
    qtbot.waitUntil(lambda: page.checklist_box.isVisibleTo(page), timeout=10_000)
    assert page.checklist_table.rowCount() > 0
    assert not page.rollback_btn.isEnabled()


def test_verify_from_the_page_is_recorded_for_the_gate(qtbot, window, station):
    page = _page(qtbot, window)
    with qtbot.waitSignal(page.verifyFinished, timeout=90_000) as sig:
        page.verify()
        assert not page.verify_btn.isEnabled()
    report = sig.args[0]
    assert not isinstance(report, str), report
    assert report.passed
    assert "verify" in page.verify_out.toPlainText() or "PASSED" in page.verify_out.toPlainText()
    lv = station.router.reload().last_verify
    assert lv is not None and lv["passed"] is True
    qtbot.waitUntil(lambda: "passed" in page.last_verify_label.text(), timeout=10_000)


def test_settings_dialog_saves_rollout_and_station_settings(qtbot, window, station):
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    assert dlg.percent.isEnabled() and dlg.use_domain.isEnabled()
    dlg.use_domain.setChecked(True)
    dlg.percent.setValue(10)
    dlg.auto_rollback.setChecked(False)
    dlg.api_port.setValue(9876)
    dlg.kiosk_cycle.setValue(15)
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    s = station.router.reload()
    assert s.use_domain and s.percent == 10 and not s.auto_rollback
    stored = StationSettings(station).load()
    assert stored[K_API_PORT] == 9876 and stored[K_KIOSK_CYCLE] == 15

    dlg.kiosk_cycle.setValue(3)  # 1..4 s is not allowed (0 = off, or 5..3600)
    with qtbot.waitSignal(dlg.failed, timeout=5_000) as sig:
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    assert "kiosk.cycle_s" in sig.args[0]
    assert StationSettings(station).load()[K_KIOSK_CYCLE] == 15
    dlg.close()


def test_settings_dialog_sets_a_kiosk_pin(qtbot, window, station):
    from app.kiosk.pin import load_pin

    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    dlg.pin.setText("2468")
    dlg.pin2.setText("2469")
    with qtbot.waitSignal(dlg.failed, timeout=2_000):
        dlg.apply()
    assert load_pin(station.paths.data_dir) is None
    dlg.pin2.setText("2468")
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.apply()
    stored = load_pin(station.paths.data_dir)
    assert stored is not None and stored.matches("2468") and not stored.matches("2469")
    dlg.close()


def test_environment_locked_fields_are_shown_locked(qtbot, data_dir, ui_settings, monkeypatch):
    from app.ui.main_window import MainWindow

    monkeypatch.setenv("ROLLOUT_PERCENT", "25")
    station = make_station(data_dir)
    try:
        w = MainWindow(station, settings=ui_settings)
        qtbot.addWidget(w)
        w.open_station()
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        dlg = SettingsDialog(station, w.tasks, w)
        qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
        assert not dlg.percent.isEnabled()
        assert dlg.percent.value() == 25
        assert "ROLLOUT_PERCENT" in dlg.percent_lock.text() and dlg.percent_lock.isVisibleTo(dlg)
        assert dlg.use_domain.isEnabled()
        page = w.show_page("rollout")
        w.show()
        qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
        assert "ROLLOUT_PERCENT" in page.lock_label.text()
        dlg.close()
        w.shutdown()
    finally:
        station.close()


def test_camera_defaults_from_the_settings_fill_the_add_dialog(qtbot, window, station):
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    dlg.def_stall.setValue(42)
    dlg.def_max_fps.setValue(7)
    dlg.def_motion.setValue(0.05)
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.apply(close=True)
    qtbot.waitUntil(lambda: window.camera_defaults.get("camera_defaults.stall_timeout") == 42, timeout=5_000)
    add = window.add_camera_dialog()
    assert add.form.stall_timeout.value() == 42
    assert add.form.max_fps.value() == 7
    assert abs(add.form.motion_threshold.value() - 0.05) < 1e-9
    add.reject()


def test_settings_dialog_sets_the_language_and_kiosk_start_for_the_next_start(qtbot, window, station):
    from app.kiosk.settings import K_ENABLED, K_LANGUAGE, read_startup_settings
    from app.ui.i18n import choose_language

    station.set_settings({K_LANGUAGE: "zh-CN"}, actor="cli")  # as another tool may have spelt it
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    assert dlg.language.currentData() == "zh_CN" and dlg.language.currentText() == "简体中文"
    assert not dlg.kiosk_enabled.isChecked()
    dlg.language.setCurrentIndex(dlg.language.findData("en"))
    dlg.kiosk_enabled.setChecked(True)
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    # What the command line reads before the next window exists:
    assert read_startup_settings(station.paths.db_url) == {K_ENABLED: True, K_LANGUAGE: "en"}
    with station.store.uow() as uow:
        audited = {(e.key, e.actor, (e.detail or {}).get("new")) for e in uow.audit.recent(50, op_prefix="settings.set")}
    assert {(K_ENABLED, "operator", True), (K_LANGUAGE, "operator", "en")} <= audited

    dlg.language.setCurrentIndex(dlg.language.findData("system"))
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    assert read_startup_settings(station.paths.db_url)[K_LANGUAGE] == "system"
    assert choose_language("system") in ("en", "zh_CN")  # follows the system locale
    dlg.close()


def test_a_language_the_window_does_not_ship_is_refused(qtbot, window, station):
    from app.ui.station_settings import K_LANGUAGE, problems

    assert [e.field for e in problems({K_LANGUAGE: "klingon"})] == [K_LANGUAGE]
    station.set_settings({K_LANGUAGE: "klingon"}, actor="test")  # typed into the database by hand
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    assert dlg.language.currentData() == "system"  # what the window does with it, too
    dlg.close()
