"""Per-camera dialogs: logs, snapshot, probe (with progress and cancel), process stats.

Every station call runs on the window's task runner; the dialogs stay responsive.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPixmap, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.domain import OperationError
from app.domain.operations import (
    CameraRef,
    CameraStats,
    LogEntry,
    LogsRequest,
    ProbeRequest,
    ProbeResult,
    StatsRequest,
)
from app.station.port import StationPort
from app.ui.common.formatting import fmt_bytes, fmt_clock
from app.ui.common.ops import operation
from app.ui.common.tasks import Task, TaskRunner


def _err(err: BaseException) -> str:
    if isinstance(err, OperationError):
        return f"{err} [{err.code}]"
    return f"{type(err).__name__}: {err}"


class LogsDialog(QDialog):
    """Recent worker log lines and supervisor events of one camera (refresh, follow, filter)."""

    loaded = Signal(int)  # number of lines shown

    def __init__(self, station: StationPort, tasks: TaskRunner, camera_id: int, name: str,
                 parent: QWidget | None = None, *, limit: int = 500):
        super().__init__(parent)
        self.station, self.tasks, self.camera_id, self.limit = station, tasks, camera_id, limit
        self.setWindowTitle(self.tr("Logs — {name}").format(name=name))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setMaximumBlockCount(limit + 10)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(mono)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText(self.tr("filter (text or level)"))
        self.filter.textChanged.connect(self._render)
        self.follow = QCheckBox(self.tr("follow (2 s)"))
        self.refresh_btn = QPushButton(self.tr("Refresh"))
        self.refresh_btn.clicked.connect(self.refresh)
        self.status = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.follow)
        top.addWidget(self.refresh_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.status)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay.addWidget(close)
        self.timer = QTimer(self)
        self.timer.setInterval(2000)
        self.timer.timeout.connect(self.refresh)
        self.follow.toggled.connect(lambda on: self.timer.start() if on else self.timer.stop())
        self.lines: tuple[LogEntry, ...] = ()
        self._loading = False
        self.resize(900, 520)
        self.refresh()

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        self.tasks.submit("logs", operation(self.station, "camera_logs"), LogsRequest(self.camera_id, self.limit),
                          on_ok=self._loaded, on_error=self._failed, quiet=True, owner=self)

    def _loaded(self, logs: Any) -> None:
        self._loading = False
        self.lines = tuple(logs.lines)
        self._render()
        self.status.setText(self.tr("{0} lines, read at {1}").format(len(self.lines), fmt_clock(time.time())))
        self.loaded.emit(len(self.lines))

    def _failed(self, err: BaseException) -> None:
        self._loading = False
        self.status.setText(self.tr("could not read the logs: {0}").format(_err(err)))

    def _render(self) -> None:
        needle = self.filter.text().strip().lower()
        bar = self.text.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        self.text.clear()
        cursor = self.text.textCursor()
        plain = QTextCharFormat()
        warn = QTextCharFormat()
        warn.setForeground(QColor("#ef6c00"))
        error = QTextCharFormat()
        error.setForeground(QColor("#c62828"))
        sup = QTextCharFormat()
        sup.setForeground(QColor("#1565c0"))
        first = True
        for ln in self.lines:
            row = f"{fmt_clock(ln.ts)} {ln.source:<10} {ln.level:<7} {ln.text}"
            if needle and needle not in row.lower():
                continue
            lvl = ln.level.lower()
            fmt = error if lvl in ("error", "critical") else warn if lvl.startswith("warn") else (
                sup if ln.source == "supervisor" else plain)
            if not first:
                cursor.insertBlock()
            cursor.insertText(row, fmt)
            first = False
        if at_end or not needle:
            self.text.moveCursor(QTextCursor.MoveOperation.End)

    def shown_text(self) -> str:
        return self.text.toPlainText()

    def done(self, r: int) -> None:
        self.timer.stop()
        super().done(r)


class SnapshotDialog(QDialog):
    """The camera's latest frame (PNG from ``camera_snapshot``), with Save…"""

    loaded = Signal()
    failed = Signal(str)

    def __init__(self, station: StationPort, tasks: TaskRunner, camera_id: int, name: str,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.station, self.tasks, self.camera_id, self.name = station, tasks, camera_id, name
        self.setWindowTitle(self.tr("Snapshot — {name}").format(name=name))
        self.image = QLabel(self.tr("taking a snapshot…"))
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(320, 180)
        scroll = QScrollArea()
        scroll.setWidget(self.image)
        scroll.setWidgetResizable(True)
        self.info = QLabel()
        self.save_btn = QPushButton(self.tr("Save…"))
        self.save_btn.setEnabled(False)
        self.save_btn.clicked.connect(self._save)
        again = QPushButton(self.tr("Take again"))
        again.clicked.connect(self.take)
        buttons = QHBoxLayout()
        buttons.addWidget(self.info, 1)
        buttons.addWidget(again)
        buttons.addWidget(self.save_btn)
        close = QPushButton(self.tr("Close"))
        close.clicked.connect(self.reject)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addLayout(buttons)
        self.snapshot: Any = None
        self.pixmap: QPixmap | None = None
        self.resize(700, 480)
        self.take()

    def take(self) -> None:
        self.tasks.submit("snapshot", operation(self.station, "camera_snapshot"), CameraRef(self.camera_id),
                          on_ok=self._loaded, on_error=self._failed, owner=self)

    def _loaded(self, snap: Any) -> None:
        pm = QPixmap()
        if not pm.loadFromData(snap.png, "PNG"):
            self._failed(ValueError("the snapshot is not a PNG image"))
            return
        self.snapshot, self.pixmap = snap, pm
        self.image.setPixmap(pm)
        self.info.setText(self.tr("{width}×{height}, taken {0} (frame {seq})").format(fmt_clock(snap.taken_at), width=snap.width, height=snap.height, seq=snap.seq))
        self.save_btn.setEnabled(True)
        self.loaded.emit()

    def _failed(self, err: BaseException) -> None:
        self.image.setText(self.tr("No snapshot: {0}").format(_err(err)))
        self.save_btn.setEnabled(False)
        self.failed.emit(_err(err))

    def save_to(self, path: Path | str) -> None:
        if self.snapshot is None:
            raise RuntimeError("no snapshot to save yet")
        Path(path).write_bytes(self.snapshot.png)

    def _save(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.snapshot.taken_at))
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save snapshot"), f"{self.name}-{stamp}.png", self.tr("PNG (*.png)"))
        if path:
            self.save_to(path)


