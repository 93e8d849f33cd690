"""The station's identity now lives in :mod:`app.platform.identity` (commands of every part need it)."""

from app.platform.identity import (
    ENV_STATION_NAME,
    ID_FILENAME,
    IdentityError,
    acting_station_id,
    host_name,
    known_station_id,
    open_station_store,
    station_id,
    station_name,
)

__all__ = ["ENV_STATION_NAME", "ID_FILENAME", "IdentityError", "acting_station_id", "host_name",
           "known_station_id", "open_station_store", "station_id", "station_name"]
