"""Rollout page (two tracks) and settings dialog against a real station and its rollout router."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from app.ui.rollout.page import RolloutPage
from app.ui.window.settings_dialog import SettingsDialog
from app.ui.window.station_settings import K_API_PORT, K_KIOSK_CYCLE, StationSettings
from tests.ui.conftest import make_station

#: state set up for a test of something else than the gate: the gate is tested in test_rollout_gate.py
SETUP = "test setup"

pytestmark = pytest.mark.slow


def _page(qtbot, window) -> RolloutPage:
    page = window.show_page("rollout")
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
    return page


def _shown(qtbot, page, predicate, timeout=10_000):
    """Refresh the page until a snapshot taken after this call shows what ``predicate`` asks."""
    import time

    deadline = time.monotonic() + timeout / 1000
    while True:
        with qtbot.waitSignal(page.snapshotShown, timeout=timeout):
            page.refresh()
        if predicate(page):
            return
        assert time.monotonic() < deadline, (
            "the page did not show the expected state in time; the gate on the page: "
            + "; ".join(f"{t}: {panel.gate_table.statuses()}" for t, panel in page.panels.items()))


def _checks(table) -> dict[str, str]:
    return table.statuses()


def test_the_two_track_page_runs_the_plan_in_the_window(qtbot, window, station):
    """rules 10 -> 100 with holds, decision point 2 refused then passed, cameras 10, a report holding
    the gate, a rollback that leaves zero domain calls: all from the page's own actions."""
    page = _page(qtbot, window)
    rules, cams = page.panels["rules"], page.panels["cameras"]
    assert "legacy" in rules.state_label.text() and "legacy" in cams.state_label.text()
    assert not rules.advance_btn.isEnabled()  # not verified yet
    assert _checks(rules.gate_table)["verification"] == "fail"
    assert {"dp2_rules_complete", "dp2_camera_verification", "dp2_rollback_rehearsed"} <= set(_checks(cams.gate_table))
    # a short plan for the test (the defaults are 1, 3, 7 and 7 days), then a fresh verification
    station.rollout_options({"hold_10_s": 0, "hold_25_s": 0, "hold_50_s": 0, "hold_100_s": 0,
                             "gate_min_calls_per_op": 2, "gate_min_latency_calls": 2, "max_p95_ratio": 100,
                             "latency_floor_ms": 60_000, "shadow_rate": 0})
    station.parts().router.control.record_verification(True, 0, 0, actor="test")
    _shown(qtbot, page, lambda p: rules.advance_btn.isEnabled())
    assert rules.advance_btn.text() == "Advance to 10 %"
    from app.domain.operations import CreateRule, UpdateRule
    from tests.unit.test_rollout_fakes import sample_rule

    n = 0
    for stage in (10, 25, 50, 100):
        with qtbot.waitSignal(page.actionFinished, timeout=10_000) as sig:
            rules.advance_btn.click()
        assert sig.args[:2] == ["advance", True], sig.args
        assert station.parts().router.reload().track("rules").percent == stage
        traffic: dict[str, str] = {}
        for _ in range(300):  # real rule writes, routed, until the traffic the gate reads is there: every
            n += 1  # rule operation covered, and both paths with calls enough to compare latency
            rule = station.call("create_rule", CreateRule(sample_rule(f"window rule {n}"))).rule
            station.call("update_rule", UpdateRule(rule.id, {"threshold": 2.0}))
            traffic = {c.name: c.status for c in station.rollout_gate("rules").checks
                       if c.name in ("coverage", "latency", "domain_error_rate")}
            if set(traffic.values()) == {"pass"}:
                break
        assert set(traffic.values()) == {"pass"}, traffic
        if stage < 100:
            _shown(qtbot, page, lambda p: rules.advance_btn.isEnabled())
    _shown(qtbot, page, lambda p: "COMPLETE" in rules.state_label.text())
    assert rules.advance_btn.isHidden() and rules.override_btn.isHidden()  # no "Advance to 10 %" at 100 %
    # decision point 2: refused (no rehearsal), then passed after the page's rehearsal
    assert not cams.advance_btn.isEnabled() and _checks(cams.gate_table)["dp2_rollback_rehearsed"] == "fail"
    assert _checks(cams.gate_table)["dp2_rules_complete"] == "pass"
    with qtbot.waitSignal(page.rehearseFinished, timeout=120_000) as sig:
        page.rehearse("cameras")
    assert not isinstance(sig.args[0], str) and sig.args[0].passed, sig.args[0]
    _shown(qtbot, page, lambda p: cams.advance_btn.isEnabled())
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        cams.advance_btn.click()
    assert station.parts().router.reload().track("cameras").percent == 10
    # a report holds the cameras gate and is listed on the page
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        page.file_report("cameras", text="the Lobby snapshot is black", operator="desk")
    _shown(qtbot, page, lambda p: cams.reports_table.rowCount() == 1)
    assert _checks(cams.gate_table)["open_reports"] == "fail" and not cams.advance_btn.isEnabled()
    assert "the Lobby snapshot is black" in cams.reports_table.item(0, 3).text()
    # roll back everything: zero domain calls afterwards
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        page.rollback("all", confirm=False)
    _shown(qtbot, page, lambda p: "ROLLED BACK" in rules.state_label.text() and "ROLLED BACK" in cams.state_label.text())
    assert cams.resume_btn.isVisibleTo(cams) and not cams.rollback_btn.isEnabled()
    assert cams.checklist_table.isVisibleTo(cams) and "no_shadow_on_domain" in _checks(cams.checklist_table)
    domain_before = sum(v.get("domain", {}).get("calls", 0) for v in station.parts().router.metrics.lifetime().values())
    for cam in station.cameras():
        from app.domain.operations import CameraRef

        station.call("camera_status", CameraRef(cam.id), force="domain")
    station.call("create_rule", CreateRule(sample_rule("after the rollback")))
    domain_after = sum(v.get("domain", {}).get("calls", 0) for v in station.parts().router.metrics.lifetime().values())
    assert domain_after == domain_before
    # resume clears a latch only with a reason
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        page.resume("rules", reason="rule writer fixed")
    _shown(qtbot, page, lambda p: not rules.resume_btn.isVisibleTo(rules))
    assert "legacy" in rules.state_label.text()


