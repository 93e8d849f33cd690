"""The station's own log: ``logs/station.log`` in the data dir, rotated by size; warnings also on stderr.

The window and the headless station call :func:`setup_logging` once they know
their data dir; workers keep their own ``logs/camera-<id>.log``. Qt-free.
``EDGE_STATION_LOG_LEVEL`` (DEBUG, INFO, WARNING...) sets the file's level;
INFO by default.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import typing
from pathlib import Path

from app.domain.text import mask_urls
from app.platform.files import PrivateRotatingFileHandler

STATION_LOG = "station.log"
LOG_LEVEL_ENV = "EDGE_STATION_LOG_LEVEL"
MAX_BYTES = 2_000_000
BACKUPS = 3

_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
_STDERR_FORMAT = "edge-station: %(levelname)s: %(message)s"


class _MaskingFormatter(logging.Formatter):
    """Formats as usual, then masks URL passwords (a source may appear in any message)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls(super().format(record))


class _StationFileHandler(PrivateRotatingFileHandler):
    pass


class _StationStderrHandler(logging.StreamHandler[typing.TextIO]):
    pass


_OURS = (_StationFileHandler, _StationStderrHandler)


def setup_logging(log_dir: Path, *, level: str | int | None = None) -> Path:
    """Log to ``log_dir/station.log`` (rotated) and warnings to stderr; returns the file's path.

    A second call replaces the handlers of the first instead of doubling them.
    """
    path = Path(log_dir) / STATION_LOG
    wanted = level if level is not None else os.environ.get(LOG_LEVEL_ENV, "INFO")
    numeric = logging.getLevelName(wanted.upper()) if isinstance(wanted, str) else int(wanted)
    if not isinstance(numeric, int):
        print(f"edge-station: {LOG_LEVEL_ENV}={wanted!r} is not a log level; using INFO", file=sys.stderr)
        numeric = logging.INFO
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _OURS)]:
        root.removeHandler(h)
        h.close()
    fh = _StationFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    fh.setLevel(numeric)
    fh.setFormatter(_MaskingFormatter(_FILE_FORMAT))
    sh = _StationStderrHandler(sys.stderr)
    sh.setLevel(logging.WARNING)
    sh.setFormatter(_MaskingFormatter(_STDERR_FORMAT))
    root.addHandler(fh)
    root.addHandler(sh)
    root.setLevel(min(numeric, logging.WARNING))
    # Alembic says at INFO which plugins it set up and which DDL mode it assumes, on every open;
    # the store logs the migrations it ran itself.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    return path


def teardown_logging() -> None:
    """Remove and close what :func:`setup_logging` added (tests; a process that keeps running)."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _OURS)]:
        root.removeHandler(h)
        h.close()
    logging.getLogger("alembic").setLevel(logging.NOTSET)


def station_log_path() -> Path | None:
    """The file :func:`setup_logging` writes to, or None when it was not called."""
    for h in logging.getLogger().handlers:
        if isinstance(h, _StationFileHandler):
            return Path(h.baseFilename)
    return None
