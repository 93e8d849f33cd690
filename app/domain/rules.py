"""Alert rules: what to watch, when it counts as a problem, and how to tell someone."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from app.domain.errors import FieldError, ValidationError
from app.domain.text import text_problem


class TargetKind(StrEnum):
    CAMERA = "camera"          # one camera (camera_id)
    ALL_CAMERAS = "all_cameras"
    STATION = "station"
    ROLLOUT = "rollout"


class Comparator(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, threshold: float) -> bool:
        match self:
            case Comparator.GT:
                return value > threshold
            case Comparator.GE:
                return value >= threshold
            case Comparator.LT:
                return value < threshold
            case Comparator.LE:
                return value <= threshold
            case Comparator.EQ:
                return value == threshold
            case Comparator.NE:
                return value != threshold
        raise AssertionError(self)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class NoDataPolicy(StrEnum):
    ALERTING = "alerting"   # missing data counts as the condition holding
    OK = "ok"               # missing data counts as fine
    KEEP_LAST = "keep_last"  # keep whatever state the rule had


_CAMERA = (TargetKind.CAMERA, TargetKind.ALL_CAMERAS)
RULE_NAME_MAX = 100
DESCRIPTION_MAX = 500
WEBHOOK_URL_MAX = 2048

#: metric name -> (target kinds it applies to, unit, description)
METRICS: dict[str, tuple[tuple[TargetKind, ...], str, str]] = {
    "offline": (_CAMERA, "bool", "1 when the camera's source is down or its worker is not running"),
    "fps": (_CAMERA, "fps", "decoded frames per second"),
    "dropped_rate": (_CAMERA, "fps", "frames dropped per second"),
    "motion": (_CAMERA, "ratio", "motion score 0..1"),
    "motion_active": (_CAMERA, "bool", "1 when the worker saw motion in the last second"),
    "no_motion_seconds": (_CAMERA, "s", "seconds since motion was last seen"),
    "last_frame_age": (_CAMERA, "s", "seconds since the last decoded frame"),
    "stall_rate": (_CAMERA, "per h", "stalls and restarts in the last hour"),
    "restarts": (_CAMERA, "count", "worker restarts since the station started"),
    "cpu_percent": ((*_CAMERA, TargetKind.STATION), "%", "CPU use"),
    "rss_mb": (_CAMERA, "MB", "worker resident memory"),
    "memory_percent": ((TargetKind.STATION,), "%", "memory in use"),
    "disk_free_percent": ((TargetKind.STATION,), "%", "free space on the data dir's disk"),
    "temperature_c": ((TargetKind.STATION,), "°C", "highest sensor temperature"),
    "load1": ((TargetKind.STATION,), "", "1-minute load average"),
    "evidence_blocked": ((TargetKind.STATION,), "bool", "1 when snapshots and clips are not written: the disk is at its free-space floor"),
    "domain_error_rate": ((TargetKind.ROLLOUT,), "ratio", "domain path errors before fallback / calls"),
    "success_rate": ((TargetKind.ROLLOUT,), "ratio", "end-to-end success after fallback / calls"),
    "p95_ratio": ((TargetKind.ROLLOUT,), "ratio", "domain P95 latency / legacy P95 latency"),
    "health_inconclusive": ((TargetKind.ROLLOUT,), "bool",
                            "1 while a track routing to the domain path is inconclusive for too long"),
}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN_RE = re.compile(
    r"^\s*(?P<d1>[a-z]{3})(?:\s*-\s*(?P<d2>[a-z]{3}))?\s+(?P<t1>\d{1,2}:\d{2})\s*-\s*(?P<t2>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class ScheduleSpan:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # exclusive; 24:00 is written as 00:00 of the next day and stored as time.max

    def contains(self, moment: datetime) -> bool:
        if moment.weekday() not in self.days:
            return False
        t = moment.time()
        return self.start <= t < self.end


class ScheduleError(ValueError):
    pass


def _parse_time(text: str, *, end: bool) -> time:
    h, m = (int(x) for x in text.split(":"))
    if end and h == 24 and m == 0:
        return time.max
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ScheduleError(f"{text!r} is not a time of day (00:00-23:59, or 24:00 as an end)")
    return time(h, m)


def parse_schedule(text: str) -> tuple[ScheduleSpan, ...]:
    """Parse ``"mon-fri 08:00-18:00; sat 10:00-14:00"`` into spans. Empty text = always."""
    spans = []
    for part in filter(None, (p.strip() for p in text.lower().split(";"))):
        m = _SPAN_RE.match(part)
        if not m:
            raise ScheduleError(f"{part!r} does not look like 'mon-fri 08:00-18:00'")
        d1, d2 = m["d1"], m["d2"] or m["d1"]
        for d in (d1, d2):
            if d not in _DAYS:
                raise ScheduleError(f"{d!r} is not a day (use {', '.join(_DAYS)})")
        i1, i2 = _DAYS.index(d1), _DAYS.index(d2)
        days = frozenset(range(i1, i2 + 1)) if i1 <= i2 else frozenset([*range(i1, 7), *range(0, i2 + 1)])
        start, stop = _parse_time(m["t1"], end=False), _parse_time(m["t2"], end=True)
        if stop <= start:
            raise ScheduleError(f"{part!r}: the end time must be after the start time")
        spans.append(ScheduleSpan(days, start, stop))
    return tuple(spans)


@dataclass(frozen=True)
class Notify:
    """Where a firing rule is sent besides the operator's screen."""

    webhook_url: str | None = None
    command: tuple[str, ...] = ()  # argument list, never run through a shell
    desktop: bool = True
    sound: bool = False


