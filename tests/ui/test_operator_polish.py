"""What an operator expects besides the defects: shortcuts, a Help menu, mnemonics that do not clash
(in English and in Chinese), and texts that say what they mean."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFormLayout, QLabel

from app.ui.common.i18n import install_translation, ts_path
from app.ui.window.camera_dialog import CameraDialog

MNEMONIC = re.compile(r"&([^&\s])")


def mnemonic(text: str) -> str | None:
    m = MNEMONIC.search(text.replace("&&", ""))
    return m.group(1).lower() if m else None


def clashes(texts: list[str]) -> list[str]:
    keys = Counter(k for t in texts if (k := mnemonic(t)))
    return [t for t in texts if (k := mnemonic(t)) and keys[k] > 1]


@pytest.fixture(scope="module")
def catalogue_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qm")
    subprocess.run([str(Path(sys.executable).parent / "pyside6-lrelease"), "-silent", str(ts_path("zh_CN")),
                    "-qm", str(out / "edge_station_zh_CN.qm")], check=True, timeout=60)
    return out


def _form_labels(widget) -> list[str]:
    out = []
    for form in widget.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and isinstance(item.widget(), QLabel):
                out.append(item.widget().text())
    return out


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_no_clashing_mnemonics_in_menus_and_the_camera_form(qtbot, station, ui_settings, language, catalogue_dir):
    from app.ui.window.main_window import MainWindow

    t = install_translation(language, directory=catalogue_dir)
    try:
        w = MainWindow(station, settings=ui_settings)
        qtbot.addWidget(w)
        menus = [a.menu() for a in w.menuBar().actions() if a.menu() is not None]
        assert not clashes([m.title() for m in menus]), [m.title() for m in menus]
        for menu in menus:
            texts = [a.text() for a in menu.actions() if not a.isSeparator()]
            assert not clashes(texts), (menu.title(), clashes(texts))
        dlg = CameraDialog(station, w.tasks, None, w)
        labels = _form_labels(dlg)
        assert len(labels) >= 6 and not clashes(labels), clashes(labels)
        dlg.close()
        w.shutdown()
    finally:
        t.remove()


def test_settings_have_a_shortcut_and_help_lists_every_shortcut(qtbot, window):
    settings = window.window_actions["settings"].shortcut()
    assert not settings.isEmpty()
    expected = QKeySequence(QKeySequence.StandardKey.Preferences)
    assert settings == (expected if not expected.isEmpty() else QKeySequence("Ctrl+,"))
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[-1] == "Help"
    box = window.shortcuts_dialog()
    listed = dict(window.shortcut_list())
    assert listed["Start"] == "F5" and listed["Restart"] == "Ctrl+R" and "Settings" in listed
    assert "F5" in box.text() and "Ctrl+R" in box.text()
    box.close()
    about = window.about_dialog()
    assert str(window.station.paths.data_dir) in about.text()
    about.close()


def test_the_camera_table_sorts_numbers_as_numbers_and_filters(qtbot, window, station):
    from PySide6.QtCore import Qt

    from app.domain import CameraState
    from app.domain.operations import CameraStatus
    from app.ui.common.models import CameraTableModel

    ids = [c.id for c in station.cameras()]
    statuses = [CameraStatus(cid, name, CameraState.STOPPED, True, restarts=n)
                for cid, name, n in zip(ids, ("b-cam", "A-cam", "c-cam", "d-cam"), (10, 9, 100, 2), strict=True)]
    window.model.update(statuses, {cid: f"test://{i}" for i, cid in enumerate(ids)})
    window.table.sortByColumn(CameraTableModel.COL_RESTARTS, Qt.SortOrder.AscendingOrder)

    def shown(col: int) -> list[str]:
        return [window.proxy.index(r, col).data() for r in range(window.proxy.rowCount())]

    assert shown(CameraTableModel.COL_RESTARTS) == ["2", "9", "10", "100"], "numbers, not text (10 < 9)"
    window.table.sortByColumn(CameraTableModel.COL_NAME, Qt.SortOrder.AscendingOrder)
    assert shown(CameraTableModel.COL_NAME) == ["A-cam", "b-cam", "c-cam", "d-cam"]
    window.filter_edit.setText("C-CAM")
    assert shown(CameraTableModel.COL_NAME) == ["c-cam"]
    window.table.selectRow(0)
    assert window.selected_ids() == [ids[2]], "the selection is the camera shown, not the model's row 0"
    window.select_camera(ids[0])  # a filtered-out camera: the filter clears so it can be shown
    assert window.filter_edit.text() == "" and window.selected_ids() == [ids[0]]


def test_a_new_camera_becomes_the_selection(qtbot, window, station):
    from app.domain import Camera

    dlg = window.add_camera_dialog()
    dlg.form.name.setText("Side door")
    dlg.form.source.setText("test://still")
    dlg.save()
    qtbot.waitUntil(lambda: any(c.name == "Side door" for c in station.cameras()), timeout=10_000)
    new = next(c for c in station.cameras() if c.name == "Side door")
    qtbot.waitUntil(lambda: window.selected_ids() == [new.id], timeout=10_000)
    assert isinstance(new, Camera)


def test_a_saved_rule_becomes_the_selection_and_thresholds_show_their_comparator(qtbot, window, station):
    from PySide6.QtCore import Qt

    from app.domain import AlertRule, Comparator, TargetKind
    from app.domain.operations import CreateRule

    page = window.show_page("rules")
    qtbot.waitUntil(lambda: bool(page.rules), timeout=5_000)
    dlg = page.new_rule("low_fps")
    dlg.form.name.setText("Zz slow lobby")
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.selected() is not None and page.selected().name == "Zz slow lobby", timeout=10_000)

    station.parts().router.create_rule(CreateRule(AlertRule(name="Too slow", metric="fps", comparator=Comparator.LT,
                                                 threshold=100.0, target=TargetKind.ALL_CAMERAS, for_seconds=0)))
    station.parts().alerts.load_rules()
    alerts = window.show_page("alerts")
    lobby = next(c.id for c in station.cameras() if c.name == "Lobby")
    window.start_camera(lobby)
    qtbot.waitUntil(lambda: any(a.rule_name == "Too slow" for a in alerts.active), timeout=30_000)
    row = next(i for i, a in enumerate(alerts.active) if a.rule_name == "Too slow")
    qtbot.waitUntil(lambda: alerts.active_table.item(row, 6).text() == "< 100", timeout=5_000)  # column 0 is the snapshot
    window.stop_camera(lobby)
    qtbot.waitUntil(lambda: window.model.status(lobby).state == "stopped", timeout=15_000)


def test_chinese_shows_severities_states_field_messages_and_motion_in_chinese(qtbot, station, catalogue_dir):
    from app.ui.alerts.pages import alert_text
    from app.ui.charts.page import WINDOW_TEXTS
    from app.ui.common.models import view_label

    t = install_translation("zh_CN", directory=catalogue_dir)
    try:
        assert (alert_text("critical"), alert_text("firing")) == ("严重", "告警中")
        assert view_label("source_down") == "视频源中断" and view_label("inactive") == "停用"
        from PySide6.QtCore import QCoreApplication
        assert QCoreApplication.translate("ChartsPage", WINDOW_TEXTS[0]) == "5 分钟"
        from app.ui.common.tasks import TaskRunner

        dlg = CameraDialog(station, TaskRunner(), None)
        qtbot.addWidget(dlg)
        dlg.form.name.setText("x")
        dlg.form.name.clear()
        assert dlg.form.error_text("name") == "不能为空"
        labels = " ".join(_form_labels(dlg))
        assert "运动" in labels and "移动" not in labels
        dlg.close()
    finally:
        t.remove()
    text = ts_path("zh_CN").read_text(encoding="utf-8")
    assert "移动" not in text, "motion is 运动, not 移动"


def test_an_alert_in_the_status_bar_and_tray_names_its_rule_once_in_the_windows_language(
        qtbot, window, station, catalogue_dir):
    from datetime import UTC, datetime

    from app.domain.alerts import AlertChange, ChangeKind
    from app.domain.rules import Severity
    from app.station import StationEvent

    rule = "FPS under 100 (test)"
    change = AlertChange(kind=ChangeKind.FIRING, rule_name=rule, severity=Severity.WARNING, subject="camera Lobby",
                         at=datetime.now(UTC), notify=True, message=f"{rule}: camera Lobby fps = 15 (< 100)")
    with qtbot.waitSignal(window.notifier.notified, timeout=5_000) as sig:
        station.emit(StationEvent("alert", 1, change))
    n = sig.args[0]
    shown = window.statusBar().currentMessage()
    assert shown.count(rule) == 1 and "camera Lobby fps = 15 (< 100)" in shown, shown
    assert f"{n.title} {n.message}".count(rule) == 1, (n.title, n.message)
    t = install_translation("zh_CN", directory=catalogue_dir)
    try:
        with qtbot.waitSignal(window.notifier.notified, timeout=5_000) as sig:
            station.emit(StationEvent("alert", 1, change))
        assert sig.args[0].title == f"{rule} — 告警中", "the alert's state in the window's language"
    finally:
        t.remove()
