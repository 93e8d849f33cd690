"""Rule templates: ready-made rules an operator picks and adjusts in the rule editor.

``templates()`` maps a template name to a factory; every factory takes keyword
arguments only (``camera_id=None`` means every camera) and returns an
unsaved, validated :class:`AlertRule` whose ``template`` names its origin.
``default_rules()`` are the rules a new station is seeded with: the rollout
health rules (docs/rollout.md section 4), enabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.domain.rules import AlertRule, Comparator, NoDataPolicy, Severity, TargetKind

RuleFactory = Callable[..., AlertRule]


def _camera_target(camera_id: int | None) -> dict[str, Any]:
    if camera_id is None:
        return {"target": TargetKind.ALL_CAMERAS, "camera_id": None}
    return {"target": TargetKind.CAMERA, "camera_id": camera_id}


def _suffix(camera_id: int | None) -> str:
    return "" if camera_id is None else f" (camera {camera_id})"


def camera_offline(*, camera_id: int | None = None, for_seconds: float = 10.0, **kw: Any) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", "Camera offline" + _suffix(camera_id)), metric="offline",
        comparator=Comparator.GE, threshold=1.0, for_seconds=for_seconds, keep_firing_for=kw.pop("keep_firing_for", 0.0),
        severity=kw.pop("severity", Severity.CRITICAL), no_data=NoDataPolicy.OK, template="camera_offline",
        description="The camera's source is down or its worker is not running.",
        **_camera_target(camera_id), **kw,
    ).validated()


def low_fps(*, camera_id: int | None = None, threshold: float = 5.0, for_seconds: float = 30.0, **kw: Any) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", f"Low frame rate (< {threshold:g} fps)" + _suffix(camera_id)), metric="fps",
        comparator=Comparator.LT, threshold=threshold, for_seconds=for_seconds, severity=kw.pop("severity", Severity.WARNING),
        no_data=NoDataPolicy.KEEP_LAST, template="low_fps",
        description="Frames analysed per second stay below the threshold.", **_camera_target(camera_id), **kw,
    ).validated()


def stall_rate(*, camera_id: int | None = None, threshold: float = 3.0, **kw: Any) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", f"Stalls or restarts (>= {threshold:g} per hour)" + _suffix(camera_id)),
        metric="stall_rate", comparator=Comparator.GE, threshold=threshold, for_seconds=kw.pop("for_seconds", 0.0),
        severity=kw.pop("severity", Severity.WARNING), no_data=NoDataPolicy.OK, template="stall_rate",
        description="The worker stalled or restarted too often in the last hour.", **_camera_target(camera_id), **kw,
    ).validated()


def no_motion(*, camera_id: int | None = None, minutes: float = 30.0, **kw: Any) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", f"No motion for {minutes:g} min" + _suffix(camera_id)), metric="no_motion_seconds",
        comparator=Comparator.GE, threshold=minutes * 60.0, for_seconds=kw.pop("for_seconds", 0.0),
        severity=kw.pop("severity", Severity.INFO), no_data=NoDataPolicy.OK, template="no_motion",
        description="Nothing moved in front of the camera for a long time (blocked or turned away?).",
        **_camera_target(camera_id), **kw,
    ).validated()


def motion(*, camera_id: int | None = None, **kw: Any) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", "Motion" + _suffix(camera_id)), metric="motion_active", comparator=Comparator.GE,
        threshold=1.0, for_seconds=kw.pop("for_seconds", 0.0), keep_firing_for=kw.pop("keep_firing_for", 10.0),
        cooldown=kw.pop("cooldown", 60.0), severity=kw.pop("severity", Severity.INFO), no_data=NoDataPolicy.OK,
        template="motion", description="Motion was detected.", **_camera_target(camera_id), **kw,
    ).validated()


def _station(name: str, metric: str, comparator: Comparator, threshold: float, template: str, desc: str, kw: dict[str, Any]) -> AlertRule:
    return AlertRule(
        name=kw.pop("name", name), metric=metric, comparator=comparator, threshold=threshold,
        target=TargetKind.STATION, for_seconds=kw.pop("for_seconds", 60.0),
        severity=kw.pop("severity", Severity.WARNING), no_data=kw.pop("no_data", NoDataPolicy.KEEP_LAST),
        template=template, description=desc, **kw,
    ).validated()


def cpu_high(*, threshold: float = 90.0, **kw: Any) -> AlertRule:
    return _station(f"Station CPU above {threshold:g} %", "cpu_percent", Comparator.GT, threshold, "cpu_high",
                    "The station's CPU is saturated: previews and analysis fall behind.", kw)


def memory_high(*, threshold: float = 90.0, **kw: Any) -> AlertRule:
    return _station(f"Station memory above {threshold:g} %", "memory_percent", Comparator.GT, threshold,
                    "memory_high", "The station is running out of memory.", kw)


def disk_low(*, threshold: float = 10.0, **kw: Any) -> AlertRule:
    return _station(f"Disk free below {threshold:g} %", "disk_free_percent", Comparator.LT, threshold, "disk_low",
                    "The data directory's disk is nearly full.", kw)


def evidence_blocked(**kw: Any) -> AlertRule:
    kw.setdefault("for_seconds", 0.0)
    kw.setdefault("no_data", NoDataPolicy.OK)
    return _station("Evidence not written: disk at its free-space floor", "evidence_blocked", Comparator.GE, 1.0,
                    "evidence_blocked", "Alert snapshots and clips are not written until space is freed "
                    "(the evidence.min_free_mb setting).", kw)


def temperature_high(*, threshold: float = 80.0, **kw: Any) -> AlertRule:
    return _station(f"Temperature above {threshold:g} °C", "temperature_c", Comparator.GT, threshold,
                    "temperature_high", "The station is running hot (sensors that the machine reports).", kw)


def _rollout(name: str, metric: str, comparator: Comparator, threshold: float, template: str, desc: str, kw: dict[str, Any]) -> AlertRule:
    # Too few calls is "inconclusive": the feed writes no value and KEEP_LAST holds the state.
    return AlertRule(
        name=kw.pop("name", name), metric=metric, comparator=comparator, threshold=threshold,
        target=TargetKind.ROLLOUT, for_seconds=kw.pop("for_seconds", 0.0),
        severity=kw.pop("severity", Severity.CRITICAL), no_data=NoDataPolicy.KEEP_LAST,
        cooldown=kw.pop("cooldown", 300.0), template=template, description=desc, **kw,
    ).validated()


def rollout_error_rate(*, threshold: float = 0.05, **kw: Any) -> AlertRule:
    return _rollout("Rollout: domain error rate above 5 %", "domain_error_rate", Comparator.GT, threshold,
                    "rollout_error_rate", "Domain path failures (before fallback) over the window exceed the bound.", kw)


def rollout_success_rate(*, threshold: float = 0.95, **kw: Any) -> AlertRule:
    return _rollout("Rollout: end-to-end success below 95 %", "success_rate", Comparator.LT, threshold,
                    "rollout_success_rate", "Calls that fail even after fallback exceed the bound.", kw)


def rollout_latency(*, threshold: float = 1.5, **kw: Any) -> AlertRule:
    return _rollout("Rollout: domain P95 above 1.5 × legacy P95", "p95_ratio", Comparator.GT, threshold,
                    "rollout_latency", "The domain path is markedly slower than the legacy path in the same window.", kw)


def rollout_inconclusive(**kw: Any) -> AlertRule:
    # The rollout's own setting (inconclusive_warn_s) decides when the series turns 1.
    return _rollout("Rollout: not enough domain traffic to judge", "health_inconclusive", Comparator.GE, 1.0,
                    "rollout_inconclusive",
                    "A track routing to the domain path has been inconclusive for longer than the rollout's "
                    "inconclusive_warn_s: too few calls per operation to tell healthy from unhealthy.",
                    {"severity": Severity.WARNING, **kw})


def templates() -> dict[str, RuleFactory]:
    return {
        "camera_offline": camera_offline,
        "evidence_blocked": evidence_blocked,
        "low_fps": low_fps,
        "stall_rate": stall_rate,
        "no_motion": no_motion,
        "motion": motion,
        "cpu_high": cpu_high,
        "memory_high": memory_high,
        "disk_low": disk_low,
        "temperature_high": temperature_high,
        "rollout_error_rate": rollout_error_rate,
        "rollout_success_rate": rollout_success_rate,
        "rollout_latency": rollout_latency,
        "rollout_inconclusive": rollout_inconclusive,
    }


def default_rules() -> list[AlertRule]:
    """What the station seeds on first run: "camera offline" for all cameras and the rollout
    health rules, all enabled (a camera station alerts on a lost camera out of the box)."""
    return [camera_offline(), rollout_error_rate(), rollout_success_rate(), rollout_latency(),
            rollout_inconclusive()]
