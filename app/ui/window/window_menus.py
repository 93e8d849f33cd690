"""The window's actions: menus, toolbar, context menus, keyboard shortcuts and the Help menu."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QToolBar

from app.station.port import StationPort
from app.ui.common.models import CAMERA_ID_ROLE
from app.ui.common.resources import icon
from app.ui.window.dialogs import LogsDialog, ProbeDialog, SnapshotDialog, StatsDialog

if TYPE_CHECKING:
    from app.ui.window.main_window import MainWindow

# the icon of each page's tab and View-menu entry
PAGE_ICONS = {"cameras": "table", "wall": "wall", "charts": "charts", "alerts": "alerts", "rules": "rules",
              "rollout": "rollout", "fleet": "fleet"}


class WindowMenus(QObject):
    """Builds every action of the window (each also a window shortcut), its menus and toolbar, and
    enables the actions that fit the selection."""

    def __init__(self, station: StationPort, window: MainWindow):
        super().__init__(window)
        self.station = station
        self.window = window
        self.actions: dict[str, QAction] = {}
        self.toolbar = self._build_actions()
        self._build_menus()
        window.table.customContextMenuRequested.connect(self._table_menu)
        window.table.doubleClicked.connect(self._table_double_clicked)
        window.wall.menuRequested.connect(self._tile_menu)

    def _action(self, key: str, text: str, slot: Callable[[], object],
                shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
                icon_name: str | None = None, tip: str = "") -> QAction:
        a = QAction(icon(icon_name) if icon_name else icon(key), text, self.window)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        label = tip or text.replace("&", "")
        a.setToolTip(f"{label} ({a.shortcut().toString()})" if shortcut else label)
        a.triggered.connect(lambda _checked=False: slot())
        self.window.addAction(a)
        self.actions[key] = a
        return a

    def _build_actions(self) -> QToolBar:
        w = self.window
        ops = w.camera_actions
        self._action("start", self.tr("&Start"), ops.start_selected, "F5", tip=self.tr("Start the selected cameras"))
        self._action("stop", self.tr("S&top"), ops.stop_selected, "Shift+F5", tip=self.tr("Stop the selected cameras"))
        self._action("restart", self.tr("&Restart"), ops.restart_selected, "Ctrl+R",
                     tip=self.tr("Restart the selected cameras"))
        self._action("start_all", self.tr("Start &all"), ops.start_all, "Ctrl+Shift+F5",
                     tip=self.tr("Start every active camera"))
        self._action("stop_all", self.tr("Stop a&ll"), ops.stop_all, "Ctrl+Shift+F6", tip=self.tr("Stop every camera"))
        self._action("activate", self.tr("&Activate"), ops.activate_selected, "Ctrl+Shift+A",
                     tip=self.tr("Mark the selected cameras active (they autostart)"))
        self._action("deactivate", self.tr("&Deactivate"), ops.deactivate_selected, "Ctrl+Shift+D",
                     tip=self.tr("Stop the selected cameras and mark them inactive"))
        self._action("add", self.tr("Add &camera…"), ops.add_camera_dialog, QKeySequence.StandardKey.New)
        self._action("edit", self.tr("&Edit camera…"), ops.edit_selected_dialog, "F2")
        self._action("remove", self.tr("Re&move camera…"), ops.remove_selected, QKeySequence.StandardKey.Delete)
        self._action("logs", self.tr("&Logs…"), lambda: ops.per_camera_dialog(LogsDialog), "Ctrl+L")
        self._action("snapshot", self.tr("Sna&pshot…"), lambda: ops.per_camera_dialog(SnapshotDialog), "Ctrl+Shift+S")
        self._action("save_clip", self.tr("Save cl&ip"), ops.save_clip_selected, "Ctrl+Shift+L",
                     tip=self.tr("Record a clip of the selected camera now: pre-roll from its buffer + post-roll"))
        self._action("probe", self.tr("Pro&be source…"), lambda: ops.per_camera_dialog(ProbeDialog), "Ctrl+Shift+P")
        self._action("stats", self.tr("Pr&ocess stats…"), lambda: ops.per_camera_dialog(StatsDialog), "Ctrl+Shift+T")
        self._action("import", self.tr("&Import cameras…"), ops.import_dialog, "Ctrl+I")
        self._action("export", self.tr("E&xport cameras…"), ops.export_dialog, "Ctrl+E")
        self._action("quit", self.tr("&Quit"), w.close, QKeySequence.StandardKey.Quit)
        for i, (key, page) in enumerate(w.pages.items(), start=1):
            self._action(f"page_{key}", w.tabs.tabText(w.tabs.indexOf(page)),
                         functools.partial(w.tabs.setCurrentWidget, page), f"Ctrl+{i}", PAGE_ICONS.get(key, key))
        # The platform's Preferences key; Linux desktops have none, so Ctrl+, (as the kiosk uses).
        prefs = QKeySequence(QKeySequence.StandardKey.Preferences)
        self._action("settings", self.tr("S&ettings…"), w.settings_dialog,
                     prefs if not prefs.isEmpty() else QKeySequence("Ctrl+,"), "settings")
        self._action("shortcuts", self.tr("&Keyboard shortcuts"), self.shortcuts_dialog, QKeySequence.StandardKey.HelpContents,
                     "help")
        self._action("about", self.tr("&About Edge Station"), self.about_dialog, None, "app")
        self._action("fullscreen_wall", self.tr("Wall full screen"), w.toggle_fullscreen_wall, "F11", "fullscreen")
        self._action("filter", self.tr("Filter cameras"), w.focus_filter, QKeySequence.StandardKey.Find, "table")

        tb = QToolBar(self.tr("Camera actions"))
        tb.setObjectName("cameraToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for key in ("start", "stop", "restart"):
            tb.addAction(self.actions[key])
        tb.addSeparator()
        tb.addAction(self.actions["start_all"])
        tb.addAction(self.actions["stop_all"])
        tb.addSeparator()
        for key in ("add", "edit", "logs", "snapshot", "probe"):
            tb.addAction(self.actions[key])
        w.addToolBar(tb)
        return tb

    def _build_menus(self) -> None:
        mb = self.window.menuBar()
        m = mb.addMenu(self.tr("&Station"))
        m.addAction(self.actions["start_all"])
        m.addAction(self.actions["stop_all"])
        m.addSeparator()
        m.addAction(self.actions["import"])
        m.addAction(self.actions["export"])
        m.addSeparator()
        m.addAction(self.actions["quit"])
        self.station_menu = m
        self.camera_menu = mb.addMenu(self.tr("&Camera"))
        for key in ("start", "stop", "restart", None, "activate", "deactivate", None, "add", "edit", "remove",
                    None, "logs", "snapshot", "save_clip", "probe", "stats"):
            if key is None:
                self.camera_menu.addSeparator()
            else:
                self.camera_menu.addAction(self.actions[key])
        self.view_menu = mb.addMenu(self.tr("&View"))
        for key in self.window.pages:
            self.view_menu.addAction(self.actions[f"page_{key}"])
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.actions["fullscreen_wall"])
        m.insertAction(self.actions["quit"], self.actions["settings"])
        m.insertSeparator(self.actions["quit"])
        self.help_menu = mb.addMenu(self.tr("&Help"))
        self.help_menu.addAction(self.actions["shortcuts"])
        self.help_menu.addAction(self.actions["about"])

    def shortcut_list(self) -> list[tuple[str, str]]:
        """(action, key) for every action that has a shortcut, in menu order."""
        return [(a.text().replace("&", "").rstrip("…"), a.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
                for a in self.actions.values() if not a.shortcut().isEmpty()]

    def shortcuts_dialog(self) -> QMessageBox:
        rows = "".join(f"<tr><td>{name}</td><td>&nbsp;&nbsp;<b>{key}</b></td></tr>" for name, key in self.shortcut_list())
        box = QMessageBox(QMessageBox.Icon.NoIcon, self.tr("Keyboard shortcuts"), f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self.window)
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
                          QMessageBox.StandardButton.Close, self.window)
        box.setObjectName("aboutDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def update_actions(self) -> None:
        """Enable the actions that fit the station's state and the selection."""
        w = self.window
        ready = w.ready and not w.is_shut_down
        sts = w.selected_statuses() if ready else []
        any_sel = bool(sts)
        act = self.actions
        act["start"].setEnabled(ready and any(s.active and not s.state.is_live for s in sts))
        act["stop"].setEnabled(ready and any(s.state.is_live for s in sts))
        act["restart"].setEnabled(ready and any(s.active for s in sts))
        act["start_all"].setEnabled(ready)
        act["stop_all"].setEnabled(ready)
        act["activate"].setEnabled(ready and any(not s.active for s in sts))
        act["deactivate"].setEnabled(ready and any(s.active for s in sts))
        one = ready and len(sts) == 1
        for key in ("edit", "logs", "snapshot", "probe", "stats"):
            act[key].setEnabled(one)
        act["save_clip"].setEnabled(one and sts[0].state.is_live)
        act["remove"].setEnabled(ready and any_sel)
        for key in ("add", "import", "export"):
            act[key].setEnabled(ready)

    def context_menu_for(self, camera_ids: list[int]) -> QMenu:
        menu = QMenu(self.window)
        for key in ("start", "stop", "restart"):
            menu.addAction(self.actions[key])
        extra = [k for k in ("activate", "deactivate", "logs", "snapshot", "save_clip", "probe", "stats", "edit",
                             "remove")
                 if k in self.actions]
        if extra:
            menu.addSeparator()
            for key in extra:
                menu.addAction(self.actions[key])
        return menu

    def _table_menu(self, pos: QPoint) -> None:
        table = self.window.table
        idx = table.indexAt(pos)
        if idx.isValid() and idx.row() not in {i.row() for i in table.selectionModel().selectedRows()}:
            table.selectRow(idx.row())
        ids = self.window.selected_ids()
        if ids:
            self.context_menu_for(ids).popup(table.viewport().mapToGlobal(pos))

    def _tile_menu(self, camera_id: int, global_pos: QPoint) -> None:
        self.window.select_camera(camera_id)
        self.context_menu_for([camera_id]).popup(global_pos)

    def _table_double_clicked(self, index: QModelIndex) -> None:
        cid = index.data(CAMERA_ID_ROLE)
        if cid is not None and "edit" in self.actions:
            self.actions["edit"].trigger()
