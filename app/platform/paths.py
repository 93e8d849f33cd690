"""Where the station keeps its files, and which database it uses.

Order of precedence: an explicit argument (``--data-dir`` / ``--db``), then the
environment (``EDGE_STATION_DATA_DIR`` / ``EDGE_STATION_DB``), then the
platform's user data dir (platformdirs) with a SQLite file in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app import APP_NAME
from app.platform.files import make_private_dir

ENV_DATA_DIR = "EDGE_STATION_DATA_DIR"
ENV_DB = "EDGE_STATION_DB"
DB_FILENAME = "station.db"


class PathError(Exception):
    """The data dir cannot be used."""


@dataclass(frozen=True)
class StationPaths:
    data_dir: Path
    db_url: str

    @property
    def run_dir(self) -> Path:
        """Pid files and other per-run state."""
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def ensure(self) -> StationPaths:
        """Create the data dir and its subfolders, or raise :class:`PathError` saying why not."""
        for d in (self.data_dir, self.run_dir, self.log_dir):
            try:
                make_private_dir(d)  # 0700: the database and logs name cameras and hold passwords
            except OSError as e:
                raise PathError(f"cannot create {d}: {e.strerror or e}") from e
        probe = self.data_dir / ".write-test"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            with contextlib.suppress(OSError):
                probe.unlink()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                return self  # writable but full: reads keep working, health says "disk full"
            raise PathError(f"data dir {self.data_dir} is not writable: {e.strerror or e}") from e
        return self


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resolve_paths(data_dir: str | os.PathLike[str] | None = None, db_url: str | None = None) -> StationPaths:
    if data_dir is None:
        data_dir = os.environ.get(ENV_DATA_DIR) or None
    d = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
    url = db_url or os.environ.get(ENV_DB) or sqlite_url(d / DB_FILENAME)
    return StationPaths(d, url)
