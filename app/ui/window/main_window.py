"""The main window: camera table and wall (more pages are added as the station grows).

The window reads the station's live snapshot on one 2 Hz timer and runs every
operation on a :class:`~app.ui.common.tasks.TaskRunner` thread; answers and errors come
back on the GUI thread and show in the status bar.

It builds and wires its collaborators: :class:`~app.ui.window.camera_actions.CameraActions`
(what is done to cameras), :class:`~app.ui.window.window_status.WindowStatus` (status bar, tray,
notices), :class:`~app.ui.window.window_menus.WindowMenus` (actions, menus, shortcuts, Help) and
:class:`~app.ui.window.window_state.WindowState` (its saved state); their public calls are also
the window's.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.domain.operations import CameraStatus
from app.station.port import StationPort
from app.ui.common.bridge import StationBridge
from app.ui.common.models import SORT_ROLE, CameraTableModel, StateDelegate
from app.ui.common.resources import icon
from app.ui.common.tasks import TaskRunner
from app.ui.fleet.page import FleetBridge, FleetPage
from app.ui.wall.camera_wall import CameraWall
from app.ui.window.camera_actions import CameraActions, describe_error
from app.ui.window.sysinfo import StatusSample
from app.ui.window.window_menus import PAGE_ICONS, WindowMenus
from app.ui.window.window_state import WINDOW_STATE_FILE, WindowState, window_settings
from app.ui.window.window_status import WindowStatus

if TYPE_CHECKING:
    from app.fleet.view import FleetSnapshot

__all__ = ["APP_NAME", "ORG_NAME", "WINDOW_STATE_FILE", "LazyPage", "MainWindow", "describe_error",
           "window_settings"]

log = logging.getLogger("edge_station.ui")

ORG_NAME = "EdgeStation"
APP_NAME = "edge-station"
REFRESH_MS = 500  # 2 Hz live view
STATUS_MS = 1000
#: while the station opens, how often the window looks whether its cameras are loaded yet
EARLY_POLL_MS = 30


class MainWindow(QMainWindow):
    """Edge Station's operator window. Takes the station facade; never touches the store."""

    stationReady = Signal()
    #: the camera table shows the station's live snapshot for the first time (its row count)
    camerasShown = Signal(int)
    operationFinished = Signal(str, bool, str)  # label, ok, message

    def __init__(self, station: StationPort, *, settings: QSettings | None = None,
                 tasks: TaskRunner | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.settings = settings if settings is not None else window_settings(station)
        self.tasks = tasks if tasks is not None else TaskRunner(self)
        self.bridge = StationBridge(station, self)
        self.ready = False
        #: the table and the wall show the station's live snapshot (before ``ready`` while it opens)
        self.live = False
        self.open_error: BaseException | None = None
        self._refresh_pending = False
        self._shut_down = False
        self.last_message = ""
        self._select_after_refresh: int | None = None
        self.camera_defaults: dict[str, Any] = {}
        self.import_progress: QProgressDialog | None = None
        self.remove_prompt: QMessageBox | None = None  # the remove confirmation while it is open

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
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((0, 180), (1, 150), (2, 70), (3, 80), (4, 90), (5, 70)):
            self.table.setColumnWidth(col, width)
        self.table.setItemDelegateForColumn(CameraTableModel.COL_STATE, StateDelegate(self.table))

        self.wall = CameraWall(self._preview_path)
        self.wall.setObjectName("cameraWall")

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
        self._add_optional_pages()
        self.fleet_bridge = FleetBridge(self)
        self.fleet_bridge.snapshotChanged.connect(self._fleet_changed)
        self._add_fleet_page()
        self.setCentralWidget(self.tabs)

        # ---- camera operations; actions, menus and shortcuts
        self.camera_actions = CameraActions(station, self)
        self.menus = WindowMenus(station, self)
        self.window_actions = self.menus.actions
        self.toolbar = self.menus.toolbar
        self.station_menu, self.camera_menu = self.menus.station_menu, self.menus.camera_menu
        self.view_menu, self.help_menu = self.menus.view_menu, self.menus.help_menu

        # ---- status bar, tray and notifications
        self.status = WindowStatus(station, self)
        self.statusBar().showMessage(self.tr("Opening the station…"))
        self.busy_label, self.load_label = self.status.busy_label, self.status.load_label
        self.alerts_label, self.rollout_label = self.status.alerts_label, self.status.rollout_label
        self.api_label, self.notifier = self.status.api_label, self.status.notifier

        # ---- the public calls the collaborators serve
        ops = self.camera_actions
        self.run_operation, self.start_all, self.stop_all = ops.run_operation, ops.start_all, ops.stop_all
        self.start_camera, self.stop_camera, self.restart_camera = ops.start_camera, ops.stop_camera, ops.restart_camera
        self.start_selected, self.stop_selected = ops.start_selected, ops.stop_selected
        self.restart_selected = ops.restart_selected
        self.activate_selected, self.deactivate_selected = ops.activate_selected, ops.deactivate_selected
        self.add_camera_dialog, self.edit_camera_dialog = ops.add_camera_dialog, ops.edit_camera_dialog
        self.edit_selected_dialog = ops.edit_selected_dialog
        self.remove_selected, self.remove_cameras = ops.remove_selected, ops.remove_cameras
        self.save_clip_selected, self.open_camera_dialog = ops.save_clip_selected, ops.open_camera_dialog
        self.import_dialog, self.import_cameras = ops.import_dialog, ops.import_cameras
        self.export_dialog, self.export_cameras = ops.export_dialog, ops.export_cameras
        self.refresh_status, self.show_status = self.status.refresh_status, self.status.show_status
        self.show_api_status = self.status.show_api_status
        self.shortcut_list, self.shortcuts_dialog = self.menus.shortcut_list, self.menus.shortcuts_dialog
        self.about_dialog, self.context_menu_for = self.menus.about_dialog, self.menus.context_menu_for
        self.update_actions = self.menus.update_actions
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.update_actions())

        # ---- timers and events
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.bridge.stateChanged.connect(lambda _ev: self.schedule_refresh())
        self.bridge.camerasChanged.connect(self.schedule_refresh)
        self.bridge.settingsChanged.connect(self._settings_changed)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(STATUS_MS)
        self.status_timer.timeout.connect(self.refresh_status)
        # While the station opens: show its cameras as soon as it has loaded them and its supervisor
        # runs, instead of after the rest of the open (API, autostart); see open_station.
        self._early_timer = QTimer(self)
        self._early_timer.setInterval(EARLY_POLL_MS)
        self._early_timer.timeout.connect(self._show_cameras_early)

        self.state = WindowState(self.settings)
        self.state.restore(self)
        # The Fleet page was the one shown last time: show it again once the fleet has more than one station.
        self._fleet_wanted = self.tabs.currentWidget() is self.pages["fleet"]
        self._show_fleet_page(False)
        self.update_actions()

    @property
    def status_sample(self) -> StatusSample | None:
        """The last status-bar sample (load, alerts, rollout stage)."""
        return self.status.status_sample

    @property
    def video_summary(self) -> str:
        """What the tray says of the cameras' video."""
        return self.status.video_summary

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

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
            self.tabs.addTab(holder, icon(PAGE_ICONS.get(key, key)), title)

    def _add_fleet_page(self) -> None:
        """The Fleet page: built when first shown, and in the tabs only while the database holds more
        than one station (see :meth:`_fleet_changed`)."""

        holder = LazyPage(lambda: FleetPage(self.fleet_bridge), "fleetPage")
        self.pages["fleet"] = holder
        self.tabs.addTab(holder, icon(PAGE_ICONS.get("fleet", "fleet")), self.tr("Fleet"))

    @property
    def fleet_page_shown(self) -> bool:
        """Whether the Fleet page is in the window's tabs (the database holds more than one station)."""
        return self.tabs.isTabVisible(self.tabs.indexOf(self.pages["fleet"]))

    def _show_fleet_page(self, shown: bool) -> None:
        holder = self.pages["fleet"]
        index = self.tabs.indexOf(holder)
        action = self.menus.actions["page_fleet"]  # its View-menu entry and shortcut
        action.setVisible(shown)
        action.setEnabled(shown)
        if shown == self.tabs.isTabVisible(index):
            return
        if not shown and self.tabs.currentWidget() is holder:
            self.tabs.setCurrentWidget(self.cameras_page)
        self.tabs.setTabVisible(index, shown)
        if shown and self._fleet_wanted:
            self._fleet_wanted = False
            self.tabs.setCurrentWidget(holder)

    def _fleet_changed(self, snap: FleetSnapshot) -> None:
        """A fleet snapshot (GUI thread): the page is in the tabs while the database holds more than one
        station; a read that failed keeps it as it was."""
        if snap.error is None:
            self._show_fleet_page(snap.multi)

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

    def show_message(self, title: str, text: str, icon_kind: QMessageBox.Icon = QMessageBox.Icon.Information) -> None:
        box = QMessageBox(icon_kind, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()

    # ------------------------------------------------------------ station lifecycle

    def open_station(self) -> None:
        """Open the station (migrations, autostart) off the GUI thread; the window is usable meanwhile.

        The camera table fills from the station's live snapshot as soon as the station has loaded its
        cameras (its supervisor runs by then), while the open goes on with the local API and the
        autostart; operations are offered once the open is done."""
        self.bridge.attach()
        self._early_timer.start()
        self.tasks.submit("open station", self.station.open,
                          on_ok=lambda _r: self._on_station_opened(),
                          on_error=self._on_station_open_failed)

    def _show_cameras_early(self) -> None:
        # cameras() is the loaded list (a lock, no database, no import): empty until the open loaded it
        if self._shut_down or self.live or not self.station.cameras():
            return
        self._early_timer.stop()
        self.refresh()

    def _went_live(self) -> None:
        if not self.live:
            self.live = True
            self._early_timer.stop()
            self.refresh_timer.start()
            self.camerasShown.emit(self.model.rowCount())

    def _on_station_opened(self) -> None:
        if self._shut_down:
            return
        self.ready = True
        self.refresh()
        self._went_live()
        self.status.start_sampling()
        self.load_camera_defaults()
        self.refresh_status()
        self.status_timer.start()
        fleet = self.station.fleet_view()
        if fleet is not None:
            self.fleet_bridge.attach(fleet)  # reads the registry at the heartbeat interval while the window is open
        self.update_actions()
        n = len(self.model.statuses())
        self.statusBar().showMessage(self.tr("Station open: {n} cameras").format(n=n), 5000)
        self.stationReady.emit()

    def _on_station_open_failed(self, err: BaseException) -> None:
        self.open_error = err
        self._early_timer.stop()
        self.refresh_timer.stop()
        log.error("the station could not open: %s", err, exc_info=err)
        self.statusBar().showMessage(self.tr("The station could not open: {0}").format(describe_error(err)))
        self.show_message(self.tr("Edge Station cannot start"),
                          self.tr("The station could not open:\n{err}\n\nRun 'edge-station doctor' for a check of this machine, or see the log.").format(err=err), QMessageBox.Icon.Critical)

    def shutdown(self) -> None:
        """Stop timers and event delivery; the caller closes the station afterwards."""
        if self._shut_down:
            return
        self._shut_down = True
        self.state.save(self)
        self.refresh_timer.stop()
        self.status_timer.stop()
        self._early_timer.stop()
        for holder in self.pages.values():
            page = holder.page if isinstance(holder, LazyPage) else holder
            stop = getattr(page, "shutdown", None)
            if stop is not None:
                stop()
        self.notifier.hide()
        self.wall.shutdown()
        self.fleet_bridge.detach()
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
        return self.station.preview_path(camera_id) if self.ready or self.live else None

    def schedule_refresh(self) -> None:
        """Refresh once the event loop is idle (many events in a burst make one refresh)."""
        if not self._refresh_pending and (self.ready or self.live):
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """Pull the station's snapshot into the table and the wall (cheap; no operations)."""
        self._refresh_pending = False
        if self._shut_down:
            return
        statuses = self.station.live_status()
        if not statuses and not self.ready:
            return  # the station is not there yet (or closed again while opening)
        sources = {c.id: c.source for c in self.station.cameras() if c.id is not None}
        self.model.update(statuses, sources)
        self.wall.set_statuses(statuses)
        if self._select_after_refresh is not None and self.model.row_of(self._select_after_refresh) >= 0:
            self.select_camera(self._select_after_refresh)
            self._select_after_refresh = None
        self.status.show_cameras(statuses)
        self.update_actions()
        self._went_live()

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

    def select_after_refresh(self, camera_id: int | None) -> None:
        """Select this camera once the table shows it (a camera just added or edited)."""
        self._select_after_refresh = camera_id

    def selected_statuses(self) -> list[CameraStatus]:
        return [s for cid in self.selected_ids() if (s := self.model.status(cid)) is not None]


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
