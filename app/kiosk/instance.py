"""One station per data dir: a second launch finds the first instead of starting a second supervisor.

The lock is an exclusive ``flock`` on ``run/instance.lock`` held for the life of
the process (the kernel drops it when the process dies, so a crash never
leaves a stale lock). The file also records the holder's pid and the name of
its local control socket, so a second launch can ask the first one to raise
its window.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: msvcrt locking
    fcntl = None  # type: ignore[assignment]


class AlreadyRunning(Exception):
    def __init__(self, holder: dict[str, Any]):
        self.holder = holder
        pid = holder.get("pid", "?")
        super().__init__(f"Edge Station is already running on this data dir (pid {pid})")


@dataclass
class InstanceLock:
    path: Path
    _fd: int | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> InstanceLock:
        return cls(Path(data_dir) / "run" / "instance.lock")

    def acquire(self, info: dict[str, Any] | None = None, *, retry_for: float = 0.2) -> None:
        """Take the lock or raise :class:`AlreadyRunning` with what the holder wrote.

        A :meth:`probe` from another launch holds a shared lock for a moment;
        ``retry_for`` seconds of retries keep that from looking like a running station.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + retry_for
        while True:
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                holder = _read(fd)
                os.close(fd)
                raise AlreadyRunning(holder) from None
        payload = json.dumps({"pid": os.getpid(), **(info or {})}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        self._fd = fd

    @classmethod
    def probe(cls, data_dir: Path) -> dict[str, Any] | None:
        """What the running station on ``data_dir`` wrote (pid, socket...), or None when none runs.

        Takes a shared lock for an instant and never creates the lock file's folder.
        """
        path = cls.for_data_dir(data_dir).path
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if fcntl is None:  # pragma: no cover - no flock: only the holder's record can tell
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read(fd) or {"pid": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def update(self, **info: Any) -> None:
        """Add ``info`` (e.g. ``socket=NAME``) to what a second launch reads."""
        if self._fd is None:
            raise RuntimeError(f"instance lock {self.path} is not held; nothing to update")
        data = {**_read(self._fd), **info}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(data).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        doc = json.loads(raw.decode() or "{}")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


@dataclass(frozen=True)
class Handoff:
    """What a second launch found: the running station, and whether its window came forward."""

    pid: int | None
    raised: bool
    message: str
    exit_code: int


EXIT_RAISED = 0  # the running window was brought forward: the user's wish is met
EXIT_ALREADY_RUNNING = 6  # the same code as ``edge-station``'s documented "already running"


def hand_off(data_dir: Path, *, timeout: float = 3.0) -> Handoff | None:
    """When a station runs on ``data_dir``, ask its window to come forward instead of starting another.

    Returns None when no station runs there. The running window listens on the
    local socket recorded in the lock file (``socket``); the exchange is one
    line each way: ``raise`` -> ``ok <pid>``. Qt-free, so the command line can
    ask before it builds a window.
    """
    holder = InstanceLock.probe(data_dir)
    if holder is None:
        return None
    pid = holder.get("pid")
    where = f"Edge Station is already running on {data_dir} (pid {pid if pid is not None else '?'})"
    path = holder.get("socket")
    if not path:
        return Handoff(pid, False, f"{where} without a window to bring forward (headless, or still starting); "
                                   "stop it first or use another --data-dir", EXIT_ALREADY_RUNNING)
    try:
        answer = _ask(str(path), b"raise\n", timeout)
    except OSError as e:
        return Handoff(pid, False, f"{where}; its window did not answer ({e.strerror or e}); "
                                   "stop it first or use another --data-dir", EXIT_ALREADY_RUNNING)
    if answer.startswith("ok"):
        return Handoff(pid, True, f"{where}; its window was brought forward", EXIT_RAISED)
    return Handoff(pid, False, f"{where}; its window answered {answer!r}; stop it first or use another "
                               "--data-dir", EXIT_ALREADY_RUNNING)


def _ask(path: str, request: bytes, timeout: float) -> str:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(request)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()