class ProbeDialog(QDialog):
    """Opens the camera's source in a short-lived process; shows progress, can be cancelled.

    Cancel stops waiting at once and discards the answer; the probe process
    itself ends within its own timeout.
    """

    finished_probe = Signal(object)  # ProbeResult or an error text

    def __init__(self, station: StationPort, tasks: TaskRunner, camera_id: int, name: str,
                 parent: QWidget | None = None, *, timeout: float = 8.0):
        super().__init__(parent)
        self.station, self.tasks, self.camera_id, self.timeout = station, tasks, camera_id, timeout
        self.setWindowTitle(self.tr("Probe — {name}").format(name=name))
        self.label = QLabel(self.tr("Opening the source of {name} (up to {timeout:g} s)…").format(name=name, timeout=timeout))
        self.bar = QProgressBar()
        self.bar.setRange(0, int(timeout * 10))
        self.result_form = QFormLayout()
        self.result_box = QWidget()
        self.result_box.setLayout(self.result_form)
        self.result_box.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.cancel)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.result_box)
        lay.addWidget(self.buttons)
        self.probe_result: ProbeResult | None = None
        self.error: str | None = None
        self.cancelled = False
        self._t0 = time.monotonic()
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self.task: Task = tasks.submit("probe", operation(station, "probe_camera"), ProbeRequest(camera_id, timeout),
                                       on_ok=self._done, on_error=self._failed, owner=self)
        self.resize(460, 160)

    def _tick(self) -> None:
        self.bar.setValue(min(self.bar.maximum(), int((time.monotonic() - self._t0) * 10)))

    def cancel(self) -> None:
        if self.probe_result is None and self.error is None:
            self.cancelled = True
            self.task.cancel()
        self.timer.stop()
        self.reject()

    def _finish(self) -> None:
        self.timer.stop()
        self.bar.setValue(self.bar.maximum())
        self.buttons.clear()
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)

    def _done(self, res: ProbeResult) -> None:
        if self.cancelled:
            return
        self.probe_result = res
        self._finish()
        if res.ok:
            self.label.setText(self.tr("✔ The source answered in {elapsed:.1f} s.").format(elapsed=res.elapsed))
            rows = [(self.tr("Codec"), res.codec or "?"), (self.tr("Size"), f"{res.width}×{res.height}"),
                    (self.tr("FPS"), f"{res.fps:.2f}" if res.fps else "?"),
                    (self.tr("Pixel format"), res.pix_fmt or "?")]
        else:
            self.label.setText(self.tr("✘ The source did not open: {error}").format(error=res.error))
            rows = [(self.tr("Error"), res.error or self.tr("unknown")),
                    (self.tr("Elapsed"), self.tr("{elapsed:.1f} s").format(elapsed=res.elapsed))]
        for k, v in rows:
            self.result_form.addRow(k, QLabel(v))
        self.result_box.show()
        self.finished_probe.emit(res)

    def _failed(self, err: BaseException) -> None:
        if self.cancelled:
            return
        self.error = _err(err)
        self._finish()
        self.label.setText(self.tr("✘ Probe failed: {error}").format(error=self.error))
        self.finished_probe.emit(self.error)


