"""Qt-free helpers that turn station values into the short texts the window shows."""

from __future__ import annotations

import time

from app.domain import CameraState
from app.domain.operations import CameraStatus

#: background colours of the state cells and tile badges (hex, readable on light and dark themes)
STATE_COLOURS: dict[str, str] = {
    CameraState.INACTIVE: "#9e9e9e",
    CameraState.STOPPED: "#bdbdbd",
    CameraState.STARTING: "#64b5f6",
    CameraState.RUNNING: "#66bb6a",
    CameraState.STALLED: "#ffa726",
    CameraState.BACKOFF: "#ffca28",
    CameraState.STOPPING: "#90caf9",
    CameraState.FAILED: "#ef5350",
}

LIVE_STATES = frozenset({CameraState.RUNNING, CameraState.STALLED})


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "#bdbdbd")


#: what the operator sees about a camera: is video arriving? (the key, the colour)
VIEW_COLOURS: dict[str, str] = {
    "live": "#66bb6a",          # running, frames arriving: the only green
    "no_frames": "#64b5f6",     # running, the source is opening or sent nothing yet
    "source_down": "#ef5350",   # running, the worker cannot reach its source
    "stalled": "#ffa726",
    "starting": "#64b5f6",
    "backoff": "#ffca28",
    "stopping": "#90caf9",
    "failed": "#ef5350",
    "stopped": "#bdbdbd",
    "inactive": "#9e9e9e",
}


def view_state(status: CameraStatus | None) -> str:
    """The state the window shows for a :class:`~app.domain.operations.CameraStatus`.

    The worker's own state says whether a process runs; the operator cares
    whether video arrives. ``running`` becomes ``live`` only while the source
    is up and frames come in; ``source_down`` and ``no_frames`` are not green.
    A camera deactivated on purpose is ``inactive``, whatever its worker did.
    """
    if status is None:
        return "stopped"
    state = str(status.state)
    if state == CameraState.INACTIVE or (not status.active and state == CameraState.STOPPED):
        return "inactive"
    if state == CameraState.RUNNING:
        if status.source == "down":
            return "source_down"
        if status.source != "up" or status.last_frame_age is None:
            return "no_frames"
        return "live"
    return state if state in VIEW_COLOURS else "stopped"


def view_colour(view: str) -> str:
    return VIEW_COLOURS.get(view, "#bdbdbd")


def fmt_fps(fps: float | None) -> str:
    return "" if fps is None else f"{fps:.1f}"


def fmt_motion(motion: float | None, active: bool) -> str:
    if motion is None:
        return ""
    return f"{motion:.3f}{' ●' if active else ''}"


def fmt_duration(seconds: float | None) -> str:
    """``1d 02:03:04`` / ``02:03:04`` / ``03:04``; empty for None."""
    if seconds is None:
        return ""
    s = int(max(0.0, seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours:02d}:{minutes:02d}:{s:02d}"
    if hours:
        return f"{hours:02d}:{minutes:02d}:{s:02d}"
    return f"{minutes:02d}:{s:02d}"


def fmt_clock(ts: float | None) -> str:
    """Local wall-clock time hh:mm:ss of a unix timestamp."""
    if ts is None:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
