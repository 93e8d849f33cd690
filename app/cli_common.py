"""What every ``edge-station`` command module shares: the exit codes, :class:`CliError` and the
``--data-dir``/``--db``/``--station`` options. A leaf module, so that ``app.cli`` and the feature commands
(``app.api.cli``, ...) can both import it without importing each other.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1        # an operation failed
EXIT_USAGE = 2        # bad arguments or bad input file
EXIT_DATABASE = 3     # database cannot be opened, migrated, or is newer than the app
EXIT_DATA_DIR = 4     # data dir cannot be created or written
EXIT_CHECK_FAILED = 5  # doctor found a problem
EXIT_ALREADY_RUNNING = 6  # a station already runs on this data dir


class CliError(Exception):
    """A failure the user can act on: one line on stderr and the exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CommonArgs:
    """The options :func:`add_common` and ``--api-port`` add, typed (None: not given)."""

    data_dir: str | None = None
    db: str | None = None
    station: str | None = None
    api_port: int | None = None

    def where(self) -> tuple[str | None, str | None]:
        """``(data_dir, db)``, as ``app.platform.paths.resolve_paths`` takes them."""
        return self.data_dir, self.db


def common_args(args: argparse.Namespace) -> CommonArgs:
    """What the command line gave of the common options (they are left out of the namespace when
    not given, so that a subcommand's default does not hide the top-level option)."""
    given = vars(args)
    return CommonArgs(data_dir=given.get("data_dir"), db=given.get("db"), station=given.get("station"),
                      api_port=given.get("api_port"))


def add_common(p: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--db`` and ``--station`` (left out of the namespace when not given)."""
    p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="where the station keeps its database, logs and run files "
                        "(default: $EDGE_STATION_DATA_DIR or the platform's user data dir)")
    p.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                   help="SQLAlchemy database URL (default: $EDGE_STATION_DB or a SQLite file in the data dir)")
    p.add_argument("--station", metavar="NAME", default=argparse.SUPPRESS,
                   help="this station's name in its fleet (default: $EDGE_STATION_NAME or the host name)")
