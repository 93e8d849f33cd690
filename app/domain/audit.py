"""An audit entry: one operation or settings change, who did it, how it went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    op: str
    outcome: str  # ok | error:<code> | failed | fallback_ok ...
    key: str = ""
    path: str = ""  # legacy | domain | "" for non-routed changes
    latency_ms: float | None = None
    fallback: bool = False
    actor: str = ""
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    id: int | None = None

    @property
    def calls(self) -> int:
        """How many calls this entry stands for: 1, or the count of an aggregate of read-only calls
        (``detail["calls"]``; app/rollout/auditlog.py)."""
        n = self.detail.get("calls") if self.detail else None
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


@dataclass(frozen=True)
class ProblemReport:
    """An operator's problem report against the current stage of a rollout track.

    An open report holds the track's stage gate until it is resolved (docs/rollout.md).
    """

    track: str
    stage: int
    text: str
    operator: str = ""
    camera_id: int | None = None
    rule_id: int | None = None
    created_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str = ""
    resolution: str = ""
    id: int | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None
