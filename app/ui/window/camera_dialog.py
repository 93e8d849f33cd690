"""Add or edit a camera: a form that validates as you type (``Camera.problems()``).

Saving goes through the station (``add_camera``/``update_camera``) on a task thread; the station's answer
(a name conflict, say) shows inline, and the dialog closes only on success.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.domain import (
    Camera,
    Conflict,
    MotionSettings,
    has_secret,
    mask_secrets,
)
from app.domain.errors import FieldError
from app.station.port import StationPort
from app.ui.common.form_dialog import FormDialog, InlineProblems
from app.ui.common.tasks import TaskRunner


class CameraForm(InlineProblems, QWidget):
    """The camera's fields, each with an inline message line under it."""

    changed = Signal()

    FIELDS = ("name", "source", "max_fps", "stall_timeout", "motion.threshold", "motion.warmup_frames",
              "location", "tags")

    def __init__(self, camera: Camera | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._original = camera
        self.name = QLineEdit()
        self.name.setPlaceholderText(self.tr("e.g. Lobby"))
        self.source = QLineEdit()
        self.source.setPlaceholderText(self.tr("test://moving, rtsp://user:pass@host/stream, /path/clip.mp4, /dev/video0"))
        self.show_secret = QCheckBox(self.tr("show password"))
        self.active = QCheckBox(self.tr("active (starts with the station)"))
        self.loop = QCheckBox(self.tr("loop a file source"))
        self.max_fps = QDoubleSpinBox()
        self.max_fps.setRange(0, 240)
        self.max_fps.setDecimals(1)
        self.max_fps.setSpecialValueText(self.tr("source rate"))
        self.stall_timeout = QDoubleSpinBox()
        self.stall_timeout.setRange(0, 3600)
        self.stall_timeout.setSuffix(self.tr(" s"))
        self.motion_enabled = QCheckBox(self.tr("detect motion"))
        self.motion_threshold = QDoubleSpinBox()
        self.motion_threshold.setRange(0, 1)
        self.motion_threshold.setDecimals(3)
        self.motion_threshold.setSingleStep(0.005)
        self.warmup = QSpinBox()
        self.warmup.setRange(0, 10000)
        self.location = QLineEdit()
        self.tags = QLineEdit()
        self.tags.setPlaceholderText(self.tr("comma separated, e.g. indoor, demo"))

        self.errors: dict[str, QLabel] = {}
        touch: list[tuple[QWidget, str]] = []
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        def row(label: str, widget: QWidget, key: str | None = None) -> None:
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(1)
            lay.addWidget(widget)
            if key is not None:
                err = QLabel()
                err.setProperty("class", "fieldError")
                err.setStyleSheet("color: #c62828;")
                err.setWordWrap(False)  # a wrapped label in a form row gets clipped
                err.hide()
                lay.addWidget(err)
                self.errors[key] = err
                touch.append((widget, key))
            form.addRow(label, box)

        row(self.tr("&Name"), self.name, "name")
        row(self.tr("&Source"), self.source, "source")
        form.addRow("", self.show_secret)
        form.addRow("", self.active)
        form.addRow("", self.loop)
        row(self.tr("Max &FPS"), self.max_fps, "max_fps")
        row(self.tr("S&tall timeout"), self.stall_timeout, "stall_timeout")
        form.addRow("", self.motion_enabled)
        row(self.tr("Motion t&hreshold"), self.motion_threshold, "motion.threshold")
        row(self.tr("Motion &warm-up frames"), self.warmup, "motion.warmup_frames")
        row(self.tr("&Location"), self.location, "location")
        row(self.tr("T&ags"), self.tags, "tags")
        self.general_error = QLabel()
        self.general_error.setStyleSheet("color: #c62828; font-weight: bold;")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        form.addRow(self.general_error)

        cam = camera or Camera(name="", source="test://moving")
        self._secret_source = cam.source if has_secret(cam.source) else None
        self.name.setText(cam.name)
        self.source.setText(mask_secrets(cam.source))
        self.show_secret.setVisible(self._secret_source is not None)
        self.active.setChecked(cam.active)
        self.loop.setChecked(cam.loop)
        self.max_fps.setValue(cam.max_fps or 0)
        self.stall_timeout.setValue(cam.stall_timeout)
        self.motion_enabled.setChecked(cam.motion.enabled)
        self.motion_threshold.setValue(cam.motion.threshold)
        self.warmup.setValue(cam.motion.warmup_frames)
        self.location.setText(cam.location)
        self.tags.setText(", ".join(cam.tags))

        for w in (self.name, self.source, self.location, self.tags):
            w.textChanged.connect(self._changed)
        for spin in (self.max_fps, self.stall_timeout, self.motion_threshold):
            spin.valueChanged.connect(self._changed)
        self.warmup.valueChanged.connect(self._changed)
        for c in (self.active, self.loop, self.motion_enabled):
            c.toggled.connect(self._changed)
        self.show_secret.toggled.connect(self._toggle_secret)
        self.problems: list[FieldError] = []
        for widget, key in touch:  # after the initial values: a message shows once its field is edited
            self.touch_on_edit(widget, key)
        self._changed()

    def _toggle_secret(self, show: bool) -> None:
        if self._secret_source is None:
            return
        current = self.source.text()
        if show and current == mask_secrets(self._secret_source):
            self.source.setText(self._secret_source)
        elif not show and current == self._secret_source:
            self.source.setText(mask_secrets(self._secret_source))

    def source_value(self) -> str:
        """The source to store: a masked password left as it was keeps the stored one."""
        text = self.source.text().strip()
        if self._secret_source is not None and text == mask_secrets(self._secret_source):
            return self._secret_source
        return text

    def camera(self) -> Camera:
        tags = tuple(t.strip() for t in self.tags.text().split(",") if t.strip())
        base = self._original or Camera(name="", source="")
        return base.with_changes(
            name=self.name.text().strip(), source=self.source_value(), active=self.active.isChecked(),
            loop=self.loop.isChecked(), max_fps=self.max_fps.value() or None,
            stall_timeout=self.stall_timeout.value(), location=self.location.text().strip(), tags=tags,
            motion=MotionSettings(enabled=self.motion_enabled.isChecked(),
                                  threshold=self.motion_threshold.value(),
                                  warmup_frames=self.warmup.value()),
        )

    def _changed(self) -> None:
        self.problems = self.camera().problems()
        self.show_problems(self.problems)
        self.changed.emit()

    def _problem_key(self, field: str) -> str:
        return "tags" if field.startswith("tags[") else field


def camera_template(defaults: dict[str, Any]) -> Camera:
    """A new camera's starting values from the station's camera defaults (``camera_defaults.*``)."""
    from app.ui.window import station_settings as ss

    fps = float(defaults.get(ss.K_DEF_MAX_FPS) or 0)
    return Camera(name="", source="test://moving", max_fps=fps or None,
                  stall_timeout=float(defaults.get(ss.K_DEF_STALL, 10.0)),
                  motion=MotionSettings(threshold=float(defaults.get(ss.K_DEF_MOTION, 0.02))))


class CameraDialog(FormDialog):
    """Add (``camera=None``) or edit a camera. Emits ``saved(Camera)`` after the station stored it."""

    def __init__(self, station: StationPort, tasks: TaskRunner, camera: Camera | None = None,
                 parent: QWidget | None = None, *, template: Camera | None = None):
        super().__init__(station, tasks, parent)
        self.original = camera
        self.setWindowTitle(self.tr("Edit camera — {name}").format(name=camera.name) if camera else self.tr("Add camera"))
        below = []
        if camera is not None:
            note = QLabel(self.tr("Saving a new source, frame-rate cap, loop, motion or stall setting "
                                  "restarts a running camera once, so the change applies at once."))
            note.setObjectName("applyNote")
            note.setWordWrap(True)
            note.setStyleSheet("color: #607d8b;")
            below.append(note)
        self._set_form(CameraForm(camera or template), *below)

    def save(self) -> None:
        if self.form.problems or self._saving:
            return
        cam = self.form.camera()
        if self.original is None:
            self._submit("save camera", self.station.add_camera, cam)
            return
        changes = {k: getattr(cam, k) for k in ("name", "source", "active", "loop", "max_fps",
                                                 "stall_timeout", "location", "tags", "motion")
                   if getattr(cam, k) != getattr(self.original, k)}
        if not changes:
            self.accept()
            return
        self._submit("save camera", self.station.update_camera, self.original.id, changes)

    def _problems_for(self, err: BaseException) -> tuple[list[FieldError], str]:
        if isinstance(err, Conflict):  # a name another camera has
            return [FieldError("name", f"{err} [{err.code}]")], ""
        return super()._problems_for(err)
