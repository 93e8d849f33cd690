"""Run blocking station calls off the GUI thread and deliver the answer back on it.

A small thread pool (``concurrent.futures``) does the work; a queued Qt signal
brings the result or the exception back to the GUI thread, where the callbacks
run. Widgets never block on an operation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger("edge_station.ui.tasks")

OnOk = Callable[[Any], None]
OnError = Callable[[BaseException], None]


@dataclass
class Task:
    """One submitted call; ``cancel_event`` lets long work (a probe, an import) stop early."""

    name: str
    quiet: bool = False
    owner: QObject | None = None
    future: Future[Any] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.future is not None:
            self.future.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class TaskRunner(QObject):
    """Runs callables on worker threads; ``on_ok``/``on_error`` run on the GUI thread."""

    started = Signal(str)  # task name
    finished = Signal(str, bool)  # task name, ok
    busyChanged = Signal(int)  # number of tasks in flight
    _done = Signal(object, object, object, object)  # task, on_ok/on_error, result, error

    def __init__(self, parent: QObject | None = None, max_workers: int = 4):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ui-task")
        self._in_flight = 0
        self._closed = False
        self._done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def closed(self) -> bool:
        """The window is closing: no new task is taken."""
        return self._closed

    def submit(self, name: str, fn: Callable[..., Any], *args: Any,
               on_ok: OnOk | None = None, on_error: OnError | None = None,
               pass_task: bool = False, quiet: bool = False, owner: QObject | None = None) -> Task:
        """Run ``fn(*args)`` (or ``fn(task, *args)`` with ``pass_task``) on a worker thread.

        ``quiet`` tasks (periodic reads) are not counted as busy work. When ``owner``
        (a dialog, say) is deleted before the answer comes, the callbacks are skipped.
        A task cancelled before it started reports ``CancelledError`` to ``on_error``.
        """
        task = Task(name, quiet=quiet, owner=owner)
        if self._closed:
            raise RuntimeError(f"task runner is closed; cannot run {name!r}")
        if not quiet:
            self._in_flight += 1
            self.busyChanged.emit(self._in_flight)
            self.started.emit(name)

        def run() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(task, *args) if pass_task else fn(*args)
            except BaseException as e:  # delivered to on_error on the GUI thread
                error = e
            try:
                self._done.emit(task, (on_ok, on_error), result, error)
            except RuntimeError:
                log.debug("task %s finished after the runner was deleted", name)

        task.future = self._pool.submit(run)

        def cancelled_before_start(fut: Future[Any]) -> None:
            if fut.cancelled():
                try:
                    self._done.emit(task, (on_ok, on_error), None, CancelledError(f"{name} was cancelled"))
                except RuntimeError:
                    pass

        task.future.add_done_callback(cancelled_before_start)
        return task

    @Slot(object, object, object, object)
    def _deliver(self, task: Task, callbacks: tuple[OnOk | None, OnError | None],
                 result: Any, error: BaseException | None) -> None:
        if not task.quiet:
            self._in_flight -= 1
        on_ok, on_error = callbacks
        owner_gone = task.owner is not None and not shiboken6.isValid(task.owner)
        try:
            if owner_gone:  # the dialog that asked is gone: nobody to tell
                if error is not None and not isinstance(error, CancelledError):
                    log.info("task %s failed after its window closed: %s", task.name, error)
            elif error is None:
                if on_ok is not None:
                    on_ok(result)
            elif on_error is not None:
                on_error(error)
            elif not isinstance(error, CancelledError):
                log.error("task %s failed: %s", task.name, error, exc_info=error)
        finally:
            if not task.quiet:
                self.finished.emit(task.name, error is None)
                self.busyChanged.emit(self._in_flight)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; wait for running calls (they may be stopping workers)."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
