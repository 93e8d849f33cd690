"""The one bridge from the station's background-thread events to Qt signals.

``Station.subscribe`` delivers :class:`~app.station.StationEvent` on whatever
thread produced it. The bridge lives in the GUI thread; emitting its signals
from another thread makes Qt queue them, so every slot runs on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.station.port import StationPort

log = logging.getLogger("edge_station.ui.bridge")


class StationBridge(QObject):
    """Turns station events into queued Qt signals (one per event kind, plus ``event`` for all)."""

    stationEvent = Signal(object)  # every StationEvent (not ``event``: that is QObject.event())
    stateChanged = Signal(object)  # StationEvent kind "state" (camera_id, data)
    camerasChanged = Signal()  # the camera list changed (here or in another process)
    alertRaised = Signal(object)  # StationEvent kind "alert"
    settingsChanged = Signal(object)  # StationEvent kind "settings"
    _incoming = Signal(object)

    def __init__(self, station: StationPort, parent: QObject | None = None):
        super().__init__(parent)
        self._station = station
        self._unsubscribe: Callable[[], None] | None = None
        # Explicitly queued: the station calls us from its own threads.
        self._incoming.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)

    def attach(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._station.subscribe(self._on_station_event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_station_event(self, ev: Any) -> None:  # any thread
        try:
            self._incoming.emit(ev)
        except RuntimeError:  # the bridge was deleted while the station still ran
            log.debug("station event after the bridge was deleted", exc_info=True)

    @Slot(object)
    def _dispatch(self, ev: Any) -> None:  # GUI thread
        self.stationEvent.emit(ev)
        kind = getattr(ev, "kind", None)
        if kind == "state":
            self.stateChanged.emit(ev)
        elif kind == "cameras":
            self.camerasChanged.emit()
        elif kind == "alert":
            self.alertRaised.emit(ev)
        elif kind == "settings":
            self.settingsChanged.emit(ev)
