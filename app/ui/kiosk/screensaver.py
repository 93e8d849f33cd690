"""Keep the screen saver off while the kiosk shows (freedesktop ``org.freedesktop.ScreenSaver``).

``Inhibit(app, reason) -> cookie`` on the session bus asks the desktop not to
blank the screen. The desktop keeps the inhibition for as long as the caller's
bus connection lives (GNOME's and KDE's services drop it when the connection
closes), so a one-shot ``gdbus call`` or ``dbus-send`` would be undone the
moment that process exits. The inhibitor therefore holds a private QtDBus
connection for the kiosk's lifetime and releases by closing it.

When there is no session bus, no such service, or the call fails, it says so
in the log (``edge_station.kiosk``) and the kiosk carries on.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:  # an optional Qt module: imported where it is used, see inhibit()
    from PySide6.QtDBus import QDBusConnection, QDBusPendingCallWatcher

log = logging.getLogger("edge_station.kiosk")

SERVICE = "org.freedesktop.ScreenSaver"
PATH = "/org/freedesktop/ScreenSaver"
INTERFACE = "org.freedesktop.ScreenSaver"
CALL_TIMEOUT_MS = 3000

_names = itertools.count(1)


class ScreenSaverInhibitor(QObject):
    """Inhibits the screen saver asynchronously; ``state`` is ``idle``, ``pending``,
    ``inhibited``, ``unavailable`` or ``released``; ``reason`` says why it is unavailable."""

    stateChanged = Signal(str)

    def __init__(self, app_name: str = "Edge Station", reason: str = "kiosk mode: camera wall",
                 *, bus_address: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.app_name = app_name
        self.why = reason
        self.bus_address = bus_address  # None: the session bus
        self.state = "idle"
        self.reason = ""
        self.cookie: int | None = None
        self.unique_name = ""
        self._conn_name = f"edge-station-inhibit-{next(_names)}"
        self._conn: QDBusConnection | None = None
        self._watcher: QDBusPendingCallWatcher | None = None

    # ------------------------------------------------------------ public

    def inhibit(self) -> None:
        """Ask the desktop (answers arrive later; watch ``stateChanged``)."""
        if self.state in ("pending", "inhibited"):
            return
        try:
            from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusPendingCallWatcher
        except ImportError as e:  # QtDBus is Qt's optional D-Bus module (not in every build of Qt): no inhibition
            self._unavailable(f"Qt's D-Bus module is missing ({e})")
            return
        if self.bus_address is not None:
            conn = QDBusConnection.connectToBus(self.bus_address, self._conn_name)
        else:
            conn = QDBusConnection.connectToBus(QDBusConnection.BusType.SessionBus, self._conn_name)
        if not conn.isConnected():
            err = conn.lastError()
            detail = err.message() if err.isValid() else "no address in DBUS_SESSION_BUS_ADDRESS"
            del conn
            QDBusConnection.disconnectFromBus(self._conn_name)
            self._unavailable(f"no D-Bus session bus ({detail})")
            return
        self._conn = conn
        self.unique_name = conn.baseService()
        msg = QDBusMessage.createMethodCall(SERVICE, PATH, INTERFACE, "Inhibit")
        msg.setArguments([self.app_name, self.why])
        pending = conn.asyncCall(msg, CALL_TIMEOUT_MS)
        self._watcher = QDBusPendingCallWatcher(pending, self)
        self._watcher.finished.connect(self._answered)
        self._set_state("pending")

    def release(self) -> None:
        """Give the inhibition back by closing the private connection (idempotent)."""
        was = self.state
        self._drop_connection()
        if was in ("pending", "inhibited"):
            log.info("screen saver allowed again (inhibition released)")
            self._set_state("released")

    # ------------------------------------------------------------ internals

    def _answered(self, watcher: QDBusPendingCallWatcher) -> None:
        reply = watcher.reply()
        watcher.deleteLater()
        self._watcher = None
        if self.state != "pending":
            return
        from PySide6.QtDBus import QDBusMessage

        if reply.type() == QDBusMessage.MessageType.ReplyMessage and reply.arguments():
            self.cookie = int(reply.arguments()[0])
            log.info("screen saver inhibited through %s (cookie %s)", SERVICE, self.cookie)
            self._set_state("inhibited")
            return
        name = reply.errorName()
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            why = f"the desktop offers no {SERVICE} service on the session bus"
        else:
            why = f"{SERVICE}.Inhibit failed: {name or 'no answer'}: {reply.errorMessage()}"
        self._drop_connection()
        self._unavailable(why)

    def _unavailable(self, why: str) -> None:
        self.reason = why
        from PySide6.QtGui import QGuiApplication

        hint = ""
        if QGuiApplication.platformName() == "xcb":
            hint = " (turn blanking off in the X session instead, e.g. 'xset s off -dpms')"
        log.warning("screen saver NOT inhibited: %s; the screen may blank while the kiosk shows%s", why, hint)
        self._set_state("unavailable")

    def _drop_connection(self) -> None:
        if self._watcher is not None:
            self._watcher.deleteLater()
            self._watcher = None
        if self._conn is not None:
            from PySide6.QtDBus import QDBusConnection

            self._conn = None
            QDBusConnection.disconnectFromBus(self._conn_name)
        self.cookie = None

    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state)

