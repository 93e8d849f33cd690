"""Files only the station's user may read, and log files that fail quietly.

The data dir holds camera passwords (the database, exports with ``--include-secrets``)
and log lines about cameras: it is created ``0700`` and its files ``0600``, whatever
the umask. A log file that cannot be written (a full disk) must not flood stderr
with a traceback per line: :class:`PrivateRotatingFileHandler` says so once a
minute on stderr and drops the lines meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
LOG_ERROR_INTERVAL = 60.0  # at most one "cannot write the log" line on stderr per this


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: created 0600, and an older file made 0600 too."""
    fd = os.open(path, flags, PRIVATE_FILE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, PRIVATE_FILE)
    return fd


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700 (a dir of another user is left alone)."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.getuid():
            os.chmod(path, PRIVATE_DIR)


class QuietErrors:
    """Rate-limits "cannot write" reports: the first at once, then one per interval."""

    def __init__(self, interval: float = LOG_ERROR_INTERVAL) -> None:
        self.interval = interval
        self.dropped = 0
        self._last = float("-inf")

    def report(self, what: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        self.dropped += 1
        if now - self._last < self.interval:
            return
        self._last = now
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
        with contextlib.suppress(Exception):
            sys.stderr.write(f"edge-station: cannot write {what} ({detail}); "
                             f"{self.dropped} line(s) dropped; next report in {self.interval:g} s\n")
            sys.stderr.flush()
            self.dropped = 0


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are 0600 and whose write errors are quiet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._quiet = QuietErrors()

    def _open(self):  # type: ignore[no-untyped-def]
        return open(self.baseFilename, self.mode, encoding=self.encoding,  # noqa: SIM115
                    errors=self.errors, opener=private_opener)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        exc = sys.exc_info()[1]
        self._quiet.report(self.baseFilename, exc)
        # A broken stream (ENOSPC left it half-written) is reopened on the next record.
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.close()
            self.stream = None
