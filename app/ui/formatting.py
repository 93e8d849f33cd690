"""Qt-free helpers that turn station values into the short texts the window shows."""

from __future__ import annotations

import time

from app.domain import CameraState

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
