"""The camera table model: minimal dataChanged, rows that come and go, masked secrets."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt

from app.domain import CameraState
from app.domain.operations import CameraStatus
from app.ui.common.models import STATE_ROLE, CameraTableModel


def _st(cid: int, name: str, state: CameraState = CameraState.STOPPED, **kw) -> CameraStatus:
    return CameraStatus(camera_id=cid, name=name, state=state, active=True, **kw)


def test_only_changed_cells_are_signalled(qtbot):
    m = CameraTableModel()
    srcs = {1: "test://moving", 2: "rtsp://admin:hunter2@10.0.0.5/stream"}
    m.update([_st(1, "A"), _st(2, "B")], srcs)
    assert m.rowCount() == 2
    assert m.index(1, m.COL_SOURCE).data() == "rtsp://admin:***@10.0.0.5/stream"

    changes: list[tuple[int, int, int]] = []
    m.dataChanged.connect(lambda tl, br, _roles=(): changes.append((tl.row(), tl.column(), br.column())))
    m.update([_st(1, "A"), _st(2, "B")], srcs)
    assert changes == []  # same snapshot: nothing to redraw

    m.update([_st(1, "A"), _st(2, "B", CameraState.RUNNING, fps=9.5, uptime=3.0, source="up", last_frame_age=0.1)], srcs)
    assert changes == [(1, m.COL_STATE, m.COL_UPTIME)]
    assert m.index(1, m.COL_FPS).data() == "9.5"
    assert m.index(1, m.COL_STATE).data(STATE_ROLE) == "running"
    assert m.index(1, m.COL_STATE).data(Qt.ItemDataRole.BackgroundRole).name() == "#66bb6a"


def test_rows_are_inserted_and_removed(qtbot):
    m = CameraTableModel()
    m.update([_st(1, "A"), _st(3, "C")], {})
    inserted: list[int] = []
    removed: list[int] = []
    m.rowsInserted.connect(lambda _p, first, _last: inserted.append(first))
    m.rowsRemoved.connect(lambda _p, first, _last: removed.append(first))
    m.update([_st(1, "A"), _st(2, "B"), _st(3, "C")], {})
    assert inserted == [1]
    m.update([_st(2, "B"), _st(3, "C")], {})
    assert removed == [0]
    assert [m.camera_id(r) for r in range(m.rowCount())] == [2, 3]


def test_the_exception_reporter_shows_a_dialog_and_the_app_goes_on(qtbot):
    from app.ui.app import ExceptionReporter

    reporter = ExceptionReporter()
    reporter.install()
    try:
        assert sys.excepthook == reporter._hook
        with qtbot.waitSignal(reporter.reported, timeout=2_000) as sig:
            try:
                raise RuntimeError("boom in a slot")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
        assert "boom in a slot" in sig.args[0]
        assert len(reporter.dialogs) == 1 and reporter.dialogs[0].isVisible()
        assert "RuntimeError" in reporter.dialogs[0].detailedText()
        reporter.dialogs[0].close()
    finally:
        reporter.uninstall()
    assert sys.excepthook != reporter._hook


def test_an_uncaught_exception_lands_in_the_station_log_and_the_dialog_names_it(qtbot, tmp_path):
    import logging

    from app.platform.logsetup import setup_logging, teardown_logging
    from app.ui.app import ExceptionReporter

    level = logging.getLogger().level
    log_file = setup_logging(tmp_path)
    reporter = ExceptionReporter()
    reporter.install()
    try:
        with qtbot.waitSignal(reporter.reported, timeout=2_000):
            try:
                raise ValueError("kaput in a timer")
            except ValueError:
                sys.excepthook(*sys.exc_info())
        assert str(log_file) in reporter.dialogs[0].text()
        reporter.dialogs[0].close()
    finally:
        reporter.uninstall()
        teardown_logging()
        logging.getLogger().setLevel(level)
    logged = log_file.read_text(encoding="utf-8")
    assert "ERROR" in logged and "uncaught exception" in logged
    assert "ValueError: kaput in a timer" in logged and "Traceback" in logged
