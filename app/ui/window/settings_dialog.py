"""The settings dialog: rollout, general, kiosk and camera defaults.

Rollout settings go through the station (validated and audited by its router), one
column per track (rules, cameras). A field that the environment overrides is shown
locked with the variable's name; a latched track is shown locked too (only an audited
Resume on the rollout page clears a latch). Raising a track's percent goes through its
stage gate: the save is refused with the gate's reasons unless an override reason is given.
The other settings are stored in the station's settings table. Saving runs off
the GUI thread; refusals show in the dialog.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.domain import OperationError
from app.rollout.settings import Thresholds
from app.station.port import StationPort
from app.ui.common.i18n import LANGUAGES
from app.ui.common.tasks import TaskRunner
from app.ui.common.texts import QT_TRANSLATE_NOOP
from app.ui.window import station_settings as ss

LOCK = "🔒"

_THRESHOLD_LABELS = {  # name -> (label, suffix); labels translated where the dialog shows them
    "window_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Health window"), " s"),
    "max_domain_error_rate": (QT_TRANSLATE_NOOP("SettingsDialog", "Max domain error rate"), ""),
    "min_success_rate": (QT_TRANSLATE_NOOP("SettingsDialog", "Min end-to-end success"), ""),
    "max_p95_ratio": (QT_TRANSLATE_NOOP("SettingsDialog", "Max P95 ratio (domain/legacy)"), "×"),
    "min_samples": (QT_TRANSLATE_NOOP("SettingsDialog", "Min calls per path"), ""),
    "gate_max_error_rate": (QT_TRANSLATE_NOOP("SettingsDialog", "Gate: max error rate"), ""),
    "gate_min_calls_per_op": (QT_TRANSLATE_NOOP("SettingsDialog", "Gate: min routed domain calls per operation"), ""),
    "gate_min_latency_calls": (QT_TRANSLATE_NOOP("SettingsDialog", "Gate: min calls per path for latency"), ""),
    "hold_10_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Hold at 10 %"), " s"),
    "hold_25_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Hold at 25 %"), " s"),
    "hold_50_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Hold at 50 %"), " s"),
    "hold_100_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Hold at 100 % (until complete)"), " s"),
    "failure_limit": (QT_TRANSLATE_NOOP("SettingsDialog", "Latency: failing windows in a row before an alert"), ""),
    "latency_floor_ms": (QT_TRANSLATE_NOOP("SettingsDialog", "Latency: P95 difference never a regression up to"),
                         " ms"),
    "min_failures": (QT_TRANSLATE_NOOP("SettingsDialog", "Errors: failed calls before a bound can fire"), ""),
    "inconclusive_warn_s": (QT_TRANSLATE_NOOP("SettingsDialog", "Warn when inconclusive for longer than"), " s"),
}

TRACK_NAMES = ("rules", "cameras")


def _redact(url: str) -> str:
    from app.store.db import redact_url  # sqlalchemy's URL parser, only once the dialog shows a URL

    return redact_url(url)


class SettingsDialog(QDialog):
    """Edits the station's settings; ``applied`` is emitted after a successful save."""

    applied = Signal()
    failed = Signal(str)

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.store_settings = ss.StationSettings(station)
        self.setWindowTitle(self.tr("Settings"))
        self.tabs = QTabWidget()
        self.locked: dict[str, str] = {}  # field -> env var
        self._build_rollout()
        self._build_general()
        self._build_kiosk()
        self._build_defaults()
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828; font-weight: bold;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(lambda: self.apply(close=True))
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(lambda: self.apply())
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self._rollout_loaded: Any = None
        self._stored: dict[str, Any] = {}
        self._busy = False
        self.resize(560, 520)
        self.load()

    # ------------------------------------------------------------ building

    def _lock_note(self) -> QLabel:
        lbl = QLabel()
        lbl.setObjectName("lockedField")
        lbl.setStyleSheet("color: #6d4c41; font-style: italic;")
        lbl.hide()
        return lbl

    def _build_rollout(self) -> None:
        page = QWidget()
        form = QFormLayout(page)
        self.track_use: dict[str, QCheckBox] = {}
        self.track_percent: dict[str, QSpinBox] = {}
        self.track_lock: dict[str, QLabel] = {}
        self.track_latch: dict[str, QLabel] = {}
        self.override_reason: dict[str, QLineEdit] = {}
        cols = QHBoxLayout()
        for track in TRACK_NAMES:
            box = QGroupBox(self.tr("{track} track").format(track=track))
            box.setObjectName(f"rolloutTrack_{track}")
            f = QFormLayout(box)
            use = QCheckBox(self.tr("domain path on"))
            pct = QSpinBox()
            pct.setRange(0, 100)
            pct.setSuffix(" %")
            lock = self._lock_note()
            latch = self._lock_note()
            latch.setWordWrap(True)
            reason = QLineEdit()
            reason.setPlaceholderText(self.tr("only to raise the share past the gate (audited)"))
            f.addRow(self.tr("Domain path"), use)
            f.addRow(self.tr("Percent"), pct)
            f.addRow("", lock)
            f.addRow("", latch)
            f.addRow(self.tr("Override reason"), reason)
            self.track_use[track], self.track_percent[track] = use, pct
            self.track_lock[track], self.track_latch[track], self.override_reason[track] = lock, latch, reason
            cols.addWidget(box, 1)
        form.addRow(_wrap(cols))
        self.auto_rollback = QCheckBox(self.tr("roll back automatically when the domain path is unhealthy"))
        self.shadow_rate = QDoubleSpinBox()
        self.shadow_rate.setRange(0, 1)
        self.shadow_rate.setDecimals(3)
        self.shadow_rate.setSingleStep(0.01)
        self.canary_rate = QDoubleSpinBox()
        self.canary_rate.setRange(0, 600)
        self.canary_rate.setDecimals(1)
        self.canary_rate.setSuffix(self.tr(" calls/min"))
        self.canary_rate.setSpecialValueText(self.tr("off"))
        form.addRow("", self.auto_rollback)
        form.addRow(self.tr("Shadow compare rate"), self.shadow_rate)
        form.addRow(self.tr("Canary calls (read-only, routed)"), self.canary_rate)
        self.thresholds: dict[str, QDoubleSpinBox | QSpinBox] = {}
        limits: dict[str, tuple[float, float]] = dict(Thresholds._LIMITS)
        for name, (lo, hi) in limits.items():
            label, suffix = _THRESHOLD_LABELS.get(name, (name, ""))
            label = QCoreApplication.translate("SettingsDialog", label) if name in _THRESHOLD_LABELS else name
            w: QDoubleSpinBox | QSpinBox
            if isinstance(lo, int) and isinstance(hi, int):
                w = QSpinBox()
                w.setRange(int(lo), int(min(hi, 2**31 - 1)))
            else:
                w = QDoubleSpinBox()
                w.setDecimals(3 if hi <= 100 else 0)
                w.setRange(float(lo), float(hi))
            if suffix:
                w.setSuffix(suffix)
            self.thresholds[name] = w
            form.addRow(label, w)
        self.tabs.addTab(page, self.tr("Rollout"))

    def _build_general(self) -> None:
        page = QWidget()
        form = QFormLayout(page)
        paths = self.station.paths
        self.data_dir = QLineEdit(str(paths.data_dir))
        self.data_dir.setReadOnly(True)
        self.db_url = QLineEdit(_redact(str(paths.db_url)))
        self.db_url.setReadOnly(True)
        note = QLabel(self.tr("Set with --data-dir / EDGE_STATION_DATA_DIR and --db / EDGE_STATION_DB; a change takes effect when the station starts again."))
        note.setWordWrap(True)
        note.setStyleSheet("color: #607d8b;")
        self.api_enabled = QCheckBox(self.tr("serve the control API and Prometheus metrics"))
        self.api_host = QLineEdit()
        self.api_port = QSpinBox()
        self.api_port.setRange(1, 65535)
        form.addRow(self.tr("Data directory"), self.data_dir)
        form.addRow(self.tr("Database"), self.db_url)
        form.addRow("", note)
        form.addRow(self.tr("API"), self.api_enabled)
        form.addRow(self.tr("API / metrics host"), self.api_host)
        form.addRow(self.tr("API / metrics port"), self.api_port)
        self.api_state = QLabel()
        self.api_state.setObjectName("apiState")
        self.api_state.setWordWrap(True)
        form.addRow("", self.api_state)
        self.language = QComboBox()
        self.language.setObjectName("language")
        self.language.addItem(self.tr("System language"), ss.SYSTEM_LANGUAGE)
        for code, name in LANGUAGES.items():
            self.language.addItem(name, code)  # each language in its own script, as pickers do
        form.addRow(self.tr("Language"), self.language)
        form.addRow("", self._restart_note())
        self.tabs.addTab(page, self.tr("General"))

    def _restart_note(self) -> QLabel:
        note = QLabel(self.tr("Takes effect when the window starts again."))
        note.setStyleSheet("color: #607d8b;")
        return note

    def _build_kiosk(self) -> None:
        page = QWidget()
        form = QFormLayout(page)
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText(self.tr("leave empty to keep the current PIN"))
        self.pin2 = QLineEdit()
        self.pin2.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin_state = QLabel()
        self.clear_pin_btn = QPushButton(self.tr("Remove PIN"))
        self.clear_pin_btn.clicked.connect(self._clear_pin)
        row = QHBoxLayout()
        row.addWidget(self.pin_state, 1)
        row.addWidget(self.clear_pin_btn)
        self.kiosk_grid = QComboBox()
        self.kiosk_grid.addItems([self.tr("fit every camera"), "1×1", "2×2", "3×3", "4×4"])
        self.kiosk_cycle = QSpinBox()
        self.kiosk_cycle.setRange(0, 3600)
        self.kiosk_cycle.setSuffix(self.tr(" s"))
        self.kiosk_cycle.setSpecialValueText(self.tr("off"))
        self.kiosk_enabled = QCheckBox(self.tr("start the window as a kiosk (fullscreen wall, PIN to leave)"))
        self.kiosk_enabled.setObjectName("kioskEnabled")
        form.addRow(self.tr("Kiosk"), self.kiosk_enabled)
        form.addRow("", self._restart_note())
        form.addRow(self.tr("Operator PIN"), self.pin)
        form.addRow(self.tr("Repeat PIN"), self.pin2)
        form.addRow("", _wrap(row))
        form.addRow(self.tr("Wall layout"), self.kiosk_grid)
        form.addRow(self.tr("Cycle pages every"), self.kiosk_cycle)
        self.tabs.addTab(page, self.tr("Kiosk"))

    def _build_defaults(self) -> None:
        page = QWidget()
        form = QFormLayout(page)
        self.def_max_fps = QDoubleSpinBox()
        self.def_max_fps.setRange(0, 240)
        self.def_max_fps.setSpecialValueText(self.tr("source rate"))
        self.def_stall = QDoubleSpinBox()
        self.def_stall.setRange(0.5, 3600)
        self.def_stall.setSuffix(self.tr(" s"))
        self.def_motion = QDoubleSpinBox()
        self.def_motion.setRange(0.001, 0.999)
        self.def_motion.setDecimals(3)
        self.def_motion.setSingleStep(0.005)
        form.addRow(self.tr("Max FPS"), self.def_max_fps)
        form.addRow(self.tr("Stall timeout"), self.def_stall)
        form.addRow(self.tr("Motion threshold"), self.def_motion)
        form.addRow(QLabel(self.tr("Used for cameras added from the window.")))
        self.tabs.addTab(page, self.tr("Camera defaults"))

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        def read() -> tuple[Any, dict[str, Any], bool]:
            rollout = self.station.rollout_settings()
            return rollout, self.store_settings.load(), self._has_pin()

        self.tasks.submit("read settings", read, on_ok=self._loaded, on_error=self._show_error,
                          quiet=True, owner=self)

    def _has_pin(self) -> bool:
        from app.kiosk.pin import load_pin

        try:
            return load_pin(self.station.paths.data_dir) is not None
        except Exception:
            return False

    def _loaded(self, data: tuple[Any, dict[str, Any], bool]) -> None:
        rollout, stored, has_pin = data
        self._rollout_loaded, self._stored = rollout, stored
        if rollout is not None:
            self.auto_rollback.setChecked(rollout.auto_rollback)
            self.shadow_rate.setValue(rollout.shadow_rate)
            self.canary_rate.setValue(rollout.canary_rate)
            for name, w in self.thresholds.items():
                w.setValue(getattr(rollout.thresholds, name))
            self.locked = rollout.locked_fields()
            for track in TRACK_NAMES:
                t = rollout.track(track)
                use, pct = self.track_use[track], self.track_percent[track]
                use.setChecked(t.use_domain)  # the effective values: what the rollout page shows
                pct.setValue(t.percent)
                self.override_reason[track].clear()
                notes = []
                for fld, widget in (("use_domain", use), ("percent", pct)):
                    var = t.locked_fields().get(fld)
                    widget.setEnabled(var is None and not t.latched)
                    widget.setToolTip(self.tr("locked by {var}").format(var=var) if var else "")
                    if var is not None:
                        notes.append(self.tr("{LOCK} locked by the environment: {shown} (unset {var} to change it here)").format(
                            LOCK=LOCK, shown=t.overrides.get(fld, var), var=var))
                self.track_lock[track].setText("\n".join(notes))
                self.track_lock[track].setVisible(bool(notes))
                latch = self.track_latch[track]
                latch.setText(self.tr("{LOCK} rolled back ({reason}): clear the latch with Resume on the rollout page").format(
                    LOCK=LOCK, reason=t.latch_reason or "–") if t.latched else "")
                latch.setVisible(t.latched)
                self.override_reason[track].setEnabled(not t.latched)
        self.api_enabled.setChecked(bool(stored[ss.K_API_ENABLED]))
        self.api_host.setText(str(stored[ss.K_API_HOST]))
        self.api_port.setValue(int(stored[ss.K_API_PORT]))
        self.show_api_status(self.station.api_status)
        self.kiosk_grid.setCurrentIndex(max(0, min(4, int(stored[ss.K_KIOSK_GRID]))))
        self.kiosk_cycle.setValue(int(stored[ss.K_KIOSK_CYCLE]))
        self.kiosk_enabled.setChecked(bool(stored[ss.K_KIOSK_ENABLED]))
        self.language.setCurrentIndex(max(0, self.language.findData(stored[ss.K_LANGUAGE])))
        self.def_max_fps.setValue(float(stored[ss.K_DEF_MAX_FPS]))
        self.def_stall.setValue(float(stored[ss.K_DEF_STALL]))
        self.def_motion.setValue(float(stored[ss.K_DEF_MOTION]))
        self.pin_state.setText(self.tr("a PIN is set") if has_pin else self.tr("no PIN set (kiosk exit is not protected)"))
        self.clear_pin_btn.setEnabled(has_pin)

    # ------------------------------------------------------------ saving

    def pending_changes(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any], str | None]:
        """({track: rollout set}, rollout options, stored settings, new PIN) that differ from what was loaded."""
        r = self._rollout_loaded
        rset: dict[str, dict[str, Any]] = {}
        ropts: dict[str, Any] = {}
        if r is not None:
            for track in TRACK_NAMES:
                t = r.track(track)
                if t.latched:
                    continue
                change: dict[str, Any] = {}
                locked = t.locked_fields()
                if "use_domain" not in locked and self.track_use[track].isChecked() != t.use_domain:
                    change["use_domain"] = self.track_use[track].isChecked()
                if "percent" not in locked and self.track_percent[track].value() != t.percent:
                    change["percent"] = self.track_percent[track].value()
                if change:
                    change["override_reason"] = self.override_reason[track].text().strip() or None
                    rset[track] = change
            if self.auto_rollback.isChecked() != r.auto_rollback:
                ropts["auto_rollback"] = self.auto_rollback.isChecked()
            if abs(self.shadow_rate.value() - r.shadow_rate) > 1e-9:
                ropts["shadow_rate"] = self.shadow_rate.value()
            if abs(self.canary_rate.value() - r.canary_rate) > 1e-9:
                ropts["canary_rate"] = self.canary_rate.value()
            for name, w in self.thresholds.items():
                if abs(float(w.value()) - float(getattr(r.thresholds, name))) > 1e-9:
                    ropts[name] = w.value()
        values = {
            ss.K_API_ENABLED: self.api_enabled.isChecked(), ss.K_API_HOST: self.api_host.text().strip(),
            ss.K_API_PORT: self.api_port.value(), ss.K_KIOSK_GRID: self.kiosk_grid.currentIndex(),
            ss.K_KIOSK_CYCLE: self.kiosk_cycle.value(), ss.K_KIOSK_ENABLED: self.kiosk_enabled.isChecked(),
            ss.K_LANGUAGE: self.language.currentData(), ss.K_DEF_MAX_FPS: self.def_max_fps.value(),
            ss.K_DEF_STALL: self.def_stall.value(), ss.K_DEF_MOTION: self.def_motion.value(),
        }
        stored = {k: v for k, v in values.items() if self._stored.get(k) != v}
        pin = self.pin.text() or None
        return rset, ropts, stored, pin

    def apply(self, close: bool = False) -> None:
        if self._busy:
            return
        rset, ropts, stored, pin = self.pending_changes()
        if pin is not None and pin != self.pin2.text():
            self._show_error(ValueError("the two PINs differ"))
            return
        problems = ss.problems(stored)
        if problems:
            self._show_error(ValueError("; ".join(str(p) for p in problems)))
            return
        self._busy = True
        self.error.hide()

        def work() -> None:
            for track, change in rset.items():  # each through its gate (or its override reason)
                self.station.rollout_set(track=track, actor="operator", reason="set in the settings dialog", **change)
            if ropts:
                self.station.rollout_options(ropts, actor="operator")
            if stored:
                self.store_settings.save(stored, actor="operator")
            if any(k in stored for k in (ss.K_API_ENABLED, ss.K_API_HOST, ss.K_API_PORT)):
                self.station.restart_api()  # the new port (or host) applies now
            if pin is not None:
                from app.kiosk.pin import check_pin_format, save_pin

                check_pin_format(pin)
                save_pin(self.station.paths.data_dir, pin)

        def ok(_r: Any) -> None:
            self._busy = False
            self.pin.clear()
            self.pin2.clear()
            self.applied.emit()
            if close:
                self.accept()
            else:
                self.load()

        def failed(err: BaseException) -> None:
            self._busy = False
            self._show_error(err)
            self.load()  # show what was actually stored

        self.tasks.submit("save settings", work, on_ok=ok, on_error=failed, owner=self)

    def show_api_status(self, status: Any) -> None:
        """Running, off, or not running and why (a port taken: pick another one here and save)."""
        if status is None or (not status.enabled and not status.running):
            self.api_state.setText(self.tr("The API is off.") if status is not None else "")
            self.api_state.setStyleSheet("color: #607d8b;")
        elif status.running:
            self.api_state.setText(self.tr("Running on {host}:{port}.").format(host=status.host, port=status.port))
            self.api_state.setStyleSheet("color: #2e7d32;")
        else:
            self.api_state.setText(self.tr("⚠ Not running: {error}. Choose another port and save; "
                                           "the API starts again at once.").format(error=status.error))
            self.api_state.setStyleSheet("color: #c62828; font-weight: bold;")

    def _clear_pin(self) -> None:
        from app.kiosk.pin import clear_pin

        self.tasks.submit("remove PIN", clear_pin, self.station.paths.data_dir,
                          on_ok=lambda _r: self.load(), on_error=self._show_error, owner=self)

    def _show_error(self, err: BaseException) -> None:
        text = f"{err} [{err.code}]" if isinstance(err, OperationError) else str(err)
        self.error.setText(text)
        self.error.show()
        self.failed.emit(text)


def _wrap(layout: QLayout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