@dataclass(frozen=True)
class AlertRule:
    name: str
    metric: str
    comparator: Comparator
    threshold: float
    target: TargetKind = TargetKind.ALL_CAMERAS
    camera_id: int | None = None
    for_seconds: float = 0.0
    keep_firing_for: float = 0.0
    severity: Severity = Severity.WARNING
    cooldown: float = 300.0
    repeat_interval: float = 0.0  # 0 = notify once per firing
    no_data: NoDataPolicy = NoDataPolicy.KEEP_LAST
    schedule: str = ""  # empty = always
    enabled: bool = True
    notify: Notify = field(default_factory=Notify)
    description: str = ""
    template: str | None = None
    version: int = 1
    id: int | None = None

    def with_changes(self, **changes: Any) -> AlertRule:
        return replace(self, **changes)

    @property
    def schedule_spans(self) -> tuple[ScheduleSpan, ...]:
        return parse_schedule(self.schedule)

    def in_schedule(self, moment: datetime) -> bool:
        spans = self.schedule_spans
        return not spans or any(s.contains(moment) for s in spans)

    def problems(self) -> list[FieldError]:
        errs: list[FieldError] = []
        name_err = text_problem(self.name, max_len=RULE_NAME_MAX, required=True)
        if name_err:
            errs.append(FieldError("name", name_err))
        try:
            target = TargetKind(self.target)
        except ValueError:
            errs.append(FieldError("target", f"must be one of {', '.join(t.value for t in TargetKind)}"))
            target = None
        if self.metric not in METRICS:
            errs.append(FieldError("metric", f"unknown metric {self.metric!r} (known: {', '.join(sorted(METRICS))})"))
        elif target is not None and target not in METRICS[self.metric][0]:
            kinds = ", ".join(k.value for k in METRICS[self.metric][0])
            errs.append(FieldError("metric", f"{self.metric!r} applies to {kinds}, not to {target.value}"))
        try:
            Comparator(self.comparator)
        except ValueError:
            errs.append(FieldError("comparator", f"must be one of {' '.join(c.value for c in Comparator)}"))
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            errs.append(FieldError("threshold", f"must be a number, not {type(self.threshold).__name__}"))
        elif not math.isfinite(self.threshold):
            errs.append(FieldError("threshold", "must be a finite number"))
        if target is TargetKind.CAMERA and self.camera_id is None:
            errs.append(FieldError("camera_id", "is required when the target is one camera"))
        if target is not None and target is not TargetKind.CAMERA and self.camera_id is not None:
            errs.append(FieldError("camera_id", "is only allowed when the target is one camera"))
        for name in ("for_seconds", "keep_firing_for", "cooldown", "repeat_interval"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                errs.append(FieldError(name, "must be a number of seconds"))
            elif v < 0:
                errs.append(FieldError(name, "must not be below zero"))
            elif v > 7 * 86400:
                errs.append(FieldError(name, "must be at most 7 days"))
        for enum_cls, fname in ((Severity, "severity"), (NoDataPolicy, "no_data")):
            try:
                enum_cls(getattr(self, fname))
            except ValueError:
                errs.append(FieldError(fname, f"must be one of {', '.join(e.value for e in enum_cls)}"))
        try:
            parse_schedule(self.schedule)
        except ScheduleError as e:
            errs.append(FieldError("schedule", str(e)))
        if self.notify.webhook_url:
            url_err = text_problem(self.notify.webhook_url, max_len=WEBHOOK_URL_MAX)
            try:
                parts = urlsplit(self.notify.webhook_url) if url_err is None else None
                host = parts.hostname if parts is not None else None
            except ValueError as e:
                url_err, parts, host = f"is not a valid URL: {e}", None, None
            if url_err:
                errs.append(FieldError("notify.webhook_url", url_err))
            elif parts is None or parts.scheme not in ("http", "https") or not host:
                errs.append(FieldError("notify.webhook_url", "must be an http:// or https:// URL with a host"))
        if self.notify.command and not all(isinstance(a, str) and a for a in self.notify.command):
            errs.append(FieldError("notify.command", "must be a list of non-empty strings"))
        elif self.notify.command:
            for i, arg in enumerate(self.notify.command):
                arg_err = text_problem(arg, max_len=4096)
                if arg_err:
                    errs.append(FieldError(f"notify.command[{i}]", arg_err))
        desc_err = text_problem(self.description, max_len=DESCRIPTION_MAX, multiline=True)
        if desc_err:
            errs.append(FieldError("description", desc_err))
        return errs

    def validated(self) -> AlertRule:
        errs = self.problems()
        if errs:
            raise ValidationError(errs, subject=f"alert rule {self.name!r}")
        return replace(
            self,
            name=self.name.strip(),
            target=TargetKind(self.target),
            comparator=Comparator(self.comparator),
            severity=Severity(self.severity),
            no_data=NoDataPolicy(self.no_data),
            threshold=float(self.threshold),
        )
