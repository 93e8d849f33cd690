"""Alerts page and rule editor with a real alert engine on the station's store and metrics."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.domain import AlertRule, Comparator, Severity, TargetKind
from app.domain.operations import CreateRule
from tests.ui.conftest import START_TIMEOUT_MS, camera_id

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(station, window):
    """The opened station's alert engine."""
    assert station.parts().alerts is not None
    return station.parts().alerts


def _rule_names(page) -> list[str]:
    return [page.table.item(r, 1).text() for r in range(page.table.rowCount())]


def test_rule_editor_creates_validates_disables_and_deletes(qtbot, window, station, engine):
    page = window.show_page("rules")
    qtbot.waitUntil(lambda: page.table.rowCount() >= 0 and page.rules is not None, timeout=5_000)
    dlg = page.new_rule("low_fps")
    f = dlg.form
    assert f.metric_box.currentData() == "fps"
    f.name.setText("")
    assert "must not be empty" in f.error_text("name")
    assert not dlg.save_button.isEnabled()
    f.name.setText("Lobby too slow")
    _select_data(f.target, "camera")
    assert "required" in f.error_text("camera_id") or f.camera.currentData() is not None
    _select_data(f.camera, camera_id(station, "Lobby"))
    f.schedule.setText("someday 25:00")
    assert f.error_text("schedule")
    f.schedule.setText("mon-sun 00:00-24:00")
    f.threshold.setValue(3)
    assert dlg.save_button.isEnabled(), f.problems
    # the save's own actionFinished first: caught late, it would pass for the toggle's below
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Lobby too slow" in _rule_names(page), timeout=10_000)
    stored = [r for r in station.parts().admin.list_rules() if r.name == "Lobby too slow"][0]
    assert stored.target == TargetKind.CAMERA and stored.threshold == 3 and stored.metric == "fps"
    assert any(r.name == "Lobby too slow" for r in engine.rules())  # the engine reloaded

    page.select_rule("Lobby too slow")
    with qtbot.waitSignal(page.actionFinished, timeout=10_000) as sig:
        page.toggle_selected()
    assert sig.args[1] is True
    assert not station.parts().admin.get_rule(stored.id).enabled, (sig.args, page.selected_rule_ids()
                                                                     if hasattr(page, "selected_rule_ids") else None)
    assert all(r.name != "Lobby too slow" for r in engine.rules())

    qtbot.waitUntil(lambda: "Lobby too slow" in _rule_names(page), timeout=5_000)
    page.select_rule("Lobby too slow")
    with qtbot.waitSignal(page.actionFinished, timeout=10_000):
        page.delete_selected(confirm=False)
    assert all(r.name != "Lobby too slow" for r in station.parts().admin.list_rules())
    qtbot.waitUntil(lambda: "Lobby too slow" not in _rule_names(page), timeout=5_000)


def test_editing_a_rule_changed_elsewhere_is_a_conflict(qtbot, window, station, engine):
    res = station.parts().router.create_rule(CreateRule(AlertRule(
        name="Station hot", metric="cpu_percent", comparator=Comparator.GT, threshold=95,
        target=TargetKind.STATION)))
    page = window.show_page("rules")
    qtbot.waitUntil(lambda: "Station hot" in _rule_names(page), timeout=5_000)
    page.select_rule("Station hot")
    dlg = page.edit_selected()
    station.parts().admin.set_rule_enabled(res.rule.id, False)  # someone else changes it meanwhile
    dlg.form.threshold.setValue(97)
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "conflict" in dlg.form.general_error.text(), timeout=10_000)
    assert dlg.isVisible()
    assert station.parts().admin.get_rule(res.rule.id).threshold == 95


