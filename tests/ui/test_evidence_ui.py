"""Alert evidence in the window: the alerts page's snapshot column and detail pane (snapshot and
a playing clip with a scrubber), the Save clip action, the evidence page, the kiosk pop-up.

A real station with a real worker on a lavfi test pattern; screenshots go to
``$EDGE_STATION_SCREENSHOTS`` when it is set (the README's screenshot step).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.domain.operations import CameraRef, CreateRule
from app.domain.rules import AlertRule, Comparator, Severity, TargetKind
from tests.ui.conftest import START_TIMEOUT_MS, camera_id

pytestmark = pytest.mark.slow


def _shot(widget, name: str) -> None:
    where = os.environ.get("EDGE_STATION_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(where) / name))


def _fire(station, qtbot, cid: int) -> int:
    station.set_settings({"evidence.preroll_s": 2.0, "evidence.postroll_s": 1.0}, actor="test")
    # a few seconds of stream first, so the pre-roll is full when the alert fires
    qtbot.waitUntil(lambda: station.parts().supervisor.status(cid).decoded >= 45, timeout=START_TIMEOUT_MS)
    station.parts().router.create_rule(CreateRule(AlertRule(
        name="Motion at the lobby", metric="motion_active", comparator=Comparator.GE, threshold=1.0,
        target=TargetKind.CAMERA, camera_id=cid, severity=Severity.CRITICAL, cooldown=0)))
    station.reload_cameras()
    event = {}

    def fired() -> bool:
        ev = next((e for e in station.parts().alerts.history(20) if e.rule_name == "Motion at the lobby" and e.id), None)
        if ev is None:
            return False
        kinds = {x.kind for x in station.evidence_for_event(ev.id)}
        event["id"] = ev.id
        return kinds == {"snapshot", "clip"}

    qtbot.waitUntil(fired, timeout=START_TIMEOUT_MS)
    return event["id"]


def test_alerts_page_shows_the_snapshot_and_plays_the_clip(qtbot, window, station) -> None:
    cid = camera_id(station, "Lobby")
    window.start_camera(cid)
    event_id = _fire(station, qtbot, cid)
    window.resize(1500, 900)
    page = window.show_page("alerts")
    page.refresh()
    row = {}

    def thumb() -> bool:
        rows = [i for i, a in enumerate(page.active) if a.event_id == event_id]
        if not rows:
            return False
        row["r"] = rows[0]
        item = page.active_table.item(rows[0], 0)
        return item is not None and item.data(Qt.ItemDataRole.DecorationRole) is not None

    qtbot.waitUntil(thumb, timeout=10_000)
    pm = page.active_table.item(row["r"], 0).data(Qt.ItemDataRole.DecorationRole)
    assert 0 < pm.width() <= 96 and 0 < pm.height() <= 54

    page.active_table.selectRow(row["r"])
    pane = page.detail
    qtbot.waitUntil(lambda: pane.event_id == event_id and pane.fired.pixmap() is not None
                    and not pane.fired.pixmap().isNull(), timeout=10_000)
    assert pane.save_btn.isEnabled() and pane.export_btn.isEnabled()
    assert "before the alert" in pane.notes.text() and "re-encoded" in pane.notes.text()
    player = pane.player
    qtbot.waitUntil(lambda: player.slider.isEnabled() and player.video.pixmap() is not None
                    and not player.video.pixmap().isNull(), timeout=10_000)
    assert player.duration >= 2.5
    start = player.position
    player.play()
    qtbot.waitUntil(lambda: player.position >= start + 0.5, timeout=10_000)
    _shot(window, "alerts-evidence.png")
    player.pause()
    middle = player.duration / 2
    player.seek(middle)
    qtbot.waitUntil(lambda: abs(player.position - middle) < 0.2, timeout=10_000)
    assert abs(player.slider.value() / 1000 - player.position) < 0.01

    saved = pane.save_copy(str(window.station.paths.data_dir.parent / "copy.mp4"))
    assert saved is not None and saved.stat().st_size == station.event_clip_path(event_id).stat().st_size

    # Export event…: the event as JSON with its snapshot and clip, in one ZIP
    handover = window.station.paths.data_dir.parent / "handover.zip"
    pane.export(str(handover))
    qtbot.waitUntil(lambda: "Exported to" in pane.notes.text(), timeout=10_000)
    with zipfile.ZipFile(handover) as zf:
        names = zf.namelist()
    assert f"event-{event_id}.json" in names, names
    assert any(n.endswith(".jpg") for n in names) and any(n.endswith(".mp4") for n in names), names


def test_save_clip_action_and_the_evidence_page(qtbot, window, station) -> None:
    cid = camera_id(station, "Lobby")
    window.start_camera(cid)
    qtbot.waitUntil(lambda: (s := station.parts().supervisor.status(cid)).state.value == "running" and s.decoded > 30,
                    timeout=START_TIMEOUT_MS)
    station.set_settings({"evidence.postroll_s": 1.0}, actor="test")
    window.select_camera(cid)
    qtbot.waitUntil(lambda: window.window_actions["save_clip"].isEnabled(), timeout=5_000)
    window.window_actions["save_clip"].trigger()
    qtbot.waitUntil(lambda: any(e.kind == "clip" for e in station.list_evidence(cid)), timeout=30_000)
    qtbot.waitUntil(lambda: "Saved a" in window.statusBar().currentMessage(), timeout=5_000)
    station.save_snapshot(cid)

    window.resize(1500, 900)
    page = window.show_page("evidence")
    page.refresh()
    qtbot.waitUntil(lambda: page.cameras.rowCount() == 1 and page.files.rowCount() == 2, timeout=10_000)
    usage = station.evidence_usage()[0]
    assert page.cameras.item(0, 0).text() == "Lobby"
    assert (page.cameras.item(0, 1).text(), page.cameras.item(0, 2).text()) == ("1", "1")
    assert page.cameras.item(0, 3).text().endswith(("kB", "MB")) and usage.bytes > 0
    assert "free on the disk" in page.summary.text()
    snap_row = next(r for r in range(2) if page.files.item(r, 2).text() == "snapshot")
    assert page.files.item(snap_row, 0).data(Qt.ItemDataRole.DecorationRole) is not None  # its thumbnail
    clip_row = 1 - snap_row
    page.files.selectRow(clip_row)
    qtbot.waitUntil(lambda: page.player.slider.isEnabled(), timeout=10_000)
    _shot(window, "evidence-page.png")
    page.files.selectRow(snap_row)
    page.delete_selected()
    qtbot.waitUntil(lambda: [e.kind for e in station.list_evidence(cid)] == ["clip"], timeout=10_000)


def test_the_kiosk_pop_up_shows_the_alerts_snapshot(qtbot, station, ui_settings, tmp_path) -> None:
    from tests.ui.test_kiosk import FakeClock, open_kiosk

    w = open_kiosk(qtbot, station, ui_settings, FakeClock(), {"kiosk.popup_s": 60, "kiosk.popup_severity": "critical"},
                   tmp_path=tmp_path)
    try:
        w.resize(1280, 720)
        cid = camera_id(station, "Lobby")
        station.call("start_camera", CameraRef(cid))
        with qtbot.waitSignal(w.popupShown, timeout=START_TIMEOUT_MS):
            event_id = _fire(station, qtbot, cid)
        popup = w.popup
        assert popup is not None and popup.camera_id == cid
        qtbot.waitUntil(lambda: popup.snapshot.isVisible() and popup.snapshot.pixmap() is not None
                        and not popup.snapshot.pixmap().isNull(), timeout=15_000)
        assert station.event_snapshot_path(event_id) is not None
        _shot(w, "kiosk-popup-snapshot.png")
    finally:
        w.shutdown()


def test_removing_a_camera_in_the_window_deletes_its_evidence_only_when_asked(qtbot, window, station) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    cid = camera_id(station, "Lobby")
    window.start_camera(cid)
    qtbot.waitUntil(lambda: (s := station.parts().supervisor.status(cid)).state.value == "running" and s.decoded > 5,
                    timeout=START_TIMEOUT_MS)
    path = station.evidence_path(station.save_snapshot(cid))
    seen = {}

    def answer() -> None:  # the dialog is modal: answer it from the event loop
        box = window.remove_prompt
        if box is None:
            QTimer.singleShot(20, answer)
            return
        seen["default"] = box.checkBox().isChecked()
        box.checkBox().setChecked(True)
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(0, answer)
    window.remove_cameras([cid], confirm=True)
    qtbot.waitUntil(lambda: station.camera(cid) is None, timeout=15_000)
    qtbot.waitUntil(lambda: not path.exists() and station.list_evidence(cid) == [], timeout=10_000)
    assert seen["default"] is False  # kept until retention unless the operator ticks the box
