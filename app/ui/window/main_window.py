"""The main window: camera table and wall (more pages are added as the station grows).

The window reads the station's live snapshot on one 2 Hz timer and runs every
operation on a :class:`~app.ui.common.tasks.TaskRunner` thread; answers and errors come
back on the GUI thread and show in the status bar.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QModelIndex,
    QPoint,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.domain import OperationError
from app.domain.operations import CameraRef, CameraStatus, StopCamera
from app.station.port import StationPort
from app.ui.common.bridge import StationBridge
from app.ui.common.formatting import fmt_bytes, view_state
from app.ui.common.models import (
    CAMERA_ID_ROLE,
    SORT_ROLE,
    CameraTableModel,
    StateDelegate,
    view_label,
)
from app.ui.common.ops import ACTOR, operation
from app.ui.common.resources import icon
from app.ui.common.tasks import TaskRunner
from app.ui.wall.camera_wall import CameraWall
from app.ui.window.camera_dialog import CameraDialog, camera_template
from app.ui.window.dialogs import LogsDialog, ProbeDialog, SnapshotDialog, StatsDialog
from app.ui.window.sysinfo import LoadSampler, StatusSample, collect_status
from app.ui.window.tray import Notifier

log = logging.getLogger("edge_station.ui")

ORG_NAME = "EdgeStation"
APP_NAME = "edge-station"
REFRESH_MS = 500  # 2 Hz live view
STATUS_MS = 1000


#: the window's own state (tab, geometry, wall grid, column widths), in the data dir
WINDOW_STATE_FILE = "window-state.ini"


def window_settings(station: StationPort) -> QSettings:
    """Where the window keeps its own state: ``window-state.ini`` in the station's data dir, so
    ``EDGE_STATION_DATA_DIR`` / ``--data-dir`` isolates it like everything else."""
    return QSettings(str(Path(station.paths.data_dir) / WINDOW_STATE_FILE), QSettings.Format.IniFormat)


def describe_error(err: BaseException) -> str:
    """One line for the status bar: the operation's message and its stable code."""
    if isinstance(err, OperationError):
        return f"{err} [{err.code}]"
    return f"{type(err).__name__}: {err}"


