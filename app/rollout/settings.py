"""Rollout settings: what is persisted, what the environment overrides, and their validation.

The thirteen operations are rolled out on two **tracks** (``app.domain.operations.TRACKS``):
``rules`` (the alert-rule writes, first) and ``cameras`` (the eleven camera operations,
second). Each track has its own toggle, percent, stage, hold timer and rollback latch,
persisted as ``rollout.<track>.<field>`` (table ``settings``); the auto-rollback switch,
the salt, the shadow and canary rates, the thresholds and the stage plan are shared.

Environment overrides, read **once, when the settings are loaded** (the router loads
them at construction and reloads the persisted part at most once per ``settings_ttl``
seconds; the environment mapping it was given is kept):

* ``USE_DOMAIN_SERVICE`` (``1/0``, ``true/false``, ``on/off``, ``yes/no``) sets ``use_domain`` of both tracks
* ``ROLLOUT_PERCENT`` (integer 0-100) sets ``percent`` of both tracks
* ``USE_DOMAIN_SERVICE_RULES`` / ``_CAMERAS`` and ``ROLLOUT_PERCENT_RULES`` / ``_CAMERAS``
  override one track (they win over the two-track variables)

A variable naming an unknown track (``ROLLOUT_PERCENT_CAMERA``) is refused. An override
is shown as locked by the UI (:meth:`RolloutSettings.locked_fields`), and the CLI refuses
to change a locked field. The rollback latch of a track wins over all of them.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from app.domain.operations import TRACKS
from app.rollout.errors import RolloutSettingsError

ENV_USE_DOMAIN = "USE_DOMAIN_SERVICE"
ENV_PERCENT = "ROLLOUT_PERCENT"

#: the stages an integrator advances through (0 = not started)
STAGES: tuple[int, ...] = (10, 25, 50, 100)

#: the track names, in the plan's order (rules first)
TRACK_NAMES: tuple[str, ...] = tuple(TRACKS)

# shared keys
K_AUTO_ROLLBACK = "rollout.auto_rollback"
K_SALT = "rollout.salt"
K_LAST_VERIFY = "rollout.last_verify"
K_LAST_REHEARSAL = "rollout.last_rehearsal"
K_SHADOW_RATE = "rollout.shadow_rate"
K_CANARY_RATE = "rollout.canary_rate"
T_PREFIX = "rollout.thresholds."

# per-track fields (key: rollout.<track>.<field>, see track_key)
F_USE_DOMAIN = "use_domain"
F_PERCENT = "percent"
F_LATCHED = "latched"
F_LATCH_REASON = "latch_reason"
F_LATCHED_AT = "latched_at"
F_STAGE_ENTERED_AT = "stage_entered_at"
TRACK_FIELDS = (F_USE_DOMAIN, F_PERCENT, F_LATCHED, F_LATCH_REASON, F_LATCHED_AT, F_STAGE_ENTERED_AT)

# the one-track keys of a database from before the tracks (migrated by 0007_rollout_tracks)
LEGACY_ONE_TRACK_KEYS = tuple(f"rollout.{f}" for f in TRACK_FIELDS)

_TRUE = {"1", "true", "on", "yes", "y"}
_FALSE = {"0", "false", "off", "no", "n"}


def track_key(track: str, name: str) -> str:
    return f"rollout.{track}.{name}"


def check_track(track: object) -> str:
    """``track`` if it names a track; :class:`RolloutSettingsError` naming the known ones otherwise."""
    if track not in TRACKS:
        raise RolloutSettingsError(f"unknown rollout track {track!r} (tracks: {', '.join(TRACK_NAMES)})")
    return track


def parse_tracks(track: object) -> tuple[str, ...]:
    """``"all"`` -> every track; one track name -> that track (refused when unknown)."""
    if track in (None, "all", "both"):
        return TRACK_NAMES
    return (check_track(str(track).strip().lower()),)


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


DAY = 86400.0


@dataclass(frozen=True)
class Thresholds:
    """Health and gate thresholds and the stage plan (docs/rollout.md). Stored as ``rollout.thresholds.<name>``."""

    window_s: float = 300.0  # the sliding window health is judged on
    max_domain_error_rate: float = 0.05  # health: domain errors before fallback / domain calls
    min_success_rate: float = 0.95  # health: end-to-end success after fallback / domain calls
    max_p95_ratio: float = 1.5  # health and gate: domain P95 / legacy P95 in the same window
    min_samples: int = 50  # fewer calls than this on a path = inconclusive (holds)
    gate_max_error_rate: float = 0.01  # gate: domain error rate of the track at the stage
    gate_min_calls_per_op: int = 10  # gate coverage: routed domain calls of every operation of the track
    gate_min_latency_calls: int = 20  # gate: routed calls on each path before the P95 ratio is judged
    hold_10_s: float = 1 * DAY  # the plan's calendar: minimum time held at each stage
    hold_25_s: float = 3 * DAY
    hold_50_s: float = 7 * DAY
    hold_100_s: float = 7 * DAY  # at 100 %: until the track is complete (legacy may be retired)
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
        "gate_min_calls_per_op": (1, 1_000_000),
        "gate_min_latency_calls": (1, 1_000_000),
        "hold_10_s": (0.0, 90 * DAY),
        "hold_25_s": (0.0, 90 * DAY),
        "hold_50_s": (0.0, 90 * DAY),
        "hold_100_s": (0.0, 90 * DAY),
        "failure_limit": (1, 100),
        "latency_floor_ms": (0.0, 60_000.0),
        "min_failures": (1, 1000),
        "inconclusive_warn_s": (10.0, 90 * DAY),
    }

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def hold_s(self, stage: int) -> float:
        """The minimum hold at ``stage`` (0 for stage 0: nothing to hold)."""
        return float(getattr(self, f"hold_{stage}_s", 0.0)) if stage in STAGES else 0.0

    @classmethod
    def coerce(cls, name: str, value: object) -> float | int:
        """Validate one threshold value (raises :class:`RolloutSettingsError`)."""
        if name not in cls._LIMITS:
            raise RolloutSettingsError(f"unknown rollout threshold {name!r} (known: {', '.join(cls.names())})")
        lo, hi = cls._LIMITS[name]
        try:
            num = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]
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
class TrackSettings:
    """One track's effective settings (persisted values with environment overrides applied)."""

    name: str = TRACK_NAMES[0]
    use_domain: bool = False
    percent: int = 0
    latched: bool = False
    latch_reason: str = ""
    latched_at: float | None = None  # unix time
    stage_entered_at: float | None = None  # unix time the current percent/toggle was set
    stored_use_domain: bool = False
    stored_percent: int = 0
    overrides: dict[str, str] = field(default_factory=dict)  # field -> "ENV_VAR=value"
    # the fleet rollout (app.domain.fleet_rollout): whether this station is inside the track's fleet share
    # (True with no fleet rollout), and the fleet percent (None: no fleet rollout set)
    fleet_in: bool = True
    fleet_percent: int | None = None

    @property
    def operations(self) -> tuple[str, ...]:
        return TRACKS[self.name]

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
    def effective_percent(self) -> int:
        """The share the routing uses: the target percent inside the fleet share, 0 outside it
        (the station runs the track as if its percent were 0)."""
        return self.target_percent if self.fleet_in else 0

    @property
    def stage(self) -> int:
        """The highest of :data:`STAGES` not above the target percent (0 if none)."""
        t = self.target_percent
        return max((s for s in STAGES if s <= t), default=0)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["locked"] = self.locked_fields()
        d["target_percent"] = self.target_percent
        d["effective_percent"] = self.effective_percent
        d["stage"] = self.stage
        d["operations"] = list(self.operations)
        return d


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """``{track: {field: (variable, raw value)}}``; refuses a variable naming an unknown track."""
    per_track: dict[str, dict[str, tuple[str, str]]] = {t: {} for t in TRACK_NAMES}
    for base, fld in ((ENV_USE_DOMAIN, F_USE_DOMAIN), (ENV_PERCENT, F_PERCENT)):
        raw = env.get(base)
        if raw is not None and raw.strip() != "":
            for t in TRACK_NAMES:
                per_track[t][fld] = (base, raw)
        for name, raw in env.items():
            if not name.startswith(base + "_"):
                continue
            suffix = name[len(base) + 1:]
            track = suffix.lower()
            if track not in TRACKS:
                known = ", ".join(f"{base}_{t.upper()}" for t in TRACK_NAMES)
                raise RolloutSettingsError(
                    f"environment variable {name} names an unknown rollout track {suffix!r} "
                    f"(use {base} for both tracks, or one of {known})")
            if raw is not None and raw.strip() != "":
                per_track[track][fld] = (name, raw)
    return per_track


