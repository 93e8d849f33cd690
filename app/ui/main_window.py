"""The main window: camera table and wall (more pages are added as the station grows).

The window reads the station's live snapshot on one 2 Hz timer and runs every
operation on a :class:`~app.ui.tasks.TaskRunner` thread; answers and errors come
back on the GUI thread and show in the status bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QModelIndex, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QTableView,
    QTabWidget,
    QToolBar,
    QWidget,
)

from app.domain import OperationError
from app.domain.operations import CameraRef, CameraStatus, StopCamera
from app.ui.bridge import StationBridge
from app.ui.formatting import fmt_bytes
from app.ui.models import CAMERA_ID_ROLE, CameraTableModel
from app.ui.resources import icon
from app.ui.sysinfo import LoadSampler, StatusSample, collect_status
from app.ui.tasks import TaskRunner
from app.ui.tray import Notifier
from app.ui.wall import CameraWall

log = logging.getLogger("edge_station.ui")

ORG_NAME = "EdgeStation"
APP_NAME = "edge-station"
REFRESH_MS = 500  # 2 Hz live view
STATUS_MS = 1000


def describe_error(err: BaseException) -> str:
    """One line for the status bar: the operation's message and its stable code."""
    if isinstance(err, OperationError):
        return f"{err} [{err.code}]"
    return f"{type(err).__name__}: {err}"


