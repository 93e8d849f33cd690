"""Refresh a page on a timer only while it is visible (the alerts, rollout and charts pages)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget


class RefreshWhileVisible(QObject):
    """Calls ``on_show`` (default: ``tick``) when ``page`` shows, then ``tick`` every ``interval_ms``
    until it hides: a page on a hidden tab costs nothing."""

    def __init__(self, page: QWidget, interval_ms: int, tick: Callable[[], object],
                 on_show: Callable[[], object] | None = None):
        super().__init__(page)
        self._page = page
        self._on_show = on_show or tick
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(interval_ms)))
        self.timer.timeout.connect(tick)
        page.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self._page:
            if event.type() == QEvent.Type.Show:
                self._on_show()
                self.timer.start()
            elif event.type() == QEvent.Type.Hide:
                self.timer.stop()
        return False

    def stop(self) -> None:
        self.timer.stop()
