"""Rollout settings: what is persisted, what the environment overrides, and their validation.

Persisted keys (table ``settings``) are listed in :data:`KEYS`. Two of them can be
overridden by environment variables, read **once, when the settings are loaded**
(the router loads them at construction and reloads the persisted part at most
once per ``settings_ttl`` seconds; the environment mapping it was given is kept):

* ``USE_DOMAIN_SERVICE`` (``1/0``, ``true/false``, ``on/off``, ``yes/no``) overrides ``rollout.use_domain``
* ``ROLLOUT_PERCENT`` (integer 0-100) overrides ``rollout.percent``

An override is shown as locked by the UI (:meth:`RolloutSettings.locked_fields`),
and the CLI refuses to change a locked field. The rollback latch wins over both.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from app.rollout.errors import RolloutSettingsError

ENV_USE_DOMAIN = "USE_DOMAIN_SERVICE"
ENV_PERCENT = "ROLLOUT_PERCENT"

#: the stages an integrator advances through (0 = not started)
STAGES: tuple[int, ...] = (10, 25, 50, 100)

K_USE_DOMAIN = "rollout.use_domain"
K_PERCENT = "rollout.percent"
K_AUTO_ROLLBACK = "rollout.auto_rollback"
K_LATCHED = "rollout.latched"
K_LATCH_REASON = "rollout.latch_reason"
K_LATCHED_AT = "rollout.latched_at"
K_STAGE_ENTERED_AT = "rollout.stage_entered_at"
K_SALT = "rollout.salt"
K_LAST_VERIFY = "rollout.last_verify"
K_SHADOW_RATE = "rollout.shadow_rate"
T_PREFIX = "rollout.thresholds."

_TRUE = {"1", "true", "on", "yes", "y"}
_FALSE = {"0", "false", "off", "no", "n"}


def parse_bool(text: object, *, what: str) -> bool:
    if isinstance(text, bool):
        return text
    s = str(text).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise RolloutSettingsError(f"{what}={text!r} is not a boolean (use on/off, 1/0, true/false, yes/no)")


def parse_percent(text: object, *, what: str) -> int:
    if isinstance(text, bool):
        raise RolloutSettingsError(f"{what}={text!r} is not a percentage (an integer 0-100)")
    if isinstance(text, int):
        value = text
    elif isinstance(text, float) and text.is_integer():
        value = int(text)
    else:
        s = str(text).strip().rstrip("%").strip()
        try:
            value = int(s)
        except ValueError:
            raise RolloutSettingsError(f"{what}={text!r} is not a percentage (an integer 0-100)") from None
    if not 0 <= value <= 100:
        raise RolloutSettingsError(f"{what}={text!r} is out of range (an integer 0-100)")
    return value


@dataclass(frozen=True)
class Thresholds:
    """Health and gate thresholds (DESIGN §6). Stored as ``rollout.thresholds.<name>``."""

    window_s: float = 300.0  # the sliding window health is judged on
    max_domain_error_rate: float = 0.05  # health: domain errors before fallback / domain calls
    min_success_rate: float = 0.95  # health: end-to-end success after fallback / domain calls
    max_p95_ratio: float = 1.5  # health and gate: domain P95 / legacy P95 in the same window
    min_samples: int = 50  # fewer calls than this on a path = inconclusive (holds)
    gate_max_error_rate: float = 0.01  # gate: domain error rate at the stage
    gate_min_calls: int = 500  # gate: domain calls at the stage
    gate_min_hold_s: float = 86400.0  # gate: time at the stage (24 h)
    # health per operation (app.rollout.analysis, docs/rollout.md section 4)
    failure_limit: int = 3  # latency: consecutive failing windows before it alerts (Flagger's threshold)
    latency_floor_ms: float = 5.0  # latency: a P95 difference up to this is never a regression
    min_failures: int = 3  # error checks: failed calls needed before a bound can fire
    inconclusive_warn_s: float = 3600.0  # a track inconclusive this long raises a warning alert

    _LIMITS = {
        "window_s": (10.0, 86400.0),
        "max_domain_error_rate": (0.0, 1.0),
        "min_success_rate": (0.0, 1.0),
        "max_p95_ratio": (1.0, 100.0),
        "min_samples": (1, 1_000_000),
        "gate_max_error_rate": (0.0, 1.0),
        "gate_min_calls": (0, 10_000_000),
        "gate_min_hold_s": (0.0, 90 * 86400.0),
        "failure_limit": (1, 100),
        "latency_floor_ms": (0.0, 60_000.0),
        "min_failures": (1, 1000),
        "inconclusive_warn_s": (10.0, 90 * 86400.0),
    }

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def coerce(cls, name: str, value: object) -> float | int:
        """Validate one threshold value (raises :class:`RolloutSettingsError`)."""
        if name not in cls._LIMITS:
            raise RolloutSettingsError(f"unknown rollout threshold {name!r} (known: {', '.join(cls.names())})")
        lo, hi = cls._LIMITS[name]
        try:
            num = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            num = math.nan
        if not math.isfinite(num) or not lo <= num <= hi:
            raise RolloutSettingsError(f"rollout threshold {name}={value!r} must be a number from {lo} to {hi}")
        if isinstance(lo, int):
            if not num.is_integer():
                raise RolloutSettingsError(f"rollout threshold {name}={value!r} must be a whole number")
            return int(num)
        return num

    @classmethod
    def from_settings(cls, stored: Mapping[str, Any]) -> Thresholds:
        values: dict[str, Any] = {}
        for name in cls.names():
            raw = stored.get(T_PREFIX + name)
            if raw is not None:
                try:
                    values[name] = cls.coerce(name, raw)
                except RolloutSettingsError:
                    continue  # a bad stored value falls back to the default (the CLI never writes one)
        return cls(**values)


@dataclass(frozen=True)
class RolloutSettings:
    """The effective rollout settings (persisted values with environment overrides applied)."""

    use_domain: bool = False
    percent: int = 0
    auto_rollback: bool = True
    latched: bool = False
    latch_reason: str = ""
    latched_at: float | None = None  # unix time
    stage_entered_at: float | None = None  # unix time the current percent/toggle was set
    salt: str = ""
    shadow_rate: float = 0.02
    thresholds: Thresholds = field(default_factory=Thresholds)
    last_verify: dict | None = None  # {"at": unix time, "passed": bool, "mismatches": n, "failures": n}
    stored_use_domain: bool = False
    stored_percent: int = 0
    overrides: dict[str, str] = field(default_factory=dict)  # field -> "ENV_VAR=value"

    def locked_fields(self) -> dict[str, str]:
        """``{field: environment variable name}`` for the fields the environment overrides."""
        return {f: v.split("=", 1)[0] for f, v in self.overrides.items()}

    @property
    def target_percent(self) -> int:
        """The share of keys meant to be on the domain path (0 when off or latched)."""
        if self.latched or not self.use_domain:
            return 0
        return self.percent

    @property
    def stage(self) -> int:
        """The current stage: the highest of :data:`STAGES` not above the target percent (0 if none)."""
        t = self.target_percent
        return max((s for s in STAGES if s <= t), default=0)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["locked"] = self.locked_fields()
        d["target_percent"] = self.target_percent
        d["stage"] = self.stage
        d.pop("salt")
        return d

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], env: Mapping[str, str]) -> RolloutSettings:
        """Build from the persisted key/value pairs and the environment (raises on a bad override)."""

        def _bool(key: str, default: bool) -> bool:
            try:
                return parse_bool(stored.get(key, default), what=key)
            except RolloutSettingsError:
                return default

        stored_use = _bool(K_USE_DOMAIN, False)
        try:
            stored_pct = parse_percent(stored.get(K_PERCENT, 0), what=K_PERCENT)
        except RolloutSettingsError:
            stored_pct = 0
        use, pct = stored_use, stored_pct
        overrides: dict[str, str] = {}
        raw = env.get(ENV_USE_DOMAIN)
        if raw is not None and raw.strip() != "":
            use = parse_bool(raw, what=ENV_USE_DOMAIN)
            overrides["use_domain"] = f"{ENV_USE_DOMAIN}={raw}"
        raw = env.get(ENV_PERCENT)
        if raw is not None and raw.strip() != "":
            pct = parse_percent(raw, what=ENV_PERCENT)
            overrides["percent"] = f"{ENV_PERCENT}={raw}"
        try:
            shadow = float(stored.get(K_SHADOW_RATE, 0.02))
            if not 0.0 <= shadow <= 1.0:
                shadow = 0.02
        except (TypeError, ValueError):
            shadow = 0.02

        def _time(key: str) -> float | None:
            v = stored.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        lv = stored.get(K_LAST_VERIFY)
        return cls(
            use_domain=use,
            percent=pct,
            auto_rollback=_bool(K_AUTO_ROLLBACK, True),
            latched=_bool(K_LATCHED, False),
            latch_reason=str(stored.get(K_LATCH_REASON) or ""),
            latched_at=_time(K_LATCHED_AT),
            stage_entered_at=_time(K_STAGE_ENTERED_AT),
            salt=str(stored.get(K_SALT) or ""),
            shadow_rate=shadow,
            thresholds=Thresholds.from_settings(stored),
            last_verify=dict(lv) if isinstance(lv, dict) else None,
            stored_use_domain=stored_use,
            stored_percent=stored_pct,
            overrides=overrides,
        )

    def with_changes(self, **changes: Any) -> RolloutSettings:
        return replace(self, **changes)


def new_salt() -> str:
    return secrets.token_hex(8)
