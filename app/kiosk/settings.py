"""Kiosk tuning read from the station's settings table (Qt-free).

Keys (table ``settings``; ``kiosk.grid`` and ``kiosk.cycle_s`` are also edited in
the settings dialog):

============================  =========  =============================================
key                           default    meaning
============================  =========  =============================================
``kiosk.grid``                0          tiles per side of the wall (1-4); 0 = a grid that fits every
                                         active camera (up to 4×4, then pages)
``kiosk.cycle_s``             10         seconds between wall pages; 0 = no cycling
``kiosk.popup_s``             20         seconds a camera with a new alert stays fullscreen; 0 = off
``kiosk.popup_severity``      critical   lowest severity that pops a camera up
``kiosk.cursor_idle_s``       3          seconds without mouse movement before the cursor hides
============================  =========  =============================================

A stored value that is out of range falls back to the default and is reported
in :attr:`KioskSettings.problems` (the kiosk logs them): a kiosk must start even
when someone typed a bad value into the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

K_GRID = "kiosk.grid"
K_CYCLE = "kiosk.cycle_s"
K_POPUP = "kiosk.popup_s"
K_POPUP_SEVERITY = "kiosk.popup_severity"
K_CURSOR_IDLE = "kiosk.cursor_idle_s"
#: start the window in kiosk mode even without ``--kiosk`` (read before any window exists)
K_ENABLED = "kiosk.enabled"
#: the window's language: ``en``, ``zh_CN``, or unset/``system`` to follow the system locale
K_LANGUAGE = "ui.language"
LANGUAGES = ("en", "zh_CN")
OP_SETTINGS = "settings.set"  # the audit op of every settings change (as the rollout control writes it)


class LanguageError(ValueError):
    """A language the window does not ship."""


def normalize_language(code: object) -> str | None:
    """``'zh-CN'``/``'zh_cn'``/``'zh'`` -> ``'zh_CN'``; ``''``/``'system'``/None -> None (follow the system)."""
    if code is None:
        return None
    text = str(code).strip().replace("-", "_")
    if not text or text.lower() in ("system", "auto", "default"):
        return None
    for known in LANGUAGES:
        if text.lower() == known.lower():
            return known
    lang = text.split("_")[0].lower()
    if lang == "zh":
        return "zh_CN"
    if lang == "en":
        return "en"
    raise LanguageError(f"language {code!r} is not available; choose one of {', '.join(LANGUAGES)} or 'system'")

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: object) -> int:
    """0 info, 1 warning, 2 critical; anything unknown ranks as warning."""
    text = str(getattr(severity, "value", severity)).lower()
    return SEVERITIES.index(text) if text in SEVERITIES else 1


@dataclass(frozen=True)
class KioskSettings:
    grid: int = 0  # 0: fit every active camera
    cycle_s: float = 10.0
    popup_s: float = 20.0
    popup_severity: str = "critical"
    cursor_idle_s: float = 3.0
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> KioskSettings:
        """Build from the settings table's key/value pairs (other keys are ignored)."""
        d = cls()
        problems: list[str] = []

        def number(key: str, default: float, ok: Callable[[float], bool], what: str) -> float:
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

        grid = int(number(K_GRID, d.grid, lambda v: v in (0, 1, 2, 3, 4), "must be 0 (fit), 1, 2, 3 or 4"))
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

    def grid_for(self, cameras: int) -> int:
        """Tiles per row for ``cameras`` active cameras: the set grid, or the smallest that fits
        them all (more than 16 page, 4×4 at a time)."""
        if self.grid:
            return self.grid
        side = 1
        while side * side < cameras and side < 4:
            side += 1
        return side

    def rows_for(self, cameras: int) -> int:
        """Rows per page: the set grid's, or as few as the cameras need (6 cameras: 3×2)."""
        side = self.grid_for(cameras)
        if self.grid:
            return side
        return max(1, min(side, -(-cameras // side)))

    def pops_up(self, severity: object) -> bool:
        """True when an alert of ``severity`` should pop its camera up."""
        return self.popup_s > 0 and severity_rank(severity) >= severity_rank(self.popup_severity)


def read_startup_settings(db_url: str, data_dir: Path | None = None) -> dict[str, Any]:
    """``kiosk.enabled`` and ``ui.language`` from the database before any window exists: the
    settings of the station of ``data_dir`` (docs/fleet.md), else those of no station yet.

    A SQLite file already at this app's schema is read with the standard
    library (:mod:`app.store.preflight`); anything else opens the store
    (running the migrations, as the station would a moment later). Any problem
    with the database yields ``{}``: the station reports it properly when it opens.
    """
    from app.platform.identity import known_station_id
    from app.store.preflight import preflight

    keys = (K_ENABLED, K_LANGUAGE)
    station = known_station_id(data_dir) if data_dir is not None else None
    pre = preflight(db_url, keys, station_id=station)
    if pre.ready:
        return pre.settings
    from app.store import open_store

    try:
        store = open_store(db_url, station_id=station)
    except Exception:
        return {}
    try:
        with store.uow() as uow:
            return {k: v for k in keys if (v := uow.settings.get(k)) is not None}
    except Exception:
        return {}
    finally:
        store.dispose()


def write_settings(store: Any, values: Mapping[str, Any], *, actor: str, reason: str = "") -> list[str]:
    """Store ``values`` with one audit entry per changed key, in one transaction; returns the changed keys."""
    from app.domain.audit import AuditEntry

    changed = []
    with store.uow() as uow:
        for key, new in values.items():
            old = uow.settings.get(key)
            if old == new:
                continue
            uow.settings.set(key, new)
            uow.audit.add(AuditEntry(op=OP_SETTINGS, outcome="ok", key=key, actor=actor, reason=reason[:80],
                                     detail={"old": old, "new": new}))
            changed.append(key)
        uow.commit()
    return changed


class SettingsSource(Protocol):
    """What the kiosk reads its settings from: an open station (``StationPort`` has this method)."""

    def get_settings(self) -> dict[str, Any]: ...


def load_kiosk_settings(station: SettingsSource) -> KioskSettings:
    """Read the kiosk settings of an open station (blocking: call it off the GUI thread)."""
    return KioskSettings.from_mapping(dict(station.get_settings()))