def _time(stored: Mapping[str, Any], key: str) -> float | None:
    v = stored.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _bool(stored: Mapping[str, Any], key: str, default: bool) -> bool:
    try:
        return parse_bool(stored.get(key, default), what=key)
    except RolloutSettingsError:
        return default


def _track_from_stored(track: str, stored: Mapping[str, Any], env: Mapping[str, tuple[str, str]]) -> TrackSettings:
    stored_use = _bool(stored, track_key(track, F_USE_DOMAIN), False)
    try:
        stored_pct = parse_percent(stored.get(track_key(track, F_PERCENT), 0), what=track_key(track, F_PERCENT))
    except RolloutSettingsError:
        stored_pct = 0
    use, pct = stored_use, stored_pct
    overrides: dict[str, str] = {}
    if F_USE_DOMAIN in env:
        var, raw = env[F_USE_DOMAIN]
        use = parse_bool(raw, what=var)
        overrides[F_USE_DOMAIN] = f"{var}={raw}"
    if F_PERCENT in env:
        var, raw = env[F_PERCENT]
        pct = parse_percent(raw, what=var)
        overrides[F_PERCENT] = f"{var}={raw}"
    return TrackSettings(
        name=track, use_domain=use, percent=pct,
        latched=_bool(stored, track_key(track, F_LATCHED), False),
        latch_reason=str(stored.get(track_key(track, F_LATCH_REASON)) or ""),
        latched_at=_time(stored, track_key(track, F_LATCHED_AT)),
        stage_entered_at=_time(stored, track_key(track, F_STAGE_ENTERED_AT)),
        stored_use_domain=stored_use, stored_percent=stored_pct, overrides=overrides)


