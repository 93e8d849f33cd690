"""The tray icon and desktop notifications (a status-bar fallback where there is no tray)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from app.ui.common.resources import icon


@dataclass(frozen=True)
class Notification:
    title: str
    message: str
    severity: str  # info | warning | critical


_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "critical": QSystemTrayIcon.MessageIcon.Critical,
}


def _warning_icon() -> QIcon:
    from PySide6.QtWidgets import QApplication, QStyle

    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)


class Notifier(QObject):
    """Shows notifications in the system tray when there is one; always records and signals them."""

    notified = Signal(object)  # Notification
    activated = Signal()  # the tray icon was clicked

    def __init__(self, window: QWidget, menu: QMenu | None = None):
        super().__init__(window)
        self.history: list[Notification] = []
        self.tooltip = ""
        self.state = "ok"
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon("app"), window)
            self.tray.setToolTip(self.tr("Edge Station"))
            if menu is not None:
                self.tray.setContextMenu(menu)
            self.tray.activated.connect(self._on_activated)
            self.tray.show()

    @property
    def available(self) -> bool:
        return self.tray is not None

    def set_tooltip(self, text: str) -> None:
        self.tooltip = text
        if self.tray is not None:
            self.tray.setToolTip(text)

    def set_state(self, state: str) -> None:
        """``ok`` or ``down`` (a camera without video): the tray icon shows which."""
        if state == self.state:
            return
        self.state = state
        if self.tray is not None:
            self.tray.setIcon(icon("app") if state == "ok" else _warning_icon())

    def notify(self, title: str, message: str, severity: str = "info", msecs: int = 8000) -> Notification:
        n = Notification(title, message, severity)
        self.history.append(n)
        del self.history[:-200]
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(title, message, _ICONS.get(severity, _ICONS["info"]), msecs)
        self.notified.emit(n)
        return n

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.activated.emit()

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()