def test_rollout_page_follows_the_router_and_rolls_back(qtbot, window, station):
    page = _page(qtbot, window)
    assert "legacy" in page.stage_label.text()
    station.parts().router.set(use_domain=True, percent=25, actor="test", override_reason=SETUP)
    with qtbot.waitSignal(page.snapshotShown, timeout=10_000):
        page.refresh()
    assert "rules 25 %" in page.stage_label.text() and "cameras 25 %" in page.stage_label.text()
    assert "stage 25 %" in page.panels["cameras"].state_label.text()
    assert page.panels["cameras"].rollback_btn.isEnabled()
    # Gate: no verification and no calls yet: it holds, advance is off.
    assert not page.panels["rules"].advance_btn.isEnabled()
    assert page.panels["rules"].gate_table.rowCount() > 0

    with qtbot.waitSignal(page.actionFinished, timeout=10_000) as sig:
        page.rollback("cameras", confirm=False)
    assert sig.args[:2] == ["rollback", True]
    cams = station.parts().router.settings.track("cameras")
    assert cams.latched and cams.target_percent == 0
    assert station.parts().router.settings.track("rules").target_percent == 25  # the tracks are independent
    panel = page.panels["cameras"]
    qtbot.waitUntil(lambda: "ROLLED BACK" in panel.state_label.text(), timeout=10_000)
    qtbot.waitUntil(lambda: panel.checklist_table.isVisibleTo(panel), timeout=10_000)
    assert panel.checklist_table.rowCount() > 0
    assert not panel.rollback_btn.isEnabled()
    assert "not judged" not in page.health_label.text()  # the rules track still routes calls: it is judged
    # both tracks rolled back: nothing routes to the domain path, so health is "not judged" (as in
    # `rollout status`), not "inconclusive"
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        page.rollback("rules", confirm=False)
    qtbot.waitUntil(lambda: "not judged, no track routes calls" in page.health_label.text(), timeout=10_000)


def test_verify_from_the_page_is_recorded_for_the_gate(qtbot, window, station):
    page = _page(qtbot, window)
    with qtbot.waitSignal(page.verifyFinished, timeout=90_000) as sig:
        page.verify()
        assert not page.verify_btn.isEnabled()
    report = sig.args[0]
    assert not isinstance(report, str), report
    assert report.passed, ([r for r in report.rows if not r.match], report.errors)
    assert "verify" in page.verify_out.toPlainText() or "PASSED" in page.verify_out.toPlainText()
    lv = station.parts().router.reload().last_verify
    assert lv is not None and lv["passed"] is True
    qtbot.waitUntil(lambda: "passed" in page.last_verify_label.text(), timeout=10_000)


