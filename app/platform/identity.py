"""Who this station is: a stable id kept in its data dir (a rename keeps it) and a name.

The name: ``--station NAME``, else ``$EDGE_STATION_NAME``, else the host name. The id is a
uuid written once to ``<data dir>/station-id``; a data dir copied to a new box keeps its
identity, a new data dir is a new station.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain.fleet import StationNameError, check_station_name
from app.platform.files import private_opener

if TYPE_CHECKING:
    from app.store import Store
    from app.store.stations import StationRegistry

ENV_STATION_NAME = "EDGE_STATION_NAME"
ID_FILENAME = "station-id"


class IdentityError(Exception):
    """The station's identity cannot be read or made; the message says what to do."""


def host_name() -> str:
    return socket.gethostname() or "localhost"


def station_name(explicit: str | None = None) -> str:
    """This station's name (:class:`IdentityError` when the chosen one cannot be a name)."""
    raw = explicit if explicit is not None else (os.environ.get(ENV_STATION_NAME) or host_name())
    source = "--station" if explicit is not None else (ENV_STATION_NAME if os.environ.get(ENV_STATION_NAME)
                                                       else "the host name")
    try:
        return check_station_name(raw)
    except StationNameError as e:
        raise IdentityError(f"{e} (from {source})") from None


def station_id(data_dir: Path) -> str:
    """The station's id from ``data_dir/station-id``, written on first use."""
    path = data_dir / ID_FILENAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return _new_id(path)
    except OSError as e:
        raise IdentityError(f"cannot read the station id {path}: {e.strerror or e}") from None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise IdentityError(f"the station id file {path} does not hold a station id ({text[:40]!r}): restore it "
                            "from a backup, or remove it to make this a new station") from None


def _new_id(path: Path) -> str:
    new = str(uuid.uuid4())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", opener=private_opener) as f:
            f.write(new + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never replaces an id another process wrote meanwhile
        except FileExistsError:
            return station_id(path.parent)
        except (PermissionError, NotImplementedError):  # a file system without hard links
            os.replace(tmp, path)
    except OSError as e:
        raise IdentityError(f"cannot write the station id {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return new


def known_station_id(data_dir: Path) -> str | None:
    """The data dir's station id if it has one already (never writes; None when it has none or it is unreadable)."""
    try:
        return str(uuid.UUID((data_dir / ID_FILENAME).read_text(encoding="utf-8").strip()))
    except (OSError, ValueError):
        return None


def open_station_store(db_url: str, data_dir: Path, explicit_name: str | None = None) -> Store:
    """The database, opened and migrated, for the station a command acts for (:func:`acting_station_id`)."""
    from app.store import open_store
    from app.store.stations import StationRegistry

    store = open_store(db_url)
    try:
        return store.for_station(acting_station_id(StationRegistry(store), data_dir, explicit_name))
    except BaseException:
        store.dispose()
        raise


def acting_station_id(registry: StationRegistry, data_dir: Path, explicit_name: str | None = None) -> str:
    """The station a command run on this box acts for: the one ``--station NAME`` (else
    ``$EDGE_STATION_NAME``) names when it is registered, else the data dir's own station (the one
    ``edge-station`` started with this data dir is, or will be)."""
    name = explicit_name if explicit_name is not None else (os.environ.get(ENV_STATION_NAME) or None)
    if name is not None:
        info = registry.by_name(station_name(name))
        if info is not None:
            return info.id
    return station_id(data_dir)


__all__ = ["ENV_STATION_NAME", "ID_FILENAME", "IdentityError", "acting_station_id", "host_name",
           "known_station_id", "open_station_store", "station_id", "station_name"]
