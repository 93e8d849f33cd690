"""Refresh a page on a timer only while it is visible (the alerts, rollout and charts pages)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QHideEvent, QShowEvent


class RefreshWhileVisible:
    """Mixin for a QWidget page (list it before the Qt base): ``_refresh_on_show`` runs when the page
    shows, then ``tick`` every ``interval_ms`` until it hides, so a page on a hidden tab costs nothing.

    A mixin, not a helper object with an event filter: a child QObject that holds its parent page
    makes a reference cycle whose collection can destroy the child twice.
    """

    timer: QTimer

    def _refresh_while_visible(self, interval_ms: int, tick: Callable[[], object],
                               on_show: Callable[[], object] | None = None) -> None:
        self.timer = QTimer(self)  # type: ignore[arg-type]
        self.timer.setInterval(max(1, int(interval_ms)))
        self.timer.timeout.connect(tick)
        self._refresh_on_show = on_show or tick

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[misc]
        self._refresh_on_show()
        self.timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt's name
        super().hideEvent(event)  # type: ignore[misc]
        self.timer.stop()
