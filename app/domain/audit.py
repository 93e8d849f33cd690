"""An audit entry: one operation or settings change, who did it, how it went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
    detail: dict = field(default_factory=dict)
    at: datetime | None = None
    id: int | None = None