class MainWindow(QMainWindow):
    """Edge Station's operator window. Takes the station facade; never touches the store."""

    stationReady = Signal()
    operationFinished = Signal(str, bool, str)  # label, ok, message

    def __init__(self, station: Any, *, settings: QSettings | None = None,
                 tasks: TaskRunner | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.settings = settings if settings is not None else QSettings(ORG_NAME, APP_NAME)
        self.tasks = tasks if tasks is not None else TaskRunner(self)
        self.bridge = StationBridge(station, self)
        self.ready = False
        self.open_error: BaseException | None = None
        self._refresh_pending = False
        self._shut_down = False

        self.setWindowTitle("Edge Station")
        self.setWindowIcon(icon("app"))
        self.resize(1200, 760)

        # ---- pages
        self.model = CameraTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("cameraTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((0, 180), (1, 150), (2, 70), (3, 80), (4, 90), (5, 70)):
            self.table.setColumnWidth(col, width)
        self.table.doubleClicked.connect(self._table_double_clicked)

        self.wall = CameraWall(self._preview_path)
        self.wall.setObjectName("cameraWall")

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.table, icon("table"), "Cameras")
        self.tabs.addTab(self.wall, icon("wall"), "Wall")
        self.setCentralWidget(self.tabs)

        # ---- actions
        self.actions: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())

        # ---- status bar
        self.busy_label = QLabel()
        self.load_label = QLabel("CPU – · RAM – · disk –")
        self.load_label.setObjectName("statusLoad")
        self.alerts_label = QLabel("alerts –")
        self.alerts_label.setObjectName("statusAlerts")
        self.rollout_label = QLabel("rollout –")
        self.rollout_label.setObjectName("statusRollout")
        for w in (self.busy_label, self.load_label, self.alerts_label, self.rollout_label):
            self.statusBar().addPermanentWidget(w)
        self.tasks.busyChanged.connect(self._on_busy)
        self.statusBar().showMessage("Opening the station…")
        self.status_sample: StatusSample | None = None
        self._status_in_flight = False
        self._sampler: LoadSampler | None = None

        # ---- tray and notifications
        tray_menu = QMenu(self)
        tray_menu.addAction("Show window", self._raise_window)
        tray_menu.addAction(self.actions["start_all"])
        tray_menu.addAction(self.actions["stop_all"])
        tray_menu.addSeparator()
        tray_menu.addAction(self.actions["quit"])
        self.notifier = Notifier(self, tray_menu)
        self.notifier.activated.connect(self._raise_window)
        self.bridge.alertRaised.connect(self._on_alert_event)
        self.bridge.stateChanged.connect(self._on_state_event)

        # ---- timers and events
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.bridge.stateChanged.connect(lambda _ev: self._schedule_refresh())
        self.bridge.camerasChanged.connect(self._schedule_refresh)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(STATUS_MS)
        self.status_timer.timeout.connect(self.refresh_status)

        self._restore_settings()
        self._update_actions()

    # ------------------------------------------------------------ station lifecycle

    def open_station(self) -> None:
        """Open the station (migrations, autostart) off the GUI thread; the window is usable meanwhile."""
        self.bridge.attach()
        self.tasks.submit("open station", self.station.open,
                          on_ok=lambda _r: self._on_station_opened(),
                          on_error=self._on_station_open_failed)

    def _on_station_opened(self) -> None:
        if self._shut_down:
            return
        self.ready = True
        self.refresh()
        self.refresh_timer.start()
        self._sampler = LoadSampler(self.station.paths.data_dir)
        self.refresh_status()
        self.status_timer.start()
        self._update_actions()
        n = len(self.model.statuses())
        self.statusBar().showMessage(f"Station open: {n} cameras", 5000)
        self.stationReady.emit()

    def _on_station_open_failed(self, err: BaseException) -> None:
        self.open_error = err
        log.error("the station could not open: %s", err, exc_info=err)
        self.statusBar().showMessage(f"The station could not open: {describe_error(err)}")

    def shutdown(self) -> None:
        """Stop timers and event delivery; the caller closes the station afterwards."""
        if self._shut_down:
            return
        self._shut_down = True
        self._save_settings()
        self.refresh_timer.stop()
        self.status_timer.stop()
        self.notifier.hide()
        self.wall.shutdown()
        self.bridge.detach()
        self.tasks.shutdown(wait=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------ live view

    def _preview_path(self, camera_id: int):
        return self.station.preview_path(camera_id) if self.ready else None

    def _schedule_refresh(self) -> None:
        if not self._refresh_pending and self.ready:
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """Pull the station's snapshot into the table and the wall (cheap; no operations)."""
        self._refresh_pending = False
        if self._shut_down:
            return
        statuses = self.station.live_status()
        sources = {c.id: c.source for c in self.station.cameras()}
        self.model.update(statuses, sources)
        self.wall.set_statuses(statuses)
        self._update_actions()

    # ------------------------------------------------------------ selection

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [cid for r in rows if (cid := self.model.camera_id(r)) is not None]

    def select_camera(self, camera_id: int) -> None:
        row = self.model.row_of(camera_id)
        if row >= 0:
            self.table.selectRow(row)

    def _selected_statuses(self) -> list[CameraStatus]:
        return [s for cid in self.selected_ids() if (s := self.model.status(cid)) is not None]

    # ------------------------------------------------------------ actions

    def _action(self, key: str, text: str, slot: Callable[[], None], shortcut: str | QKeySequence | None = None,
                icon_name: str | None = None, tip: str = "") -> QAction:
        a = QAction(icon(icon_name) if icon_name else icon(key), text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        label = tip or text.replace("&", "")
        a.setToolTip(f"{label} ({a.shortcut().toString()})" if shortcut else label)
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        self.actions[key] = a
        return a

    def _build_actions(self) -> None:
        self._action("start", "&Start", self.start_selected, "F5", tip="Start the selected cameras")
        self._action("stop", "S&top", self.stop_selected, "Shift+F5", tip="Stop the selected cameras")
        self._action("restart", "&Restart", self.restart_selected, "Ctrl+R",
                     tip="Restart the selected cameras")
        self._action("start_all", "Start &all", self.start_all, "Ctrl+Shift+F5",
                     tip="Start every active camera")
        self._action("stop_all", "Stop a&ll", self.stop_all, "Ctrl+Shift+F6", tip="Stop every camera")
        self._action("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self._action("page_cameras", "Cameras", lambda: self.tabs.setCurrentWidget(self.table), "Ctrl+1", "table")
        self._action("page_wall", "Wall", lambda: self.tabs.setCurrentWidget(self.wall), "Ctrl+2", "wall")

        tb = QToolBar("Camera actions")
        tb.setObjectName("cameraToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for key in ("start", "stop", "restart"):
            tb.addAction(self.actions[key])
        tb.addSeparator()
        tb.addAction(self.actions["start_all"])
        tb.addAction(self.actions["stop_all"])
        self.addToolBar(tb)
        self.toolbar = tb

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&Station")
        m.addAction(self.actions["start_all"])
        m.addAction(self.actions["stop_all"])
        m.addSeparator()
        m.addAction(self.actions["quit"])
        self.camera_menu = mb.addMenu("&Camera")
        for key in ("start", "stop", "restart"):
            self.camera_menu.addAction(self.actions[key])
        self.view_menu = mb.addMenu("&View")
        self.view_menu.addAction(self.actions["page_cameras"])
        self.view_menu.addAction(self.actions["page_wall"])

    def _update_actions(self) -> None:
        ready = self.ready and not self._shut_down
        sts = self._selected_statuses() if ready else []
        any_sel = bool(sts)
        self.actions["start"].setEnabled(ready and any(s.active and not s.state.is_live for s in sts))
        self.actions["stop"].setEnabled(ready and any(s.state.is_live for s in sts))
        self.actions["restart"].setEnabled(ready and any(s.active for s in sts))
        self.actions["start_all"].setEnabled(ready)
        self.actions["stop_all"].setEnabled(ready)
        for key in ("edit", "remove", "logs", "snapshot", "probe", "stats", "activate", "deactivate"):
            if key in self.actions:
                self.actions[key].setEnabled(ready and any_sel)

    def context_menu_for(self, camera_ids: list[int]) -> QMenu:
        menu = QMenu(self)
        for key in ("start", "stop", "restart"):
            menu.addAction(self.actions[key])
        extra = [k for k in ("activate", "deactivate", "logs", "snapshot", "probe", "stats", "edit", "remove")
                 if k in self.actions]
        if extra:
            menu.addSeparator()
            for key in extra:
                menu.addAction(self.actions[key])
        return menu

    def _table_menu(self, pos: QPoint) -> None:
        idx = self.table.indexAt(pos)
        if idx.isValid() and idx.row() not in {i.row() for i in self.table.selectionModel().selectedRows()}:
            self.table.selectRow(idx.row())
        ids = self.selected_ids()
        if ids:
            self.context_menu_for(ids).popup(self.table.viewport().mapToGlobal(pos))

    def _table_double_clicked(self, index: QModelIndex) -> None:
        cid = index.data(CAMERA_ID_ROLE)
        if cid is not None and "edit" in self.actions:
            self.actions["edit"].trigger()

    # ------------------------------------------------------------ operations

    def run_operation(self, label: str, fn: Callable[..., Any], *args: Any,
                      on_ok: Callable[[Any], None] | None = None) -> None:
        """Run one station call off the GUI thread; report the outcome in the status bar."""
        self.statusBar().showMessage(f"{label}…")

        def ok(result: Any) -> None:
            self.statusBar().showMessage(f"{label}: done", 4000)
            self._schedule_refresh()
            if on_ok is not None:
                on_ok(result)
            self.operationFinished.emit(label, True, "")

        def failed(err: BaseException) -> None:
            msg = f"{label} failed: {describe_error(err)}"
            self.statusBar().showMessage(msg, 10000)
            if not isinstance(err, OperationError):
                log.error("%s", msg, exc_info=err)
            self._schedule_refresh()
            self.operationFinished.emit(label, False, describe_error(err))

        self.tasks.submit(label, fn, *args, on_ok=ok, on_error=failed)

    def _name(self, cid: int) -> str:
        s = self.model.status(cid)
        return s.name if s else f"camera {cid}"

    def start_camera(self, cid: int) -> None:
        self.run_operation(f"Start {self._name(cid)}", self.station.ops.start_camera, CameraRef(cid))

    def stop_camera(self, cid: int) -> None:
        self.run_operation(f"Stop {self._name(cid)}", self.station.ops.stop_camera, StopCamera(cid))

    def restart_camera(self, cid: int) -> None:
        self.run_operation(f"Restart {self._name(cid)}", self.station.ops.restart_camera, CameraRef(cid))

    def start_selected(self) -> None:
        for cid in self.selected_ids():
            self.start_camera(cid)

    def stop_selected(self) -> None:
        for cid in self.selected_ids():
            self.stop_camera(cid)

    def restart_selected(self) -> None:
        for cid in self.selected_ids():
            self.restart_camera(cid)

    def start_all(self) -> None:
        self.run_operation("Start all", self.station.autostart)

    def stop_all(self) -> None:
        self.run_operation("Stop all", self.station.stop_all)

    # ------------------------------------------------------------ status bar, notifications

    def refresh_status(self) -> None:
        """Gather load, alerts and rollout stage off the GUI thread (one at a time)."""
        if self._status_in_flight or self._shut_down:
            return
        self._status_in_flight = True

        def done(sample: StatusSample) -> None:
            self._status_in_flight = False
            self.show_status(sample)

        def failed(err: BaseException) -> None:
            self._status_in_flight = False
            log.warning("status bar refresh failed: %s", err)

        self.tasks.submit("status", collect_status, self.station, self._sampler,
                          on_ok=done, on_error=failed, quiet=True)

    def show_status(self, sample: StatusSample) -> None:
        self.status_sample = sample
        if sample.load is not None:
            ld = sample.load
            self.load_label.setText(f"CPU {ld.cpu_percent:.0f} % · RAM {ld.memory_percent:.0f} % · "
                                    f"disk {ld.disk_percent:.0f} %")
            self.load_label.setToolTip(f"station load; {fmt_bytes(ld.disk_free)} free on the data dir's disk")
        if sample.alerts_firing is None:
            self.alerts_label.setText("alerts –")
            self.alerts_label.setToolTip("no alert engine in this station")
            firing = False
        else:
            firing = sample.alerts_firing > 0
            un = sample.alerts_unacknowledged or 0
            self.alerts_label.setText(f"⚠ {sample.alerts_firing} alerts ({un} new)" if firing else "no alerts")
            self.alerts_label.setToolTip(f"{sample.alerts_firing} firing, {un} not acknowledged")
        if self.alerts_label.property("firing") != firing:
            self.alerts_label.setProperty("firing", firing)
            self.alerts_label.style().unpolish(self.alerts_label)
            self.alerts_label.style().polish(self.alerts_label)
        self.rollout_label.setText(f"rollout: {sample.rollout}" if sample.rollout else "rollout –")
        self.rollout_label.setToolTip(sample.rollout_tip)
        self.notifier.set_tooltip(f"Edge Station — {self.alerts_label.text()}")

    def _on_alert_event(self, ev: Any) -> None:
        change = ev.data
        if change is None or not getattr(change, "notify", True) or not getattr(change, "desktop", True):
            self.refresh_status()
            return
        kind = str(getattr(change, "kind", "alert"))
        severity = str(getattr(change, "severity", "warning"))
        title = f"{getattr(change, 'rule_name', 'alert')} — {kind}"
        msg = getattr(change, "message", "") or getattr(change, "subject", "")
        self.notifier.notify(title, msg, severity if kind != "resolved" else "info")
        self.statusBar().showMessage(f"Alert: {title}: {msg}", 10000)
        self.refresh_status()

    def _on_state_event(self, ev: Any) -> None:
        data = ev.data
        if getattr(data, "kind", None) == "failed":
            name = self._name(ev.camera_id) if ev.camera_id is not None else "a camera"
            detail = getattr(data, "detail", None) or {}
            reason = detail.get("reason") if isinstance(detail, dict) else None
            self.notifier.notify(f"{name} failed", str(reason or "the worker keeps failing; see its logs"),
                                 "critical")

    def _raise_window(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _on_busy(self, n: int) -> None:
        self.busy_label.setText(f"⟳ {n} running" if n else "")

    # ------------------------------------------------------------ settings

    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        grid = _int(s.value("wall/grid"), 2)
        if grid in (1, 2, 3, 4):
            self.wall.set_grid(grid)
        tab = _int(s.value("window/tab"), 0)
        if 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("wall/grid", self.wall.grid)
        s.setValue("window/tab", self.tabs.currentIndex())
        s.sync()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
