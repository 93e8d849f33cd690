"""Kiosk tuning read from the station's settings table (Qt-free).

Keys (table ``settings``; ``kiosk.grid`` and ``kiosk.cycle_s`` are also edited in
the settings dialog):

============================  =========  =============================================
key                           default    meaning
============================  =========  =============================================
``kiosk.grid``                2          tiles per side of the wall (1-4)
``kiosk.cycle_s``             0          seconds between wall pages; 0 = no cycling
``kiosk.popup_s``             20         seconds a camera with a new alert stays fullscreen; 0 = off
``kiosk.popup_severity``      warning    lowest severity that pops a camera up
``kiosk.cursor_idle_s``       3          seconds without mouse movement before the cursor hides
============================  =========  =============================================

A stored value that is out of range falls back to the default and is reported
in :attr:`KioskSettings.problems` (the kiosk logs them): a kiosk must start even
when someone typed a bad value into the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

K_GRID = "kiosk.grid"
K_CYCLE = "kiosk.cycle_s"
K_POPUP = "kiosk.popup_s"
K_POPUP_SEVERITY = "kiosk.popup_severity"
K_CURSOR_IDLE = "kiosk.cursor_idle_s"

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: object) -> int:
    """0 info, 1 warning, 2 critical; anything unknown ranks as warning."""
    text = str(getattr(severity, "value", severity)).lower()
    return SEVERITIES.index(text) if text in SEVERITIES else 1


@dataclass(frozen=True)
class KioskSettings:
    grid: int = 2
    cycle_s: float = 0.0
    popup_s: float = 20.0
    popup_severity: str = "warning"
    cursor_idle_s: float = 3.0
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> KioskSettings:
        """Build from the settings table's key/value pairs (other keys are ignored)."""
        d = cls()
        problems: list[str] = []

        def number(key: str, default: float, ok, what: str) -> float:
            raw = values.get(key)
            if raw is None:
                return default
            try:
                v = float(raw)
            except (TypeError, ValueError):
                v = float("nan")
            if v != v or not ok(v):  # NaN or out of range
                problems.append(f"setting {key}={raw!r} ignored: {what}; using {default:g}")
                return default
            return v

        grid = int(number(K_GRID, d.grid, lambda v: v in (1, 2, 3, 4), "must be 1, 2, 3 or 4"))
        cycle = number(K_CYCLE, d.cycle_s, lambda v: v == 0 or 5 <= v <= 3600,
                       "must be 0 (off) or 5 to 3600 seconds")
        popup = number(K_POPUP, d.popup_s, lambda v: 0 <= v <= 3600, "must be 0 (off) to 3600 seconds")
        idle = number(K_CURSOR_IDLE, d.cursor_idle_s, lambda v: 0.5 <= v <= 3600,
                      "must be 0.5 to 3600 seconds")
        sev = values.get(K_POPUP_SEVERITY, d.popup_severity)
        if str(sev).lower() not in SEVERITIES:
            problems.append(f"setting {K_POPUP_SEVERITY}={sev!r} ignored: must be one of "
                            f"{', '.join(SEVERITIES)}; using {d.popup_severity}")
            sev = d.popup_severity
        return cls(grid=grid, cycle_s=cycle, popup_s=popup, popup_severity=str(sev).lower(),
                   cursor_idle_s=idle, problems=tuple(problems))

    def pops_up(self, severity: object) -> bool:
        """True when an alert of ``severity`` should pop its camera up."""
        return self.popup_s > 0 and severity_rank(severity) >= severity_rank(self.popup_severity)


def load_kiosk_settings(station: Any) -> KioskSettings:
    """Read the kiosk settings of an open station (blocking: call it off the GUI thread)."""
    getter = getattr(station, "get_settings", None)
    if getter is not None:
        stored = dict(getter())
    else:
        with station.store.uow() as uow:
            stored = uow.settings.all()
    return KioskSettings.from_mapping(stored)
