"""Alert instances and events: the lifecycle of a rule applied to one subject.

An *instance* is a rule applied to one subject (one camera, the station, the
rollout). It moves ``inactive → pending → firing → resolved`` with Prometheus
semantics. When it fires, an :class:`AlertEvent` is stored; the event is
closed (``resolved``) when the instance resolves and may be acknowledged by
an operator at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.domain.rules import Severity


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class EventState(StrEnum):
    """What a stored event says: the problem is on, or it is over."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertEvent:
    """One firing of one rule instance, as stored."""

    rule_name: str
    severity: Severity
    state: EventState
    threshold: float
    started_at: datetime  # when the condition was first seen (pending began)
    rule_id: int | None = None
    camera_id: int | None = None
    subject: str = ""  # "camera 3", "station", "rollout"
    value: float | None = None  # the value that fired it (updated to the last seen value on resolve)
    message: str = ""
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    id: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None

    @property
    def active(self) -> bool:
        return self.state is EventState.FIRING

    def with_changes(self, **changes: Any) -> AlertEvent:
        return replace(self, **changes)


class ChangeKind(StrEnum):
    """What happened to an instance, as pushed to subscribers of the alert engine."""

    PENDING = "pending"
    FIRING = "firing"
    REPEAT = "repeat"  # still firing; repeat interval elapsed
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"  # pending went back to inactive without firing


@dataclass(frozen=True)
class AlertChange:
    """One item of the engine's event stream (the UI turns ``notify`` items into desktop notifications).

    ``notify`` is True when this change should reach people (desktop notification,
    sound, webhook, command): firing and resolved changes outside the cooldown,
    and repeats. Every change is delivered; only ``notify`` ones are announced.
    """

    kind: ChangeKind
    rule_name: str
    severity: Severity
    subject: str
    at: datetime
    notify: bool = False
    rule_id: int | None = None
    camera_id: int | None = None
    value: float | None = None
    threshold: float | None = None
    event: AlertEvent | None = None
    message: str = ""
    sound: bool = False
    desktop: bool = True

    def to_json(self) -> dict[str, Any]:
        """The document a webhook receives."""
        ev = self.event
        return {
            "kind": str(self.kind),
            "rule": self.rule_name,
            "rule_id": self.rule_id,
            "severity": str(self.severity),
            "subject": self.subject,
            "camera_id": self.camera_id,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "at": self.at.isoformat(),
            "event_id": ev.id if ev else None,
            "started_at": ev.started_at.isoformat() if ev else None,
            "fired_at": ev.fired_at.isoformat() if ev and ev.fired_at else None,
            "resolved_at": ev.resolved_at.isoformat() if ev and ev.resolved_at else None,
            "acknowledged_by": ev.acknowledged_by if ev else None,
        }


@dataclass(frozen=True)
class AlertStatus:
    """The live state of one rule instance (for the alerts page and the kiosk ticker)."""

    rule_name: str
    severity: Severity
    subject: str
    state: AlertState
    rule_id: int | None = None
    camera_id: int | None = None
    value: float | None = None
    threshold: float | None = None
    since: datetime | None = None  # when the current state began
    inhibited: bool = False  # the camera is offline: this rule is held
    acknowledged: bool = False
    event_id: int | None = None
