"""The running window's side of "one station per data dir": a local socket that raises it.

:class:`InstanceServer` listens on a ``QLocalServer`` once the station holds
its instance lock, and records the socket's path in the lock file
(``InstanceLock.update(socket=...)``). A second launch reads it
(:func:`app.kiosk.instance.hand_off`), sends ``raise`` and gets ``ok <pid>``
back after this window came forward (un-minimized, raised, activated; a kiosk
goes back to fullscreen).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from app.station.port import StationPort
    from app.ui.window.main_window import MainWindow

log = logging.getLogger("edge_station.ui.instance")

MAX_SOCKET_PATH = 100  # sockaddr_un holds 108 bytes on Linux, 104 on macOS


class InstanceServerError(Exception):
    """The local socket could not be opened (the second launch then only gets the pid)."""


def socket_path(data_dir: Path) -> str:
    """``<data dir>/run/window.sock``, or a per-data-dir name in the temp dir when that path is too long."""
    path = Path(data_dir).resolve() / "run" / "window.sock"
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        return str(path)
    digest = hashlib.sha1(os.fsencode(str(Path(data_dir).resolve()))).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"edge-station-{digest}.sock")


def bring_forward(window: QWidget) -> None:
    """Show ``window`` on top: un-minimize, raise, activate (a window may define its own ``bring_forward``)."""
    own = getattr(window, "bring_forward", None)
    if callable(own):
        own()
        return
    state = window.windowState() & ~Qt.WindowState.WindowMinimized
    window.setWindowState(state | Qt.WindowState.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()


class InstanceServer(QObject):
    """Answers ``raise`` from a second launch by bringing ``window`` forward."""

    raiseRequested = Signal()

    def __init__(self, window: QWidget, *, on_raise: Callable[[], None] | None = None,
                 parent: QObject | None = None):
        super().__init__(parent if parent is not None else window)
        self._window = window
        self._on_raise = on_raise or (lambda: bring_forward(window))
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self.path = ""
        self.requests = 0

    def listen(self, data_dir: Path, lock: Any | None = None) -> str:
        """Listen (replacing a stale socket: whoever holds the lock owns the path) and record it in ``lock``."""
        path = socket_path(data_dir)
        QLocalServer.removeServer(path)
        if not self._server.listen(path):
            raise InstanceServerError(f"cannot listen on {path}: {self._server.errorString()}")
        self.path = self._server.fullServerName()
        if lock is not None:
            lock.update(socket=self.path)
        log.info("window answers second launches on %s", self.path)
        return self.path

    def close(self) -> None:
        if self._server.isListening():
            self._server.close()
            QLocalServer.removeServer(self.path)

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            sock.readyRead.connect(lambda s=sock: self._read(s))
            sock.disconnected.connect(sock.deleteLater)
            if sock.bytesAvailable():
                self._read(sock)

    def _read(self, sock: QLocalSocket) -> None:
        if not sock.canReadLine():
            return
        line = bytes(sock.readLine().data()).decode(errors="replace").strip()
        if line == "raise":
            self.requests += 1
            log.info("a second launch asked this window to come forward")
            self._on_raise()
            self.raiseRequested.emit()
            sock.write(f"ok {os.getpid()}\n".encode())
        else:
            sock.write(b"error unknown request\n")
        sock.flush()
        sock.disconnectFromServer()


def install_instance_server(window: MainWindow, station: StationPort) -> InstanceServer:
    """Listen once the station is open (it then holds the instance lock); for windows with ``stationReady``."""
    server = InstanceServer(window)

    def start() -> None:
        try:
            server.listen(station.paths.data_dir, station.instance_lock)
        except (InstanceServerError, OSError, RuntimeError) as e:
            log.warning("a second launch will not be able to raise this window: %s", e)

    window.stationReady.connect(start)
    return server