class StatsDialog(QDialog):
    """Process CPU/RSS/threads and frame metrics over a window (``camera_stats``)."""

    loaded = Signal(object)

    def __init__(self, station: StationPort, tasks: TaskRunner, camera_id: int, name: str,
                 parent: QWidget | None = None, *, window_s: float = 60.0):
        super().__init__(parent)
        self.station, self.tasks, self.camera_id, self.window_s = station, tasks, camera_id, window_s
        self.setWindowTitle(self.tr("Stats — {name}").format(name=name))
        self.form = QFormLayout()
        self.labels: dict[str, QLabel] = {}
        titles = {"running": self.tr("Running"), "pid": self.tr("PID"), "cpu": self.tr("CPU"),
                  "rss": self.tr("Memory (RSS)"), "threads": self.tr("Threads"), "children": self.tr("Children"),
                  "fps": self.tr("Frame rate"), "frames": self.tr("Frames"), "motion": self.tr("Motion"),
                  "samples": self.tr("Samples")}
        for key, title in titles.items():
            self.labels[key] = QLabel(self.tr("…"))
            self.form.addRow(title, self.labels[key])
        refresh = QPushButton(self.tr("Refresh"))
        refresh.clicked.connect(self.refresh)
        lay = QVBoxLayout(self)
        lay.addLayout(self.form)
        lay.addWidget(refresh)
        self.stats: CameraStats | None = None
        self.refresh()

    def refresh(self) -> None:
        self.tasks.submit("stats", operation(self.station, "camera_stats"), StatsRequest(self.camera_id, self.window_s),
                          on_ok=self._loaded, on_error=lambda e: self.labels["running"].setText(_err(e)), owner=self)

    def _loaded(self, st: CameraStats) -> None:
        self.stats = st
        L = self.labels
        L["running"].setText(self.tr("yes") if st.running else self.tr("no"))
        L["pid"].setText(str(st.pid or "–"))
        L["cpu"].setText(f"{st.cpu_percent:.1f} %" if st.cpu_percent is not None else "–")
        L["rss"].setText(fmt_bytes(st.rss_bytes) or "–")
        L["threads"].setText(str(st.threads if st.threads is not None else "–"))
        L["children"].setText(str(st.children if st.children is not None else "–"))
        fps = "–" if st.fps_avg is None else f"{st.fps_avg:.1f} avg, {st.fps_min or 0:.1f} min"
        L["fps"].setText(self.tr("{fps} over {window_s:g} s").format(fps=fps, window_s=st.window_s))
        L["frames"].setText(self.tr("{decoded} decoded, {dropped} dropped").format(decoded=st.decoded, dropped=st.dropped))
        L["motion"].setText("–" if st.motion_avg is None else self.tr("{motion_avg:.3f} avg").format(motion_avg=st.motion_avg))
        L["samples"].setText(str(st.samples))
        self.loaded.emit(st)
