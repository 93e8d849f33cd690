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
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: msvcrt locking
    fcntl = None  # type: ignore[assignment]


class AlreadyRunning(Exception):
    def __init__(self, holder: dict):
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

    def acquire(self, info: dict | None = None) -> None:
        """Take the lock or raise :class:`AlreadyRunning` with what the holder wrote."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise AlreadyRunning(holder) from None
        payload = json.dumps({"pid": os.getpid(), **(info or {})}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        self._fd = fd

    def update(self, **info) -> None:
        assert self._fd is not None
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

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        return json.loads(raw.decode() or "{}")
    except (OSError, ValueError):
        return {}