class MainWindow(QMainWindow):
    """Edge Station's operator window. Takes the station facade; never touches the store."""

    stationReady = Signal()
    operationFinished = Signal(str, bool, str)  # label, ok, message

    def __init__(self, station: StationPort, *, settings: QSettings | None = None,
                 tasks: TaskRunner | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.settings = settings if settings is not None else window_settings(station)
        self.tasks = tasks if tasks is not None else TaskRunner(self)
        self.bridge = StationBridge(station, self)
        self.ready = False
        self.open_error: BaseException | None = None
        self._refresh_pending = False
        self._shut_down = False
        self.last_message = ""
        self.video_summary = ""
        self._select_after_refresh: int | None = None
        self.camera_defaults: dict[str, Any] = {}
        self.import_progress: QProgressDialog | None = None

        self.setWindowTitle(self.tr("Edge Station"))
        self.setWindowIcon(icon("app"))
        self.resize(1200, 760)

        # ---- pages
        self.model = CameraTableModel(self)
        # Sorted by any column (numbers as numbers) and filtered by a text that any column may hold.
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView()
        self.table.setObjectName("cameraTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the station's order until a header is clicked
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
        self.table.setItemDelegateForColumn(CameraTableModel.COL_STATE, StateDelegate(self.table))

        self.wall = CameraWall(self._preview_path)
        self.wall.setObjectName("cameraWall")
        self.wall.menuRequested.connect(self._tile_menu)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("cameraFilter")
        self.filter_edit.setPlaceholderText(self.tr("Filter cameras by name, state or source (Ctrl+F)"))
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.cameras_page = QWidget()
        self.cameras_page.setObjectName("camerasPage")
        cam_lay = QVBoxLayout(self.cameras_page)
        cam_lay.setContentsMargins(4, 4, 4, 0)
        cam_lay.setSpacing(4)
        cam_lay.addWidget(self.filter_edit)
        cam_lay.addWidget(self.table, 1)
        self.tabs.addTab(self.cameras_page, icon("table"), self.tr("Cameras"))
        self.tabs.addTab(self.wall, icon("wall"), self.tr("Wall"))
        self.pages: dict[str, QWidget] = {"cameras": self.cameras_page, "wall": self.wall}
        self.remove_prompt: QMessageBox | None = None  # the remove confirmation while it is open
        self._add_optional_pages()
        self.setCentralWidget(self.tabs)

        # ---- actions
        self.window_actions: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())

        # ---- status bar
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
            self.statusBar().addPermanentWidget(w)
        self.tasks.busyChanged.connect(self._on_busy)
        self.statusBar().showMessage(self.tr("Opening the station…"))
        self.status_sample: StatusSample | None = None
        self._status_in_flight = False
        self._sampler: LoadSampler | None = None

        # ---- tray and notifications
        tray_menu = QMenu(self)
        tray_menu.addAction(self.tr("Show window"), self._raise_window)
        tray_menu.addAction(self.window_actions["start_all"])
        tray_menu.addAction(self.window_actions["stop_all"])
        tray_menu.addSeparator()
        tray_menu.addAction(self.window_actions["quit"])
        self.notifier = Notifier(self, tray_menu)
        self.notifier.activated.connect(self._raise_window)
        self.bridge.alertRaised.connect(self._on_alert_event)
        self.bridge.stateChanged.connect(self._on_state_event)
        self.bridge.stationEvent.connect(lambda ev: self.show_api_status(ev.data) if ev.kind == "api" else None)

        # ---- timers and events
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.bridge.stateChanged.connect(lambda _ev: self._schedule_refresh())
        self.bridge.camerasChanged.connect(self._schedule_refresh)
        self.bridge.settingsChanged.connect(self._settings_changed)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(STATUS_MS)
        self.status_timer.timeout.connect(self.refresh_status)

        self._restore_settings()
        self._update_actions()

    def _add_optional_pages(self) -> None:
        """Charts, alerts, rules and rollout, each built the first time it is shown (a faster start)."""

        def charts() -> QWidget:
            from app.ui.charts.page import ChartsPage

            return ChartsPage(self.station)

        def alerts() -> QWidget:
            from app.ui.alerts.pages import AlertsPage

            return AlertsPage(self.station, self.tasks)

        def rules() -> QWidget:
            from app.ui.alerts.pages import RulesPage

            return RulesPage(self.station, self.tasks)

        def rollout() -> QWidget:
            from app.ui.rollout.page import RolloutPage

            return RolloutPage(self.station, self.tasks)

        def evidence() -> QWidget:
            from app.ui.evidence.page import EvidencePage

            return EvidencePage(self.station, self.tasks)

        builders: list[tuple[str, str, Callable[[], QWidget]]] = []
        if importlib.util.find_spec("pyqtgraph") is not None:
            builders.append(("charts", self.tr("Charts"), charts))
        else:  # the rest of the window still works
            log.warning("charts page unavailable: pyqtgraph is not installed")
        builders += [("alerts", self.tr("Alerts"), alerts), ("rules", self.tr("Rules"), rules),
                     ("rollout", self.tr("Rollout"), rollout), ("evidence", self.tr("Evidence"), evidence)]
        for key, title, build in builders:
            holder = LazyPage(build, f"{key}Page")
            self.pages[key] = holder
            self.tabs.addTab(holder, icon(_PAGE_ICONS.get(key, key)), title)

    def page(self, key: str) -> QWidget:
        """The page itself (built now if it was not shown yet)."""
        p = self.pages[key]
        return p.ensure() if isinstance(p, LazyPage) else p

    def show_page(self, key: str) -> QWidget:
        self.tabs.setCurrentWidget(self.pages[key])
        return self.page(key)

    def settings_dialog(self) -> QWidget:
        from app.ui.window.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.station, self.tasks, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.applied.connect(lambda: self.statusBar().showMessage(self.tr("Settings saved"), 5000))
        dlg.applied.connect(self.refresh_status)
        dlg.applied.connect(self.load_camera_defaults)
        dlg.open()
        return dlg

    def load_camera_defaults(self) -> None:
        """Read the camera defaults for the add dialog (off the GUI thread)."""
        from app.ui.window.station_settings import StationSettings

        def loaded(values: dict[str, Any]) -> None:
            self.camera_defaults = values

        self.tasks.submit("camera defaults", StationSettings(self.station).load, on_ok=loaded,
                          on_error=lambda e: log.warning("cannot read the camera defaults: %s", e), quiet=True)

    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.cameras_page)
        self.filter_edit.setFocus()
        self.filter_edit.selectAll()

    def toggle_fullscreen_wall(self) -> None:
        self.tabs.setCurrentWidget(self.wall)
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

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
        if self.station.metrics_reader() is None:  # else the metrics' station feed measures
            self._sampler = LoadSampler(self.station.paths.data_dir)
        self.load_camera_defaults()
        self.refresh_status()
        self.status_timer.start()
        self._update_actions()
        n = len(self.model.statuses())
        self.statusBar().showMessage(self.tr("Station open: {n} cameras").format(n=n), 5000)
        self.stationReady.emit()

    def _on_station_open_failed(self, err: BaseException) -> None:
        self.open_error = err
        log.error("the station could not open: %s", err, exc_info=err)
        self.statusBar().showMessage(self.tr("The station could not open: {0}").format(describe_error(err)))
        self.show_message(self.tr("Edge Station cannot start"),
                          self.tr("The station could not open:\n{err}\n\nRun 'edge-station doctor' for a check of this machine, or see the log.").format(err=err), QMessageBox.Icon.Critical)

    def shutdown(self) -> None:
        """Stop timers and event delivery; the caller closes the station afterwards."""
        if self._shut_down:
            return
        self._shut_down = True
        self._save_settings()
        self.refresh_timer.stop()
        self.status_timer.stop()
        for holder in self.pages.values():
            page = holder.page if isinstance(holder, LazyPage) else holder
            stop = getattr(page, "shutdown", None)
            if stop is not None:
                stop()
        self.notifier.hide()
        self.wall.shutdown()
        self.bridge.detach()
        self.tasks.shutdown(wait=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------ live view

    def _settings_changed(self, _ev: object) -> None:
        self.refresh_status()
        self.load_camera_defaults()

    def _preview_path(self, camera_id: int) -> Path | None:
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
        sources = {c.id: c.source for c in self.station.cameras() if c.id is not None}
        self.model.update(statuses, sources)
        self.wall.set_statuses(statuses)
        if self._select_after_refresh is not None and self.model.row_of(self._select_after_refresh) >= 0:
            self.select_camera(self._select_after_refresh)
            self._select_after_refresh = None
        self.video_summary = self._video_summary(statuses)
        self._update_tray_tooltip()
        self._update_actions()

    def _video_summary(self, statuses: list[CameraStatus]) -> str:
        """"2 cameras with video; no video: Yard (source down)" for the tray (stopped ones are not missed)."""
        live = [s for s in statuses if view_state(s) == "live"]
        text = self.tr("{live} cameras with video").format(live=len(live))
        missing = [f"{s.name} ({view_label(view_state(s))})" for s in statuses
                   if view_state(s) in _NO_VIDEO]
        if missing:
            text += self.tr("; no video: {names}").format(names=", ".join(missing[:5]))
        return text

    def _update_tray_tooltip(self) -> None:
        self.notifier.set_tooltip(self.tr("Edge Station — {0}").format(
            " · ".join(t for t in (self.video_summary, self.alerts_label.text()) if t)))
        worst = "ok"
        for s in self.model.statuses():
            v = view_state(s)
            if v in ("source_down", "failed", "stalled", "backoff"):
                worst = "down"
        self.notifier.set_state(worst)

    # ------------------------------------------------------------ selection

    def selected_ids(self) -> list[int]:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [cid for r in rows if (cid := self.model.camera_id(r)) is not None]

    def select_camera(self, camera_id: int) -> None:
        row = self.model.row_of(camera_id)
        if row >= 0:
            shown = self.proxy.mapFromSource(self.model.index(row, 0))
            if not shown.isValid():  # filtered out: show it
                self.filter_edit.clear()
                shown = self.proxy.mapFromSource(self.model.index(row, 0))
            self.table.selectRow(shown.row())
            self.table.scrollTo(shown)

    def _selected_statuses(self) -> list[CameraStatus]:
        return [s for cid in self.selected_ids() if (s := self.model.status(cid)) is not None]

    # ------------------------------------------------------------ actions

    def _action(self, key: str, text: str, slot: Callable[[], object],
                shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
                icon_name: str | None = None, tip: str = "") -> QAction:
        a = QAction(icon(icon_name) if icon_name else icon(key), text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        label = tip or text.replace("&", "")
        a.setToolTip(f"{label} ({a.shortcut().toString()})" if shortcut else label)
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        self.window_actions[key] = a
        return a

    def _build_actions(self) -> None:
        self._action("start", self.tr("&Start"), self.start_selected, "F5", tip=self.tr("Start the selected cameras"))
        self._action("stop", self.tr("S&top"), self.stop_selected, "Shift+F5", tip=self.tr("Stop the selected cameras"))
        self._action("restart", self.tr("&Restart"), self.restart_selected, "Ctrl+R",
                     tip=self.tr("Restart the selected cameras"))
        self._action("start_all", self.tr("Start &all"), self.start_all, "Ctrl+Shift+F5",
                     tip=self.tr("Start every active camera"))
        self._action("stop_all", self.tr("Stop a&ll"), self.stop_all, "Ctrl+Shift+F6", tip=self.tr("Stop every camera"))
        self._action("activate", self.tr("&Activate"), self.activate_selected, "Ctrl+Shift+A",
                     tip=self.tr("Mark the selected cameras active (they autostart)"))
        self._action("deactivate", self.tr("&Deactivate"), self.deactivate_selected, "Ctrl+Shift+D",
                     tip=self.tr("Stop the selected cameras and mark them inactive"))
        self._action("add", self.tr("Add &camera…"), self.add_camera_dialog, QKeySequence.StandardKey.New)
        self._action("edit", self.tr("&Edit camera…"), self.edit_selected_dialog, "F2")
        self._action("remove", self.tr("Re&move camera…"), self.remove_selected, QKeySequence.StandardKey.Delete)
        self._action("logs", self.tr("&Logs…"), lambda: self._per_camera_dialog(LogsDialog), "Ctrl+L")
        self._action("snapshot", self.tr("Sna&pshot…"), lambda: self._per_camera_dialog(SnapshotDialog), "Ctrl+Shift+S")
        self._action("save_clip", self.tr("Save cl&ip"), self.save_clip_selected, "Ctrl+Shift+L",
                     tip=self.tr("Record a clip of the selected camera now: pre-roll from its buffer + post-roll"))
        self._action("probe", self.tr("Pro&be source…"), lambda: self._per_camera_dialog(ProbeDialog), "Ctrl+Shift+P")
        self._action("stats", self.tr("Pr&ocess stats…"), lambda: self._per_camera_dialog(StatsDialog), "Ctrl+Shift+T")
        self._action("import", self.tr("&Import cameras…"), self.import_dialog, "Ctrl+I")
        self._action("export", self.tr("E&xport cameras…"), self.export_dialog, "Ctrl+E")
        self._action("quit", self.tr("&Quit"), self.close, QKeySequence.StandardKey.Quit)
        for i, (key, page) in enumerate(self.pages.items(), start=1):
            self._action(f"page_{key}", self.tabs.tabText(self.tabs.indexOf(page)),
                         functools.partial(self.tabs.setCurrentWidget, page), f"Ctrl+{i}", _PAGE_ICONS.get(key, key))
        # The platform's Preferences key; Linux desktops have none, so Ctrl+, (as the kiosk uses).
        prefs = QKeySequence(QKeySequence.StandardKey.Preferences)
        self._action("settings", self.tr("S&ettings…"), self.settings_dialog,
                     prefs if not prefs.isEmpty() else QKeySequence("Ctrl+,"), "settings")
        self._action("shortcuts", self.tr("&Keyboard shortcuts"), self.shortcuts_dialog, QKeySequence.StandardKey.HelpContents,
                     "help")
        self._action("about", self.tr("&About Edge Station"), self.about_dialog, None, "app")
        self._action("fullscreen_wall", self.tr("Wall full screen"), self.toggle_fullscreen_wall, "F11", "fullscreen")
        self._action("filter", self.tr("Filter cameras"), self.focus_filter, QKeySequence.StandardKey.Find, "table")

        tb = QToolBar(self.tr("Camera actions"))
        tb.setObjectName("cameraToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for key in ("start", "stop", "restart"):
            tb.addAction(self.window_actions[key])
        tb.addSeparator()
        tb.addAction(self.window_actions["start_all"])
        tb.addAction(self.window_actions["stop_all"])
        tb.addSeparator()
        for key in ("add", "edit", "logs", "snapshot", "probe"):
            tb.addAction(self.window_actions[key])
        self.addToolBar(tb)
        self.toolbar = tb

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu(self.tr("&Station"))
        m.addAction(self.window_actions["start_all"])
        m.addAction(self.window_actions["stop_all"])
        m.addSeparator()
        m.addAction(self.window_actions["import"])
        m.addAction(self.window_actions["export"])
        m.addSeparator()
        m.addAction(self.window_actions["quit"])
        self.station_menu = m
        self.camera_menu = mb.addMenu(self.tr("&Camera"))
        for key in ("start", "stop", "restart", None, "activate", "deactivate", None, "add", "edit", "remove",
                    None, "logs", "snapshot", "save_clip", "probe", "stats"):
            if key is None:
                self.camera_menu.addSeparator()
            else:
                self.camera_menu.addAction(self.window_actions[key])
        self.view_menu = mb.addMenu(self.tr("&View"))
        for key in self.pages:
            self.view_menu.addAction(self.window_actions[f"page_{key}"])
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.window_actions["fullscreen_wall"])
        m.insertAction(self.window_actions["quit"], self.window_actions["settings"])
        m.insertSeparator(self.window_actions["quit"])
        self.help_menu = mb.addMenu(self.tr("&Help"))
        self.help_menu.addAction(self.window_actions["shortcuts"])
        self.help_menu.addAction(self.window_actions["about"])

    def shortcut_list(self) -> list[tuple[str, str]]:
        """(action, key) for every action that has a shortcut, in menu order."""
        return [(a.text().replace("&", "").rstrip("…"), a.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
                for a in self.window_actions.values() if not a.shortcut().isEmpty()]

    def shortcuts_dialog(self) -> QMessageBox:
        rows = "".join(f"<tr><td>{name}</td><td>&nbsp;&nbsp;<b>{key}</b></td></tr>" for name, key in self.shortcut_list())
        box = QMessageBox(QMessageBox.Icon.NoIcon, self.tr("Keyboard shortcuts"), f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("shortcutsDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def about_dialog(self) -> QMessageBox:
        from app import __version__

        text = self.tr("<b>Edge Station {version}</b><p>A camera station: supervised workers per camera, "
                       "alerts, a live wall and a kiosk.</p><p>Data dir: {data_dir}</p>").format(
            version=__version__, data_dir=self.station.paths.data_dir)
        box = QMessageBox(QMessageBox.Icon.Information, self.tr("About Edge Station"), text,
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("aboutDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _update_actions(self) -> None:
        ready = self.ready and not self._shut_down
        sts = self._selected_statuses() if ready else []
        any_sel = bool(sts)
        self.window_actions["start"].setEnabled(ready and any(s.active and not s.state.is_live for s in sts))
        self.window_actions["stop"].setEnabled(ready and any(s.state.is_live for s in sts))
        self.window_actions["restart"].setEnabled(ready and any(s.active for s in sts))
        self.window_actions["start_all"].setEnabled(ready)
        self.window_actions["stop_all"].setEnabled(ready)
        self.window_actions["activate"].setEnabled(ready and any(not s.active for s in sts))
        self.window_actions["deactivate"].setEnabled(ready and any(s.active for s in sts))
        one = ready and len(sts) == 1
        for key in ("edit", "logs", "snapshot", "probe", "stats"):
            self.window_actions[key].setEnabled(one)
        self.window_actions["save_clip"].setEnabled(one and sts[0].state.is_live)
        self.window_actions["remove"].setEnabled(ready and any_sel)
        for key in ("add", "import", "export"):
            self.window_actions[key].setEnabled(ready)

    def context_menu_for(self, camera_ids: list[int]) -> QMenu:
        menu = QMenu(self)
        for key in ("start", "stop", "restart"):
            menu.addAction(self.window_actions[key])
        extra = [k for k in ("activate", "deactivate", "logs", "snapshot", "save_clip", "probe", "stats", "edit",
                             "remove")
                 if k in self.window_actions]
        if extra:
            menu.addSeparator()
            for key in extra:
                menu.addAction(self.window_actions[key])
        return menu

    def _table_menu(self, pos: QPoint) -> None:
        idx = self.table.indexAt(pos)
        if idx.isValid() and idx.row() not in {i.row() for i in self.table.selectionModel().selectedRows()}:
            self.table.selectRow(idx.row())
        ids = self.selected_ids()
        if ids:
            self.context_menu_for(ids).popup(self.table.viewport().mapToGlobal(pos))

    def _tile_menu(self, camera_id: int, global_pos: QPoint) -> None:
        self.select_camera(camera_id)
        self.context_menu_for([camera_id]).popup(global_pos)

    def _table_double_clicked(self, index: QModelIndex) -> None:
        cid = index.data(CAMERA_ID_ROLE)
        if cid is not None and "edit" in self.window_actions:
            self.window_actions["edit"].trigger()

    # ------------------------------------------------------------ operations

    def run_operation(self, label: str, fn: Callable[..., Any], *args: Any,
                      on_ok: Callable[[Any], None] | None = None) -> None:
        """Run one station call off the GUI thread; report the outcome in the status bar."""
        self.statusBar().showMessage(f"{label}…")

        def ok(result: Any) -> None:
            self.statusBar().showMessage(self.tr("{label}: done").format(label=label), 4000)
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
        return s.name if s else self.tr("camera {id}").format(id=cid)

    def start_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Start {0}").format(self._name(cid)), operation(self.station, "start_camera"), CameraRef(cid))

    def stop_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Stop {0}").format(self._name(cid)), operation(self.station, "stop_camera"), StopCamera(cid))

    def restart_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Restart {0}").format(self._name(cid)), operation(self.station, "restart_camera"), CameraRef(cid))

    def start_selected(self) -> None:
        for cid in self.selected_ids():
            self.start_camera(cid)

    def stop_selected(self) -> None:
        for cid in self.selected_ids():
            self.stop_camera(cid)

    def restart_selected(self) -> None:
        for cid in self.selected_ids():
            self.restart_camera(cid)

    def activate_selected(self) -> None:
        for cid in self.selected_ids():
            self.run_operation(self.tr("Activate {0}").format(self._name(cid)), operation(self.station, "activate_camera"), CameraRef(cid),
                               on_ok=lambda _r: self._reload_cameras_soon())

    def deactivate_selected(self) -> None:
        for cid in self.selected_ids():
            self.run_operation(self.tr("Deactivate {0}").format(self._name(cid)), operation(self.station, "deactivate_camera"),
                               CameraRef(cid), on_ok=lambda _r: self._reload_cameras_soon())

    # ------------------------------------------------------------ camera administration

    def add_camera_dialog(self) -> CameraDialog:
        dlg = CameraDialog(self.station, self.tasks, None, self, template=camera_template(self.camera_defaults))
        dlg.saved.connect(lambda cam: self._camera_saved(cam, self.tr("Camera {name} added")))
        dlg.open()
        return dlg

    def edit_camera_dialog(self, camera_id: int) -> CameraDialog | None:
        cam = self.station.camera(camera_id)
        if cam is None:
            self.statusBar().showMessage(self.tr("camera {camera_id} no longer exists").format(camera_id=camera_id), 5000)
            return None
        dlg = CameraDialog(self.station, self.tasks, cam, self)
        dlg.saved.connect(lambda c: self._camera_saved(c, self.tr("Camera {name} saved")))
        dlg.open()
        return dlg

    def edit_selected_dialog(self) -> CameraDialog | None:
        ids = self.selected_ids()
        return self.edit_camera_dialog(ids[0]) if ids else None

    def _camera_saved(self, cam: Any, what: str) -> None:
        self.statusBar().showMessage(what.format(name=cam.name), 5000)
        self._select_after_refresh = getattr(cam, "id", None)  # the new or edited camera becomes the selection
        self._reload_cameras_soon()

    def _reload_cameras_soon(self) -> None:
        """Ask the station to re-read its cameras; the table follows."""
        self.tasks.submit("reload cameras", self.station.reload_cameras,
                          on_ok=lambda _r: self._schedule_refresh(), quiet=True)

    def remove_selected(self) -> None:
        self.remove_cameras(self.selected_ids(), confirm=True)

    def remove_cameras(self, camera_ids: list[int], *, confirm: bool = True) -> None:
        """Remove cameras (a running one is stopped first)."""
        if not camera_ids:
            return
        names = ", ".join(self._name(c) for c in camera_ids)
        delete_evidence = False
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Question, self.tr("Remove cameras"), self.tr("Remove {names}?\nRunning cameras are stopped first. Their alert rules are removed with them.").format(names=names),
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
            evidence_box = QCheckBox(self.tr("Also delete their snapshots and clips now (otherwise they are kept until retention removes them)"))
            box.setCheckBox(evidence_box)
            self.remove_prompt = box
            answer = box.exec()
            self.remove_prompt = None
            if answer != QMessageBox.StandardButton.Yes:
                return
            delete_evidence = evidence_box.isChecked()

        def work() -> int:
            for cid in camera_ids:
                st = self.model.status(cid)
                if st is not None and st.state.is_live:
                    operation(self.station, "stop_camera")(StopCamera(cid))
                self.station.remove_camera(cid, delete_evidence=delete_evidence)
            return len(camera_ids)

        self.run_operation(self.tr("Remove {names}").format(names=names), work, on_ok=lambda _n: self._reload_cameras_soon())

    def save_clip_selected(self) -> None:
        """Record a clip of the selected camera (pre-roll + post-roll); it is listed on the Evidence page."""
        ids = self.selected_ids()
        if not ids:
            return
        cid = ids[0]
        name = self._name(cid)
        self.statusBar().showMessage(self.tr("Recording a clip of {name}…").format(name=name), 15000)

        def ok(ev: Any) -> None:
            self.statusBar().showMessage(self.tr("Saved a {d:.1f} s clip of {name} (Evidence page)").format(
                d=ev.duration or 0.0, name=name), 8000)

        def failed(err: BaseException) -> None:
            self.statusBar().showMessage(self.tr("No clip of {name}: {err}").format(name=name, err=err), 10000)

        self.tasks.submit(f"save clip of {name}", self.station.save_clip, cid, on_ok=ok, on_error=failed)

    def _per_camera_dialog(self, cls: type) -> QWidget | None:
        ids = self.selected_ids()
        if not ids:
            return None
        return self.open_camera_dialog(cls, ids[0])

    def open_camera_dialog(self, cls: Callable[..., QDialog], camera_id: int) -> QWidget:
        dlg = cls(self.station, self.tasks, camera_id, self._name(camera_id), self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    # ------------------------------------------------------------ import / export

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Import cameras"), "", self.tr("Cameras (*.yaml *.yml);;All files (*)"))
        if not path:
            return
        replace = QMessageBox.question(
            self, self.tr("Import cameras"), self.tr("Remove the cameras that are not in the file?"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        self.import_cameras(Path(path), replace=replace)

    def import_cameras(self, path: Path, *, replace: bool = False) -> QProgressDialog:
        """Validate the whole file and apply it in one transaction, with a progress dialog."""
        progress = QProgressDialog(self.tr("Importing {name}: checking every camera, then applying…").format(name=path.name),
                                   "", 0, 0, self)
        progress.setWindowTitle(self.tr("Import cameras"))
        progress.setCancelButton(None)  # one transaction: it cannot stop half-way
        progress.setMinimumDuration(0)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.show()
        self.import_progress = progress

        def ok(report: Any) -> None:
            progress.setRange(0, 1)
            progress.setValue(1)
            progress.close()
            summary = report.summary() if hasattr(report, "summary") else str(report)
            self.last_message = self.tr("Imported {name}: {summary}").format(name=path.name, summary=summary)
            self.statusBar().showMessage(self.last_message, 10000)
            self._schedule_refresh()
            self.operationFinished.emit(self.tr("Import {name}").format(name=path.name), True, summary)

        def failed(err: BaseException) -> None:
            progress.close()
            problems = getattr(err, "problems", None)
            text = "\n".join(problems) if problems else describe_error(err)
            self.last_message = self.tr("Import of {name} failed; nothing was changed.\n{text}").format(
                name=path.name, text=text)
            self.statusBar().showMessage(self.tr("Import of {name} failed: {0}").format(text.splitlines()[0], name=path.name), 15000)
            self.show_message(self.tr("Import failed"), self.last_message, QMessageBox.Icon.Warning)
            self.operationFinished.emit(self.tr("Import {name}").format(name=path.name), False, text)

        self.tasks.submit(f"Import {path.name}", lambda: self.station.import_file(path, replace=replace),
                          on_ok=ok, on_error=failed)
        return progress

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export cameras"), "cameras.yaml", self.tr("Cameras (*.yaml *.yml)"))
        if not path:
            return
        secrets = QMessageBox.question(
            self, self.tr("Export cameras"), self.tr("Write passwords in source URLs in clear text?\n(No masks them as ***.)"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        self.export_cameras(Path(path), include_secrets=secrets)

    def export_cameras(self, path: Path, *, include_secrets: bool = False) -> None:
        def work() -> int:
            return self.station.export_file(path, include_secrets=include_secrets)

        masked = "" if include_secrets else self.tr(" (passwords masked)")
        self.run_operation(self.tr("Export to {name}").format(name=path.name), work,
                           on_ok=lambda n: self.statusBar().showMessage(
                               self.tr("Exported {n} cameras to {path}{masked}").format(n=n, path=path, masked=masked), 10000))

    def show_message(self, title: str, text: str, icon_kind: QMessageBox.Icon = QMessageBox.Icon.Information) -> None:
        box = QMessageBox(icon_kind, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()

    def start_all(self) -> None:
        self.run_operation(self.tr("Start all"), lambda: self.station.autostart(actor=ACTOR))

    def stop_all(self) -> None:
        self.run_operation(self.tr("Stop all"), lambda: self.station.stop_all(actor=ACTOR))

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
        self._update_tray_tooltip()

    def show_api_status(self, status: Any) -> None:
        """A local API that should run and does not is said in the status bar (not only in the log)."""
        failed = bool(getattr(status, "failed", False))
        self.api_label.setVisible(failed)
        if failed:
            self.api_label.setText(self.tr("⚠ API not running: port {port} taken").format(port=status.port)
                                   if "in use" in (status.error or "") else self.tr("⚠ API not running"))
            self.api_label.setToolTip(self.tr("The local control API is not running: {error}. "
                                              "Pick another port in Settings (Ctrl+,).").format(error=status.error))

    def _on_alert_event(self, ev: Any) -> None:
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
        self.statusBar().showMessage(self.tr("Alert: {title}: {msg}").format(title=title, msg=msg), 10000)
        self.refresh_status()

    def _on_state_event(self, ev: Any) -> None:
        data = ev.data
        if getattr(data, "kind", None) == "failed":
            name = self._name(ev.camera_id) if ev.camera_id is not None else self.tr("a camera")
            detail = getattr(data, "detail", None) or {}
            reason = detail.get("reason") if isinstance(detail, dict) else None
            self.notifier.notify(self.tr("{name} failed").format(name=name), str(reason or self.tr("the worker keeps failing; see its logs")),
                                 "critical")

    def _raise_window(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _on_busy(self, n: int) -> None:
        self.busy_label.setText(self.tr("⟳ {n} running").format(n=n) if n else "")

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
        columns = s.value("table/header")
        if isinstance(columns, QByteArray) and not columns.isEmpty():
            self.table.horizontalHeader().restoreState(columns)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("wall/grid", self.wall.grid)
        s.setValue("window/tab", self.tabs.currentIndex())
        s.setValue("table/header", self.table.horizontalHeader().saveState())
        s.sync()


#: started cameras that should have video and do not (the tray names them)
_NO_VIDEO = frozenset({"source_down", "no_frames", "stalled", "backoff", "failed"})


class LazyPage(QWidget):
    """A tab's placeholder that builds its page the first time it is shown."""

    def __init__(self, build: Callable[[], QWidget], name: str):
        super().__init__()
        self._build = build
        self._name = name
        self.page: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def ensure(self) -> QWidget:
        if self.page is None:
            self.page = self._build()
            self.page.setObjectName(self._name)
            self._layout.addWidget(self.page)
        return self.page

    def showEvent(self, event: QShowEvent) -> None:
        self.ensure()
        super().showEvent(event)


_PAGE_ICONS = {"cameras": "table", "wall": "wall", "charts": "charts", "alerts": "alerts", "rules": "rules",
               "rollout": "rollout"}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
