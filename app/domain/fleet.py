"""Stations of a fleet: what a station reports about itself, and when it counts as gone.

Pure Python. Every time here is the database server's (``heartbeat_at`` and ``now``), so a
station whose own clock is wrong can neither look alive nor dead because of it; the station's
own clock is kept beside it only to report the skew (docs/fleet.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: a station heartbeats this often by default (seconds)
DEFAULT_HEARTBEAT_INTERVAL = 5.0
#: a running station whose last heartbeat is older than this (seconds, server time) is gone
DEFAULT_GONE_AFTER = 20.0
#: a clock skew larger than this (seconds) is worth saying
SKEW_WORTH_SAYING = 2.0
NAME_MAX = 64


class StationState(StrEnum):
    """What the station's row says (``gone`` is decided from its heartbeat, see :func:`liveness`)."""

    RUNNING = "running"
    STOPPED = "stopped"  # marked on a clean exit
    REPLACED = "replaced"  # its name was taken over by another station after it was gone


class Liveness(StrEnum):
    UP = "up"
    GONE = "gone"  # running by its row, but its heartbeat stopped
    STOPPED = "stopped"
    REPLACED = "replaced"


class StationNameError(ValueError):
    """A station name that cannot be used (empty, too long, control characters)."""


class StationNameTaken(Exception):
    """Another station that is alive holds this name; the message names it and its last heartbeat."""

    def __init__(self, message: str, other: StationInfo):
        super().__init__(message)
        self.other = other


def station_key(name: str) -> str:
    """What makes two station names the same (case-insensitive, as camera and rule names)."""
    return name.strip().casefold()


def check_station_name(name: str) -> str:
    """``name`` stripped, or :class:`StationNameError` saying why it cannot be a station's name."""
    n = name.strip()
    if not n:
        raise StationNameError("a station name cannot be empty")
    if len(n) > NAME_MAX:
        raise StationNameError(f"station name {n[:20]!r}... is {len(n)} characters long; at most {NAME_MAX}")
    if any(not ch.isprintable() for ch in n):
        raise StationNameError(f"station name {n!r} contains control characters")
    return n


@dataclass(frozen=True)
class StationReport:
    """What a station heartbeats: its status at one moment."""

    cameras_up: int = 0
    cameras_total: int = 0
    stages: dict[str, Any] = field(default_factory=dict)  # per rollout track: {"stage": n, "percent": p, ...}
    health: str = "unknown"  # ok | degraded | down | unknown
    problems: tuple[str, ...] = ()
    api: str = ""  # host:port its control API serves on ("" when it serves none): `fleet targets`


@dataclass(frozen=True)
class StationInfo:
    """One station's row, as the registry reads it."""

    id: str
    name: str
    host: str
    pid: int | None
    version: str
    state: StationState
    started_at: datetime
    heartbeat_at: datetime  # database server time
    station_clock_at: datetime | None  # the station's own clock at that heartbeat
    stopped_at: datetime | None
    cameras_up: int
    cameras_total: int
    stages: dict[str, Any]
    health: str
    problems: tuple[str, ...]
    replaced_by: str | None
    api: str = ""  # host:port of its control API at the last heartbeat ("" when none)

    @property
    def skew(self) -> float | None:
        """Seconds the station's clock is ahead of the database server's (negative: behind);
        includes the heartbeat's own round trip, a few ms."""
        if self.station_clock_at is None:
            return None
        return (self.station_clock_at - self.heartbeat_at).total_seconds()

    def age(self, now: datetime) -> float:
        """Seconds since the last heartbeat, by the server's clock ``now``."""
        return (now - self.heartbeat_at).total_seconds()


def liveness(info: StationInfo, now: datetime, gone_after: float) -> Liveness:
    """Up, gone, stopped or replaced at server time ``now``: a running station is gone when its
    last heartbeat is more than ``gone_after`` seconds old (exactly ``gone_after`` is still up)."""
    if info.state is StationState.STOPPED:
        return Liveness.STOPPED
    if info.state is StationState.REPLACED:
        return Liveness.REPLACED
    return Liveness.GONE if info.age(now) > gone_after else Liveness.UP


def may_take_over(other: StationInfo, now: datetime, gone_after: float) -> bool:
    """Whether a new station may take ``other``'s name: it stopped cleanly, was replaced already,
    or its heartbeat is older than ``gone_after``."""
    return liveness(other, now, gone_after) is not Liveness.UP


def check_interval(heartbeat_interval: float, gone_after: float) -> None:
    """Refuse settings under which a healthy station would look gone (ValueError saying why)."""
    for label, v in (("heartbeat interval", heartbeat_interval), ("gone threshold", gone_after)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"the fleet {label} must be a number of seconds above 0, not {v!r}")
    if gone_after < 2 * heartbeat_interval:
        raise ValueError(f"the fleet gone threshold ({gone_after:g} s) must be at least twice the heartbeat "
                         f"interval ({heartbeat_interval:g} s), or a healthy station would look gone")


__all__ = [
    "DEFAULT_GONE_AFTER", "DEFAULT_HEARTBEAT_INTERVAL", "NAME_MAX", "SKEW_WORTH_SAYING", "Liveness", "StationInfo",
    "StationNameError", "StationNameTaken", "StationReport", "StationState", "check_interval", "check_station_name",
    "liveness", "may_take_over", "station_key",
]
