"""Alert evidence in the window: a clip player, the detail pane of an alert and the evidence page.

The installed PySide6 wheel has no Qt Multimedia, so :class:`ClipPlayer` decodes clips with
PyAV on a thread of its own (frames scaled for display there) and paints them on a timer at
the clip's frame rate; a scrubber seeks. Files are read off the GUI thread; images are
turned into ``QImage`` there too, only the ``QPixmap`` is made on the GUI thread.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.domain.evidence import EvidenceSettings, EvidenceUsage
from app.station.port import EvidenceDisk, StationPort
from app.ui.common.refresh import RefreshWhileVisible
from app.ui.common.tasks import TaskRunner

__all__ = ["THUMB_SIZE", "ClipPlayer", "EvidencePage", "EvidencePane", "ThumbnailColumn", "image_from_file", "thumbnail"]

THUMB_SIZE = QSize(96, 54)
PLAYER_MAX_WIDTH = 960


def _when(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def image_from_file(path: Path | str) -> QImage:
    """A QImage of a snapshot file (any thread)."""
    img = QImage(str(path))
    if img.isNull():
        raise ValueError(f"{path} is not an image Qt can read")
    return img


def thumbnail(path: Path | str, size: QSize = THUMB_SIZE) -> QImage:
    return image_from_file(path).scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)


# ---------------------------------------------------------------------------- player


class _Decoder(threading.Thread):
    """Decodes a clip into display-sized RGB QImages; ``seek(t)`` restarts from the keyframe before t."""

    def __init__(self, path: str, max_width: int) -> None:
        super().__init__(name="clip-decoder", daemon=True)
        self.path = path
        self.max_width = max_width
        self.frames: queue.Queue[tuple[int, float, QImage] | None] = queue.Queue(maxsize=6)
        self._seek: float | None = None
        self._generation = 0
        self._halt = threading.Event()
        self._cv = threading.Condition()
        self.duration = 0.0
        self.fps = 15.0
        self.size = (0, 0)
        self.error: str | None = None
        self.ready = threading.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def seek(self, t: float) -> int:
        with self._cv:
            self._seek = max(0.0, t)
            self._generation += 1
            self._cv.notify_all()
        with contextlib.suppress(queue.Empty):
            while True:
                self.frames.get_nowait()
        return self._generation

    def stop(self) -> None:
        self._halt.set()
        with self._cv:
            self._cv.notify_all()
        with contextlib.suppress(queue.Empty):
            while True:
                self.frames.get_nowait()

    def run(self) -> None:
        import av

        try:
            container = av.open(self.path)
        except (av.error.FFmpegError, OSError) as e:
            self.error = f"cannot open the clip: {e}"
            self.ready.set()
            return
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 15.0
            self.duration = float(container.duration / av.time_base) if container.duration else 0.0
            ctx = stream.codec_context
            self.size = (ctx.width, ctx.height)
            self.ready.set()
            target: float | None = None
            while not self._halt.is_set():
                with self._cv:
                    if self._seek is not None:
                        target, self._seek = self._seek, None
                        gen = self._generation
                    else:
                        gen = self._generation
                if target is not None and stream.time_base is not None:
                    container.seek(int(target / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if self._halt.is_set() or self._seek is not None:
                        break
                    t = float(frame.time or 0.0)
                    if target is not None and t + 0.5 / self.fps < target:
                        continue
                    target = None
                    w = min(frame.width, self.max_width)
                    h = max(2, round(frame.height * w / frame.width))
                    rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
                    img = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
                    while not self._halt.is_set() and self._seek is None:
                        try:
                            self.frames.put((gen, t, img), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                else:
                    # End of the clip: wait for a seek (replay) or the end.
                    with self._cv:
                        while not self._halt.is_set() and self._seek is None and self._generation == gen:
                            self._cv.wait(0.5)
                    if self._seek is None and not self._halt.is_set():
                        break
        except (av.error.FFmpegError, OSError) as e:
            self.error = f"cannot decode the clip: {e}"
        finally:
            container.close()


class ClipPlayer(QWidget):
    """Plays an MP4 clip (PyAV-decoded) with play/pause, a scrubber and the time."""

    positionChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None, *, max_width: int = PLAYER_MAX_WIDTH):
        super().__init__(parent)
        self.max_width = max_width
        self.path: Path | None = None
        self._decoder: _Decoder | None = None
        self.position = 0.0
        self.playing = False
        self.video = QLabel(self.tr("no clip"))
        self.video.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.video.setMinimumSize(320, 180)
        self.video.setStyleSheet("background: #111; color: #bbb;")
        self.play_btn = QPushButton(self.tr("Play"))
        self.play_btn.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.sliderReleased.connect(lambda: self.seek(self.slider.value() / 1000.0))
        self.time_label = QLabel("0.0 / 0.0 s")
        controls = QHBoxLayout()
        controls.addWidget(self.play_btn)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.video, 1)
        lay.addLayout(controls)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._next_frame)
        self.play_btn.setEnabled(False)
        self._configured = True
        self._want_frame = False

    @property
    def duration(self) -> float:
        return self._decoder.duration if self._decoder is not None else 0.0

    def load(self, path: Path | str | None) -> None:
        """Show the clip's first frame (paused) as soon as it is decoded; None clears the player.

        Nothing here waits: the decoder thread opens the clip, a timer picks its frames up."""
        self.stop()
        self.path = Path(path) if path else None
        self.position = 0.0
        self.slider.setEnabled(False)
        self.play_btn.setEnabled(False)
        self.time_label.setText("0.0 / 0.0 s")
        self.video.clear()
        if self.path is None:
            self.video.setText(self.tr("no clip"))
            return
        self.video.setText(self.tr("opening the clip…"))
        dec = _Decoder(str(self.path), self.max_width)
        self._decoder = dec
        self._configured = False
        self._want_frame = True
        dec.start()
        self.timer.setInterval(30)
        self.timer.start()

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        if self._decoder is None:
            return
        if self.duration and self.position >= self.duration - 1.0 / max(1.0, self._decoder.fps):
            self.seek(0.0)
        self.playing = True
        self.play_btn.setText(self.tr("Pause"))
        self.timer.start()

    def pause(self) -> None:
        self.playing = False
        self.play_btn.setText(self.tr("Play"))

    def seek(self, t: float) -> None:
        if self._decoder is None:
            return
        self._decoder.seek(t)
        self._want_frame = True  # the position moves when the frame at t is shown
        self.timer.start()

    def stop(self) -> None:
        self.pause()
        self.timer.stop()
        if self._decoder is not None:
            self._decoder.stop()
            self._decoder.join(2.0)
            self._decoder = None

    def _next_frame(self) -> None:
        dec = self._decoder
        if dec is None:
            self.timer.stop()
            return
        if not getattr(self, "_configured", True):
            if not dec.ready.is_set():
                return
            self._configured = True
            if dec.error:
                self.video.setText(dec.error)
                self.timer.stop()
                return
            self.slider.setRange(0, int(dec.duration * 1000))
            self.slider.setEnabled(True)
            self.play_btn.setEnabled(True)
            self.timer.setInterval(max(10, int(1000 / max(1.0, dec.fps))))
        if not (self.playing or self._want_frame):
            self.timer.stop()
            return
        if self._show_next():
            self._want_frame = False
        elif self.playing and self.duration and self.position >= self.duration - 2.0 / max(1.0, dec.fps):
            self.pause()  # the end

    def _show_next(self) -> bool:
        dec = self._decoder
        if dec is None:
            return False
        try:
            item = dec.frames.get_nowait()
        except queue.Empty:
            return False
        if item is None:
            return False
        gen, t, img = item
        if gen != dec.generation:
            return False  # decoded before the latest seek
        self.position = t
        pm = QPixmap.fromImage(img)
        self.video.setPixmap(pm.scaled(self.video.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))
        if not self.slider.isSliderDown():
            self.slider.setValue(int(t * 1000))
        self.time_label.setText(f"{t:.1f} / {self.duration:.1f} s")
        self.positionChanged.emit(t)
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.stop()
        super().closeEvent(event)


# ---------------------------------------------------------------------------- detail pane


class EvidencePane(QWidget):
    """What an alert event has: the snapshot when it fired (and resolved), its clip, the notes;
    Save clip… / Export event… / Save a new clip of the camera."""

    loaded = Signal(int)  # event id

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.event_id: int | None = None
        self.camera_id: int | None = None
        self.evidence: list[Any] = []
        self.title = QLabel(self.tr("Select an alert to see its evidence"))
        self.title.setWordWrap(True)
        self.fired = QLabel()
        self.resolved = QLabel()
        for lbl in (self.fired, self.resolved):
            lbl.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lbl.setMinimumSize(200, 113)
            lbl.setStyleSheet("background: #222; color: #bbb;")
        self.fired_caption = QLabel(self.tr("When it fired"))
        self.resolved_caption = QLabel(self.tr("When it resolved"))
        snaps = QHBoxLayout()
        for cap, lbl in ((self.fired_caption, self.fired), (self.resolved_caption, self.resolved)):
            col = QVBoxLayout()
            col.addWidget(cap)
            col.addWidget(lbl, 1)
            snaps.addLayout(col, 1)
        self.player = ClipPlayer(self)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.save_btn = QPushButton(self.tr("Save clip…"))
        self.save_btn.setToolTip(self.tr("Save a copy of this alert's clip"))
        self.save_btn.clicked.connect(self.save_copy)
        self.export_btn = QPushButton(self.tr("Export event…"))
        self.export_btn.setToolTip(self.tr("A ZIP with the event as JSON, its snapshots and its clip"))
        self.export_btn.clicked.connect(self.export)
        self.new_clip_btn = QPushButton(self.tr("New clip now"))
        self.new_clip_btn.setToolTip(self.tr("Record a clip of this camera now (pre-roll + post-roll)"))
        self.new_clip_btn.clicked.connect(self.record_clip)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_btn)
        buttons.addWidget(self.export_btn)
        buttons.addWidget(self.new_clip_btn)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(snaps, 2)
        lay.addWidget(self.player, 3)
        lay.addWidget(self.notes)
        lay.addLayout(buttons)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_clip = any(e.kind == "clip" for e in self.evidence)
        self.save_btn.setEnabled(has_clip)
        self.export_btn.setEnabled(self.event_id is not None)
        self.new_clip_btn.setEnabled(self.camera_id is not None)

    def show_event(self, event_id: int | None, camera_id: int | None = None, title: str = "") -> None:
        """Load the event's evidence (off the GUI thread)."""
        self.event_id, self.camera_id = event_id, camera_id
        self.title.setText(title or self.tr("Select an alert to see its evidence"))
        self.evidence = []
        for lbl in (self.fired, self.resolved):
            lbl.clear()
            lbl.setText(self.tr("no snapshot"))
        self.player.load(None)
        self.notes.setText("")
        self._update_buttons()
        if event_id is None:
            return
        station = self.station

        def read() -> tuple[int, list[Any], dict[str, QImage], str | None, list[str]]:
            items = station.evidence_for_event(event_id)
            images: dict[str, QImage] = {}
            for e in items:
                if e.kind == "snapshot":
                    path = station.evidence_path(e)
                    if path.exists():
                        images[e.moment] = image_from_file(path)
            clip = station.event_clip_path(event_id)
            return event_id, items, images, str(clip) if clip else None, station.evidence_failures(event_id)

        self.tasks.submit("evidence", read, on_ok=self._loaded, on_error=self._failed, quiet=True, owner=self)

    def _loaded(self, data: tuple[int, list[Any], dict[str, QImage], str | None, list[str]]) -> None:
        event_id, items, images, clip, failures = data
        if event_id != self.event_id:
            return  # another event was selected meanwhile
        self.evidence = items
        for moment, lbl in (("fired", self.fired), ("resolved", self.resolved)):
            img = images.get(moment)
            if img is not None:
                lbl.setPixmap(QPixmap.fromImage(img).scaled(
                    lbl.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
                snap = next(e for e in items if e.kind == "snapshot" and e.moment == moment)
                lbl.setToolTip(self.tr("{w}×{h}, taken {when}").format(w=snap.width, h=snap.height,
                                                                         when=_when(snap.created_at)))
        self.player.load(clip)
        lines = []
        for e in items:
            if e.kind == "clip":
                text = self.tr("Clip: {d:.1f} s with {p:.1f} s before the alert, {size}").format(
                    d=e.duration or 0.0, p=e.preroll or 0.0, size=_size(e.bytes))
                if e.note:
                    text += f" — {e.note}"
                lines.append(text)
        lines += [self.tr("Missing: {0}").format(f) for f in failures]
        self.notes.setText("\n".join(lines))
        self._update_buttons()
        self.loaded.emit(event_id)

    def _failed(self, err: BaseException) -> None:
        self.notes.setText(self.tr("could not read the evidence: {0}").format(err))

    def save_copy(self, path: str | None = None) -> Path | None:
        clip = self.player.path
        if clip is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, self.tr("Save clip"), clip.name, self.tr("MP4 video (*.mp4)"))
            if not path:
                return None
        shutil.copyfile(clip, path)
        return Path(path)

    def export(self, path: str | None = None) -> None:
        if self.event_id is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, self.tr("Export event"), f"event-{self.event_id}.zip",
                                                  self.tr("ZIP archive (*.zip)"))
            if not path:
                return
        self.tasks.submit("export event", self.station.export_event, self.event_id, path,
                          on_ok=lambda p: self.notes.setText(self.tr("Exported to {0}").format(p)),
                          on_error=self._failed, owner=self)

    def record_clip(self) -> None:
        if self.camera_id is None:
            return
        self.new_clip_btn.setEnabled(False)
        self.notes.setText(self.tr("Recording a clip…"))

        def ok(ev: Any) -> None:
            self.notes.setText(self.tr("Saved a {d:.1f} s clip ({size})").format(d=ev.duration or 0.0,
                                                                                 size=_size(ev.bytes)))
            self._update_buttons()

        def failed(err: BaseException) -> None:
            self.notes.setText(self.tr("No clip: {0}").format(err))
            self._update_buttons()

        self.tasks.submit("save clip", self.station.save_clip, self.camera_id, on_ok=ok, on_error=failed,
                          owner=self)


