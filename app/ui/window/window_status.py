"""The window's status bar (load, alerts, rollout stage, API, running tasks), its tray icon and the
desktop notices of alerts and failed cameras."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QMenu

from app.domain.operations import CameraStatus
from app.station.port import StationPort
from app.ui.common.formatting import fmt_bytes, view_state
from app.ui.common.models import view_label
from app.ui.window.sysinfo import LoadSampler, StatusSample, collect_status
from app.ui.window.tray import Notifier

if TYPE_CHECKING:
    from app.ui.window.main_window import MainWindow

log = logging.getLogger("edge_station.ui")

# started cameras that should have video and do not (the tray names them)
_NO_VIDEO = frozenset({"source_down", "no_frames", "stalled", "backoff", "failed"})


class WindowStatus(QObject):
    """Builds the status bar's permanent labels and the tray, and keeps them current."""

    def __init__(self, station: StationPort, window: MainWindow):
        super().__init__(window)
        self.station = station
        self.window = window
        self.busy_label = QLabel()
        self.load_label = QLabel(self.tr("CPU – · RAM – · disk –"))
        self.load_label.setObjectName("statusLoad")
        self.alerts_label = QLabel(self.tr("alerts –"))
        self.alerts_label.setObjectName("statusAlerts")
        self.rollout_label = QLabel(self.tr("rollout –"))
        self.rollout_label.setObjectName("statusRollout")
        self.api_label = QLabel()
        self.api_label.setObjectName("statusApi")
        self.api_label.setStyleSheet("color: #c62828; font-weight: bold;")
        self.api_label.hide()
        for w in (self.busy_label, self.api_label, self.load_label, self.alerts_label, self.rollout_label):
            window.statusBar().addPermanentWidget(w)
        window.tasks.busyChanged.connect(self.on_busy)
        self.status_sample: StatusSample | None = None
        self.video_summary = ""
        self._in_flight = False
        self._sampler: LoadSampler | None = None

        actions = window.window_actions
        tray_menu = QMenu(window)
        tray_menu.addAction(self.tr("Show window"), self.raise_window)
        tray_menu.addAction(actions["start_all"])
        tray_menu.addAction(actions["stop_all"])
        tray_menu.addSeparator()
        tray_menu.addAction(actions["quit"])
        self.notifier = Notifier(window, tray_menu)
        self.notifier.activated.connect(self.raise_window)
        window.bridge.alertRaised.connect(self.on_alert_event)
        window.bridge.stateChanged.connect(self.on_state_event)
        window.bridge.stationEvent.connect(lambda ev: self.show_api_status(ev.data) if ev.kind == "api" else None)

    def start_sampling(self) -> None:
        """Measure the machine's load here when no metrics feed of the station does."""
        if self.station.metrics_reader() is None:  # else the metrics' station feed measures
            self._sampler = LoadSampler(self.station.paths.data_dir)

    def refresh_status(self) -> None:
        """Gather load, alerts and rollout stage off the GUI thread (one at a time)."""
        if self._in_flight or self.window.is_shut_down:
            return
        self._in_flight = True

        def done(sample: StatusSample) -> None:
            self._in_flight = False
            self.show_status(sample)

        def failed(err: BaseException) -> None:
            self._in_flight = False
            log.warning("status bar refresh failed: %s", err)

        self.window.tasks.submit("status", collect_status, self.station, self._sampler,
                                 on_ok=done, on_error=failed, quiet=True)

    def show_status(self, sample: StatusSample) -> None:
        self.status_sample = sample
        if sample.load is not None:
            ld = sample.load
            # Free space, not a percentage: on thin/overlay disks used + free != total, and the
            # two usual percentages disagree (df's used/(used+free) vs 100 - free/total).
            self.load_label.setText(self.tr("CPU {cpu_percent:.0f} % · RAM {memory_percent:.0f} % · disk {0} free").format(fmt_bytes(ld.disk_free), cpu_percent=ld.cpu_percent, memory_percent=ld.memory_percent))
            self.load_label.setToolTip(self.tr("station CPU and memory; {0} free on the data dir's disk ({1:.0f} % of its size)").format(fmt_bytes(ld.disk_free), 100 - ld.disk_percent))
        if sample.alerts_firing is None:
            self.alerts_label.setText(self.tr("alerts –"))
            self.alerts_label.setToolTip(self.tr("no alert engine in this station"))
            firing = False
        else:
            firing = sample.alerts_firing > 0
            un = sample.alerts_unacknowledged or 0
            self.alerts_label.setText(self.tr("⚠ {alerts_firing} alerts ({un} new)").format(alerts_firing=sample.alerts_firing, un=un) if firing else self.tr("no alerts"))
            self.alerts_label.setToolTip(self.tr("{alerts_firing} firing, {un} not acknowledged").format(alerts_firing=sample.alerts_firing, un=un))
        if self.alerts_label.property("firing") != firing:
            self.alerts_label.setProperty("firing", firing)
            self.alerts_label.style().unpolish(self.alerts_label)
            self.alerts_label.style().polish(self.alerts_label)
        self.show_api_status(self.station.api_status)
        self.rollout_label.setText(self.tr("rollout: {rollout}").format(rollout=sample.rollout) if sample.rollout else self.tr("rollout –"))
        self.rollout_label.setToolTip(sample.rollout_tip)
        self.update_tray_tooltip()

    def show_api_status(self, status: Any) -> None:
        """A local API that should run and does not is said in the status bar (not only in the log)."""
        failed = bool(getattr(status, "failed", False))
        self.api_label.setVisible(failed)
        if failed:
            self.api_label.setText(self.tr("⚠ API not running: port {port} taken").format(port=status.port)
                                   if "in use" in (status.error or "") else self.tr("⚠ API not running"))
            self.api_label.setToolTip(self.tr("The local control API is not running: {error}. "
                                              "Pick another port in Settings (Ctrl+,).").format(error=status.error))

    def on_alert_event(self, ev: Any) -> None:
        change = ev.data
        if change is None or not getattr(change, "notify", True) or not getattr(change, "desktop", True):
            self.refresh_status()
            return
        kind = str(getattr(change, "kind", "alert"))
        severity = str(getattr(change, "severity", "warning"))
        from app.ui.alerts.pages import alert_text  # the alert's state as the alerts page says it

        rule = str(getattr(change, "rule_name", "") or "")
        state = alert_text(kind)
        title = f"{rule} — {state}" if rule else state
        msg = str(getattr(change, "message", "") or getattr(change, "subject", ""))
        if rule and msg.startswith(rule + ":"):  # the engine's message starts with the rule name: say it once
            msg = msg[len(rule) + 1:].strip()
        self.notifier.notify(title, msg, severity if kind != "resolved" else "info")
        self.window.statusBar().showMessage(self.tr("Alert: {title}: {msg}").format(title=title, msg=msg), 10000)
        self.refresh_status()

    def on_state_event(self, ev: Any) -> None:
        data = ev.data
        if getattr(data, "kind", None) == "failed":
            name = self.window.camera_actions.name(ev.camera_id) if ev.camera_id is not None else self.tr("a camera")
            detail = getattr(data, "detail", None) or {}
            reason = detail.get("reason") if isinstance(detail, dict) else None
            self.notifier.notify(self.tr("{name} failed").format(name=name), str(reason or self.tr("the worker keeps failing; see its logs")),
                                 "critical")

    def show_cameras(self, statuses: list[CameraStatus]) -> None:
        """The station's snapshot arrived: the tray says which cameras have video."""
        self.video_summary = self._video_summary(statuses)
        self.update_tray_tooltip()

    def _video_summary(self, statuses: list[CameraStatus]) -> str:
        """"2 cameras with video; no video: Yard (source down)" for the tray (stopped ones are not missed)."""
        live = [s for s in statuses if view_state(s) == "live"]
        text = self.tr("{live} cameras with video").format(live=len(live))
        missing = [f"{s.name} ({view_label(view_state(s))})" for s in statuses
                   if view_state(s) in _NO_VIDEO]
        if missing:
            text += self.tr("; no video: {names}").format(names=", ".join(missing[:5]))
        return text

    def update_tray_tooltip(self) -> None:
        self.notifier.set_tooltip(self.tr("Edge Station — {0}").format(
            " · ".join(t for t in (self.video_summary, self.alerts_label.text()) if t)))
        worst = "ok"
        for s in self.window.model.statuses():
            v = view_state(s)
            if v in ("source_down", "failed", "stalled", "backoff"):
                worst = "down"
        self.notifier.set_state(worst)

    def raise_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def on_busy(self, n: int) -> None:
        self.busy_label.setText(self.tr("⟳ {n} running").format(n=n) if n else "")
