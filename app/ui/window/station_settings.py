"""Qt-free access to the station's stored settings for the settings dialog.

Keys the window owns (table ``settings``): ``kiosk.*``, ``ui.language`` and
``camera_defaults.*``; the API/metrics endpoint keys are ``api.*`` (read by the
API at start). ``ui.language`` and ``kiosk.enabled`` are read when the window
starts (``edge-station language`` / ``edge-station kiosk on|off`` set them too). Rollout
settings go through the router, never through here.

It reads and writes through ``Station.get_settings()`` and
``Station.set_settings(values, actor=...)`` (one audited transaction per save).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.errors import FieldError, ValidationError
from app.kiosk.settings import K_ENABLED, LANGUAGES, LanguageError, normalize_language
from app.kiosk.settings import K_LANGUAGE as K_LANGUAGE  # the dialog reads it from here
from app.station.port import StationPort

K_KIOSK_ENABLED = K_ENABLED
K_API_ENABLED, K_API_HOST, K_API_PORT = "api.enabled", "api.host", "api.port"
K_KIOSK_GRID, K_KIOSK_CYCLE = "kiosk.grid", "kiosk.cycle_s"
SYSTEM_LANGUAGE = "system"  # stored for "follow the system locale", as the CLI stores it
K_DEF_MAX_FPS, K_DEF_STALL, K_DEF_MOTION = (
    "camera_defaults.max_fps", "camera_defaults.stall_timeout", "camera_defaults.motion_threshold")

DEFAULTS: dict[str, Any] = {
    K_API_ENABLED: True, K_API_HOST: "127.0.0.1", K_API_PORT: 8765,
    K_KIOSK_GRID: 0, K_KIOSK_CYCLE: 10, K_KIOSK_ENABLED: False, K_LANGUAGE: SYSTEM_LANGUAGE,
    K_DEF_MAX_FPS: 0.0, K_DEF_STALL: 10.0, K_DEF_MOTION: 0.02,
}


def problems(values: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with these settings (empty when they can be saved)."""
    errs: list[FieldError] = []
    port = values.get(K_API_PORT)
    if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
        errs.append(FieldError(K_API_PORT, "must be a port number from 1 to 65535"))
    grid = values.get(K_KIOSK_GRID)
    if grid is not None and grid not in (0, 1, 2, 3, 4):
        errs.append(FieldError(K_KIOSK_GRID, "must be 0 (fit every camera), 1, 2, 3 or 4 (tiles per side)"))
    cycle = values.get(K_KIOSK_CYCLE)
    if cycle is not None and not (cycle == 0 or 5 <= cycle <= 3600):
        errs.append(FieldError(K_KIOSK_CYCLE, "must be 0 (off) or 5 to 3600 seconds"))
    if K_LANGUAGE in values:
        try:
            normalize_language(values[K_LANGUAGE])
        except LanguageError:
            errs.append(FieldError(K_LANGUAGE, f"must be {SYSTEM_LANGUAGE!r} or one of {', '.join(LANGUAGES)}"))
    if K_KIOSK_ENABLED in values and not isinstance(values[K_KIOSK_ENABLED], bool):
        errs.append(FieldError(K_KIOSK_ENABLED, "must be true or false"))
    fps = values.get(K_DEF_MAX_FPS)
    if fps is not None and not (0 <= fps <= 240):
        errs.append(FieldError(K_DEF_MAX_FPS, "must be 0 (source rate) to 240"))
    stall = values.get(K_DEF_STALL)
    if stall is not None and not (0 < stall <= 3600):
        errs.append(FieldError(K_DEF_STALL, "must be greater than 0 and at most 3600 seconds"))
    motion = values.get(K_DEF_MOTION)
    if motion is not None and not (0 < motion < 1):
        errs.append(FieldError(K_DEF_MOTION, "must be between 0 and 1 (exclusive)"))
    return errs


@dataclass
class StationSettings:
    station: StationPort

    def load(self) -> dict[str, Any]:
        stored = self.station.get_settings()
        out = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS and v is not None}}
        try:  # 'zh-CN', 'zh' or None as another tool stored it: shown as the choice it means
            out[K_LANGUAGE] = normalize_language(out[K_LANGUAGE]) or SYSTEM_LANGUAGE
        except LanguageError:
            out[K_LANGUAGE] = SYSTEM_LANGUAGE  # the window starts in the system's language then, too
        return out

    def save(self, values: Mapping[str, Any], *, actor: str = "operator") -> dict[str, Any]:
        errs = problems(values)
        if errs:
            raise ValidationError(errs, subject="settings")
        unknown = [k for k in values if k not in DEFAULTS]
        if unknown:
            raise ValidationError([FieldError(k, "is not a setting the window manages") for k in unknown],
                                  subject="settings")
        self.station.set_settings(dict(values), actor=actor)
        return self.load()