def test_settings_dialog_saves_rollout_and_station_settings(qtbot, window, station):
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    assert dlg.track_percent["rules"].isEnabled() and dlg.track_use["cameras"].isEnabled()
    # raising a percent goes through the track's gate: refused (not verified), nothing changed
    dlg.track_use["rules"].setChecked(True)
    dlg.track_percent["rules"].setValue(10)
    with qtbot.waitSignal(dlg.failed, timeout=10_000) as sig:
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    assert "cannot raise the rules track from 0 % to 10 %" in sig.args[0] and "verify" in sig.args[0]
    assert station.parts().router.reload().track("rules").target_percent == 0
    # ... or with an override reason, audited
    dlg.track_use["rules"].setChecked(True)
    dlg.track_percent["rules"].setValue(10)
    dlg.override_reason["rules"].setText("bench station")
    dlg.auto_rollback.setChecked(False)
    dlg.api_port.setValue(9876)
    dlg.kiosk_cycle.setValue(15)
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    s = station.parts().router.reload()
    assert s.track("rules").target_percent == 10 and s.track("cameras").target_percent == 0
    assert not s.auto_rollback
    with station.parts().store.uow() as uow:
        (o,) = uow.audit.recent(5, op_prefix="rollout.override")
    assert (o.key, o.reason, o.actor) == ("rules", "bench station", "operator")
    qtbot.waitUntil(lambda: dlg.track_percent["rules"].value() == 10, timeout=5_000)  # reloaded: page and dialog agree
    # a latched track is locked in the dialog: only an audited resume clears it
    station.rollout_rollback(track="rules", reason="test")
    dlg.load()
    qtbot.waitUntil(lambda: dlg.track_latch["rules"].isVisibleTo(dlg), timeout=5_000)
    assert not dlg.track_percent["rules"].isEnabled() and "Resume" in dlg.track_latch["rules"].text()
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
    from app.ui.window.main_window import MainWindow

    monkeypatch.setenv("ROLLOUT_PERCENT", "25")
    station = make_station(data_dir)
    try:
        w = MainWindow(station, settings=ui_settings)
        qtbot.addWidget(w)
        w.open_station()
        qtbot.waitUntil(lambda: w.ready, timeout=20_000)
        dlg = SettingsDialog(station, w.tasks, w)
        qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
        for track in ("rules", "cameras"):  # ROLLOUT_PERCENT sets both tracks
            assert not dlg.track_percent[track].isEnabled()
            assert dlg.track_percent[track].value() == 25
            assert "ROLLOUT_PERCENT" in dlg.track_lock[track].text() and dlg.track_lock[track].isVisibleTo(dlg)
            assert dlg.track_use[track].isEnabled()
        page = w.show_page("rollout")
        w.show()
        qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
        assert "ROLLOUT_PERCENT" in page.panels["cameras"].lock_label.text()
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
    from app.ui.common.i18n import choose_language

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
    assert read_startup_settings(station.paths.db_url, station.paths.data_dir) == {K_ENABLED: True, K_LANGUAGE: "en"}
    with station.parts().store.uow() as uow:
        audited = {(e.key, e.actor, (e.detail or {}).get("new")) for e in uow.audit.recent(50, op_prefix="settings.set")}
    assert {(K_ENABLED, "operator", True), (K_LANGUAGE, "operator", "en")} <= audited

    dlg.language.setCurrentIndex(dlg.language.findData("system"))
    with qtbot.waitSignal(dlg.applied, timeout=10_000):
        dlg.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    assert read_startup_settings(station.paths.db_url, station.paths.data_dir)[K_LANGUAGE] == "system"
    assert choose_language("system") in ("en", "zh_CN")  # follows the system locale
    dlg.close()


def test_a_language_the_window_does_not_ship_is_refused(qtbot, window, station):
    from app.ui.window.station_settings import K_LANGUAGE, problems

    assert [e.field for e in problems({K_LANGUAGE: "klingon"})] == [K_LANGUAGE]
    station.set_settings({K_LANGUAGE: "klingon"}, actor="test")  # typed into the database by hand
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=5_000)
    assert dlg.language.currentData() == "system"  # what the window does with it, too
    dlg.close()