# ---------------------------------------------------------------------------- evidence page


class EvidencePage(RefreshWhileVisible, QWidget):
    """Evidence per camera with sizes, and the selected camera's files (newest first)."""

    refreshed = Signal()

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.usage: list[Any] = []
        self.items: list[Any] = []
        self._loading = False
        self.summary = QLabel(self.tr("Evidence: –"))
        self.summary.setWordWrap(True)
        self.cameras = QTableWidget(0, 6)
        self.cameras.setHorizontalHeaderLabels([self.tr("Camera"), self.tr("Snapshots"), self.tr("Clips"),
                                                self.tr("Size"), self.tr("Oldest"), self.tr("Newest")])
        self.files = QTableWidget(0, 7)
        self.files.setHorizontalHeaderLabels(["", self.tr("Taken"), self.tr("Kind"), self.tr("Moment"),
                                              self.tr("Alert event"), self.tr("Size"), self.tr("Note")])
        self.files.setIconSize(THUMB_SIZE)
        for t in (self.cameras, self.files):
            t.verticalHeader().setVisible(False)
            t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            t.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
            t.horizontalHeader().setStretchLastSection(True)
            t.setAlternatingRowColors(True)
        self.cameras.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.cameras.itemSelectionChanged.connect(self._camera_selected)
        self.files.itemSelectionChanged.connect(self._file_selected)
        self.player = ClipPlayer(self)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.hide()
        self.delete_btn = QPushButton(self.tr("Delete selected"))
        self.delete_btn.clicked.connect(self.delete_selected)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.image, 1)
        rl.addWidget(self.player, 1)
        rl.addWidget(self.delete_btn)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.cameras)
        left.addWidget(self.files)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)
        self._thumbs: dict[int, QPixmap] = {}
        self._refresh_while_visible(5000, self.refresh)

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        station = self.station

        def read() -> tuple[list[EvidenceUsage], EvidenceSettings, EvidenceDisk]:
            settings = station.evidence_settings()
            return station.evidence_usage(), settings, station.evidence_disk()

        def done(data: tuple[list[EvidenceUsage], EvidenceSettings, EvidenceDisk]) -> None:
            self._loading = False
            self.show_usage(*data)

        def failed(err: BaseException) -> None:
            self._loading = False
            self.summary.setText(self.tr("could not read the evidence: {0}").format(err))

        self.tasks.submit("evidence usage", read, on_ok=done, on_error=failed, quiet=True, owner=self)

    def show_usage(self, usage: list[EvidenceUsage], settings: EvidenceSettings, disk: EvidenceDisk) -> None:
        free, total = disk.free_bytes, disk.total_bytes
        keep = self._selected_camera()
        self.usage = usage
        self.cameras.setRowCount(len(usage))
        for r, u in enumerate(usage):
            name = u.camera_name or (self.tr("camera {0}").format(u.camera_id) if u.camera_id else self.tr("station"))
            if u.camera_id is not None and self.station.camera(u.camera_id) is None:
                name += self.tr(" (removed)")
            for c, text in enumerate([name, str(u.snapshots), str(u.clips), _size(u.bytes), _when(u.oldest),
                                      _when(u.newest)]):
                self.cameras.setItem(r, c, QTableWidgetItem(text))
        self.cameras.resizeColumnsToContents()
        blocked = free <= settings.min_free_mb * 1024 * 1024
        self.summary.setText(self.tr(
            "{total} of at most {limit:g} MB in {root}; kept {days:g} days; {free} free on the disk "
            "(nothing is written under {floor:g} MB){blocked}").format(
            total=_size(total), limit=settings.max_total_mb, root=disk.root,
            days=settings.max_age_days, free=_size(free), floor=settings.min_free_mb,
            blocked=self.tr(" — WRITING STOPPED: the disk is at its floor") if blocked else ""))
        if usage:
            row = next((i for i, u in enumerate(usage) if u.camera_id == keep), 0)
            self.cameras.selectRow(row)
        self.refreshed.emit()

    def _selected_camera(self) -> int | None:
        rows = {i.row() for i in self.cameras.selectedIndexes()}
        return self.usage[min(rows)].camera_id if rows and min(rows) < len(self.usage) else None

    def _camera_selected(self) -> None:
        rows = {i.row() for i in self.cameras.selectedIndexes()}
        if not rows or min(rows) >= len(self.usage):
            return
        cid = self.usage[min(rows)].camera_id
        station = self.station

        def read() -> tuple[list[Any], dict[int, QImage]]:
            items = station.list_evidence(cid, 500)
            thumbs: dict[int, QImage] = {}
            for e in items[:100]:
                if e.kind == "snapshot" and e.id is not None and e.id not in self._thumbs:
                    with contextlib.suppress(ValueError):
                        thumbs[e.id] = thumbnail(station.evidence_path(e))
            return items, thumbs

        self.tasks.submit("evidence files", read, on_ok=self.show_files, quiet=True, owner=self)

    def show_files(self, data: tuple[list[Any], dict[int, QImage]]) -> None:
        items, thumbs = data
        for k, img in thumbs.items():
            self._thumbs[k] = QPixmap.fromImage(img)
        self.items = items
        self.files.setRowCount(len(items))
        for r, e in enumerate(items):
            icon_item = QTableWidgetItem()
            pm = self._thumbs.get(e.id) if e.id is not None else None
            if pm is not None:
                icon_item.setData(Qt.ItemDataRole.DecorationRole, pm)
            elif e.kind == "clip":
                icon_item.setText("▶")
            self.files.setItem(r, 0, icon_item)
            for c, text in enumerate([_when(e.created_at), e.kind, e.moment,
                                      str(e.event_id) if e.event_id is not None else "", _size(e.bytes), e.note],
                                     start=1):
                self.files.setItem(r, c, QTableWidgetItem(text))
            self.files.setRowHeight(r, THUMB_SIZE.height() + 4)
        self.files.resizeColumnsToContents()

    def _selected_files(self) -> list[Any]:
        rows = sorted({i.row() for i in self.files.selectedIndexes()})
        return [self.items[r] for r in rows if r < len(self.items)]

    def _file_selected(self) -> None:
        sel = self._selected_files()
        if not sel:
            return
        e = sel[0]
        path = self.station.evidence_path(e)
        if e.kind == "clip":
            self.image.hide()
            self.player.show()
            self.player.load(path)
        else:
            self.player.load(None)
            self.player.hide()
            self.image.show()

            def read() -> QImage:
                return image_from_file(path)

            self.tasks.submit("snapshot", read, on_ok=lambda img: self.image.setPixmap(QPixmap.fromImage(img).scaled(
                self.image.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)),
                quiet=True, owner=self)

    def delete_selected(self) -> None:
        ids = [e.id for e in self._selected_files() if e.id is not None]
        if not ids:
            return
        self.player.load(None)
        self.tasks.submit("delete evidence", self.station.delete_evidence, ids,
                          on_ok=lambda _n: self.refresh(), owner=self)

    def shutdown(self) -> None:
        self.timer.stop()
        self.player.stop()