def test_firing_alert_is_shown_and_acknowledged(qtbot, window, station, engine):
    cid = camera_id(station, "Lobby")
    station.parts().router.create_rule(CreateRule(AlertRule(
        name="Lobby has frames", metric="fps", comparator=Comparator.GT, threshold=0.5,
        target=TargetKind.CAMERA, camera_id=cid, severity=Severity.CRITICAL, cooldown=0)))
    engine.load_rules()
    window.start_camera(cid)
    page = window.show_page("alerts")

    def firing() -> bool:  # and stored (its event id known: what the acknowledgement needs)
        return any(a.rule_name == "Lobby has frames" and str(a.state) == "firing" and a.event_id is not None
                   for a in page.active)

    qtbot.waitUntil(firing, timeout=START_TIMEOUT_MS)
    row = [i for i, a in enumerate(page.active) if a.rule_name == "Lobby has frames"][0]
    # column 0 is the snapshot thumbnail
    assert page.active_table.item(row, 1).text() == "critical"
    assert "Lobby" in page.active_table.item(row, 3).text()
    qtbot.waitUntil(lambda: window.status_sample is not None and (window.status_sample.alerts_firing or 0) >= 1,
                    timeout=5_000)
    assert "alerts" in window.alerts_label.text()

    page.active_table.selectRow(row)
    assert page.ack_btn.isEnabled()
    with qtbot.waitSignal(page.acknowledged, timeout=10_000) as sig:
        page.ack_btn.click()
    assert sig.args[0] is True
    qtbot.waitUntil(lambda: any(a.rule_name == "Lobby has frames" and a.acknowledged for a in page.active),
                    timeout=10_000)
    hist = [e for e in engine.history(50) if e.rule_name == "Lobby has frames"]
    assert hist and hist[0].acknowledged_by == "operator"
    window.stop_camera(cid)


def _select_data(box, data) -> None:
    i = box.findData(data)
    assert i >= 0, data
    box.setCurrentIndex(i)


def _alert(rule, subject, severity, value, since, *, state="firing", acknowledged=False):
    from datetime import UTC, datetime
    from types import SimpleNamespace

    return SimpleNamespace(rule_name=rule, subject=subject, severity=severity, state=state, inhibited=False,
                           value=value, threshold=10, since=datetime.fromtimestamp(since, UTC), acknowledged=acknowledged, event_id=None,
                           rule_id=None, camera_id=None)


def test_alert_and_rule_tables_sort_by_a_clicked_column_and_filter_by_text(qtbot, window, station, engine):
    page = window.show_page("alerts")
    alerts = [_alert("FPS under 10", "camera Lobby", "warning", 12.5, 1_700_000_100.0),
              _alert("Camera offline", "camera Yard", "critical", 1, 1_700_000_300.0),
              _alert("Disk nearly full", "station", "info", 3, 1_700_000_200.0)]
    page.show_alerts(alerts, [])
    names = lambda: [page.active_table.item(r, 2).text() for r in range(page.active_table.rowCount())]  # noqa: E731
    assert names() == ["Camera offline", "FPS under 10", "Disk nearly full"]  # the page's order: severity
    page.active_table.horizontalHeader().sectionClicked.emit(5)  # Value: numbers as numbers
    assert names() == ["Camera offline", "Disk nearly full", "FPS under 10"]
    page.active_table.horizontalHeader().sectionClicked.emit(5)  # again: the other way
    assert names() == ["FPS under 10", "Disk nearly full", "Camera offline"]
    # row r is still alert r: selecting the first row selects the alert shown there
    page.active_table.selectRow(0)
    assert [a.rule_name for a in page._selected()] == ["FPS under 10"]
    page.active_filter.setText("yard")
    shown = [names()[r] for r in range(page.active_table.rowCount()) if not page.active_table.isRowHidden(r)]
    assert shown == ["Camera offline"]
    page.show_alerts(alerts, [])  # a refresh keeps both the order and the filter
    assert names() == ["FPS under 10", "Disk nearly full", "Camera offline"]
    assert [r for r in range(3) if not page.active_table.isRowHidden(r)] == [2]

    rules = window.show_page("rules")
    qtbot.waitUntil(lambda: rules.table.rowCount() > 1, timeout=5_000)
    rules.table.horizontalHeader().sectionClicked.emit(1)
    rules.table.horizontalHeader().sectionClicked.emit(1)  # by name, Z to A
    got = _rule_names(rules)
    assert got == sorted(got, key=str.casefold, reverse=True)
    rules.table.selectRow(0)
    assert rules.selected().name == got[0]
    rules.filter_edit.setText(got[-1][:6])
    visible = [_rule_names(rules)[r] for r in range(rules.table.rowCount()) if not rules.table.isRowHidden(r)]
    assert got[-1] in visible and len(visible) < len(got)
