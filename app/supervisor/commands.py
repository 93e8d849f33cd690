"""Handing work to the supervisor thread: a command queue, a wake-up pipe and futures.

Public methods of the supervisor called from other threads enqueue a command, wake the
thread through the pipe and wait on a future; on the supervisor thread itself a command
runs at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from app.supervisor.model import SupervisorError

__all__ = ["COMMAND_TIMEOUT", "CommandQueue"]

COMMAND_TIMEOUT = 30.0

T = TypeVar("T")
_Command = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class CommandQueue:
    """Commands for one thread (``owner``, set once it runs) and the pipe that wakes it."""

    def __init__(self) -> None:
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self.owner: threading.Thread | None = None
        self.wake_r = -1
        self.wake_w = -1

    def open(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def close(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def on_owner(self) -> bool:
        return threading.current_thread() is self.owner

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        if self.on_owner:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)
            return fut
        if self.owner is None or not self.owner.is_alive():
            raise SupervisorError("supervisor is not running (start() it first, or it was shut down)")
        self._commands.put((fn, args, fut))
        self.wake()
        return fut

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.wait(self.submit(fn, *args), COMMAND_TIMEOUT, fn.__name__.lstrip("_"))

    def refuse_on_owner(self, what: str) -> None:
        if self.on_owner:
            raise SupervisorError(
                f"{what} waits for the supervisor thread and cannot be called from a "
                "supervisor callback; hand it to another thread"
            )

    def wait(self, fut: Future[T], timeout: float, what: str) -> T:
        if self.on_owner and not fut.done():
            raise SupervisorError(f"{what}: cannot wait for completion on the supervisor thread")
        try:
            return fut.result(timeout)
        except FutureTimeout as exc:
            raise SupervisorError(f"{what}: no answer from the supervisor thread within {timeout:.0f} s") from exc

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.wake_w, b"\0")

    def clear_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 4096):
                pass

    def drain(self) -> None:
        """Run every queued command (on the owner thread)."""
        while True:
            try:
                fn, args, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

    def refuse_pending(self, message: str) -> None:
        while True:
            try:
                _fn, _args, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.done():
                fut.set_exception(SupervisorError(message))