# ---------------------------------------------------------------------------- thumbnail column


class ThumbnailColumn:
    """Column 0 of an alerts table: the event's snapshot when it fired, loaded off the GUI thread.

    Events without a snapshot yet are asked for again at the next ``apply`` (the snapshot lands a
    moment after the alert fires)."""

    def __init__(self, station: StationPort, tasks: TaskRunner, owner: QWidget):
        self.station = station
        self.tasks = tasks
        self.owner = owner
        self.cache: dict[int, QPixmap] = {}
        self._busy = False
        self._tables: list[tuple[QTableWidget, list[int | None]]] = []

    @staticmethod
    def prepare(table: QTableWidget) -> None:
        table.setIconSize(THUMB_SIZE)
        table.verticalHeader().setDefaultSectionSize(THUMB_SIZE.height() + 4)

    def apply(self, table: QTableWidget, event_ids: list[int | None]) -> None:
        self._tables = [(t, ids) for t, ids in self._tables if t is not table] + [(table, event_ids)]
        self._paint(table, event_ids)
        missing = [i for i in event_ids if i is not None and i not in self.cache]
        if missing and not self._busy:
            self._busy = True
            station = self.station

            def read() -> dict[int, QImage]:
                found = station.evidence_for_events(missing[:200])
                out = {}
                for eid, items in found.items():
                    snap = next((e for e in items if e.kind == "snapshot" and e.moment == "fired"), None)
                    if snap is not None:
                        with contextlib.suppress(ValueError):
                            out[eid] = thumbnail(station.evidence_path(snap))
                return out

            def done(images: dict[int, QImage]) -> None:
                self._busy = False
                for eid, img in images.items():
                    self.cache[eid] = QPixmap.fromImage(img)
                for t, ids in self._tables:
                    self._paint(t, ids)

            def failed(_err: BaseException) -> None:
                self._busy = False

            self.tasks.submit("thumbnails", read, on_ok=done, on_error=failed, quiet=True, owner=self.owner)

    def _paint(self, table: QTableWidget, event_ids: list[int | None]) -> None:
        for r, eid in enumerate(event_ids):
            item = table.item(r, 0)
            if item is None:
                item = QTableWidgetItem()
                table.setItem(r, 0, item)
            pm = self.cache.get(eid) if eid is not None else None
            if pm is not None:
                if item.data(Qt.ItemDataRole.DecorationRole) is None or item.data(Qt.ItemDataRole.UserRole) != eid:
                    item.setData(Qt.ItemDataRole.DecorationRole, pm)
                    item.setData(Qt.ItemDataRole.UserRole, eid)
            elif item.data(Qt.ItemDataRole.DecorationRole) is not None:
                item.setData(Qt.ItemDataRole.DecorationRole, None)
                item.setData(Qt.ItemDataRole.UserRole, None)