def _rate(stored: Mapping[str, Any], key: str, default: float, hi: float) -> float:
    try:
        v = float(stored.get(key, default))
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and 0.0 <= v <= hi else default


#: the canary's highest rate (calls per minute)
MAX_CANARY_RATE = 600.0


@dataclass(frozen=True)
class RolloutSettings:
    """The effective rollout settings: one :class:`TrackSettings` per track and the shared options."""

    tracks: dict[str, TrackSettings] = field(default_factory=lambda: {t: TrackSettings(t) for t in TRACK_NAMES})
    auto_rollback: bool = True
    salt: str = ""
    shadow_rate: float = 0.02
    canary_rate: float = 0.0  # routed canary calls of the read-only operations per minute (0 = off)
    thresholds: Thresholds = field(default_factory=Thresholds)
    last_verify: dict[str, Any] | None = None  # {"at", "passed", "mismatches", "failures", "version"}
    last_rehearsal: dict[str, Any] | None = None  # {"at", "passed", "track", "version", "checks"}

    def track(self, name: str) -> TrackSettings:
        return self.tracks[check_track(name)]

    # -------- summaries over both tracks (status bar, the health document)

    @property
    def use_domain(self) -> bool:
        return any(t.use_domain for t in self.tracks.values())

    @property
    def latched(self) -> bool:
        return any(t.latched for t in self.tracks.values())

    @property
    def target_percent(self) -> int:
        """The highest target share of the tracks (each track has its own: ``track(name)``)."""
        return max((t.target_percent for t in self.tracks.values()), default=0)

    @property
    def percent(self) -> int:
        """The highest percent of the tracks (for one-line summaries)."""
        return max((t.percent for t in self.tracks.values()), default=0)

    @property
    def stage(self) -> int:
        """The highest stage of the tracks (for one-line summaries)."""
        return max((t.stage for t in self.tracks.values()), default=0)

    @property
    def latch_reason(self) -> str:
        return "; ".join(f"{t.name}: {t.latch_reason}" for t in self.tracks.values() if t.latched)

    def locked_fields(self) -> dict[str, str]:
        """``{"<track>.<field>": environment variable}`` for every overridden field."""
        return {f"{t.name}.{f}": v for t in self.tracks.values() for f, v in t.locked_fields().items()}

    @property
    def overrides(self) -> dict[str, str]:
        return {f"{t.name}.{f}": v for t in self.tracks.values() for f, v in t.overrides.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracks": {n: t.as_dict() for n, t in self.tracks.items()},
            "auto_rollback": self.auto_rollback, "shadow_rate": self.shadow_rate, "canary_rate": self.canary_rate,
            "thresholds": asdict(self.thresholds), "last_verify": self.last_verify,
            "last_rehearsal": self.last_rehearsal, "locked": self.locked_fields(),
            # one-line summaries over both tracks (the one-track API and the status bar read these)
            "use_domain": self.use_domain, "percent": self.percent, "latched": self.latched,
            "latch_reason": self.latch_reason, "target_percent": self.target_percent, "stage": self.stage,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], env: Mapping[str, str]) -> RolloutSettings:
        """Build from the persisted key/value pairs and the environment (raises on a bad override)."""
        env_tracks = _env_overrides(env)
        lv, lr = stored.get(K_LAST_VERIFY), stored.get(K_LAST_REHEARSAL)
        return cls(
            tracks={t: _track_from_stored(t, stored, env_tracks[t]) for t in TRACK_NAMES},
            auto_rollback=_bool(stored, K_AUTO_ROLLBACK, True),
            salt=str(stored.get(K_SALT) or ""),
            shadow_rate=_rate(stored, K_SHADOW_RATE, 0.02, 1.0),
            canary_rate=_rate(stored, K_CANARY_RATE, 0.0, MAX_CANARY_RATE),
            thresholds=Thresholds.from_settings(stored),
            last_verify=dict(lv) if isinstance(lv, dict) else None,
            last_rehearsal=dict(lr) if isinstance(lr, dict) else None,
        )

    def with_track(self, name: str, **changes: Any) -> RolloutSettings:
        tracks = dict(self.tracks)
        tracks[name] = replace(tracks[name], **changes)
        return replace(self, tracks=tracks)

    def with_changes(self, **changes: Any) -> RolloutSettings:
        return replace(self, **changes)


def new_salt() -> str:
    return secrets.token_hex(8)
