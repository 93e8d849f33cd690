"""Evidence of camera alerts: full-resolution snapshots and pre-roll clips (pure Python)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

__all__ = ["EVIDENCE_KINDS", "EVIDENCE_MOMENTS", "Evidence", "EvidenceSettings", "EvidenceUsage"]

EVIDENCE_KINDS = ("snapshot", "clip")
#: when it was taken: when the alert fired, when it resolved, or on an operator's request
EVIDENCE_MOMENTS = ("fired", "resolved", "manual")


@dataclass(frozen=True)
class Evidence:
    """One file of the evidence store; ``path`` is relative to the store's directory."""

    kind: str
    moment: str
    path: str
    bytes: int
    created_at: datetime
    camera_id: int | None = None
    camera_name: str = ""
    event_id: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    preroll: float | None = None
    codec: str = ""
    reencoded: bool = False
    note: str = ""
    id: int | None = None

    @property
    def content_type(self) -> str:
        if self.kind == "clip":
            return "video/mp4"
        return "image/png" if self.path.endswith(".png") else "image/jpeg"

    def with_changes(self, **changes: Any) -> Evidence:
        return replace(self, **changes)


@dataclass(frozen=True)
class EvidenceSettings:
    """How evidence is taken and kept (settings ``evidence.*``; defaults in docs/evidence.md)."""

    enabled: bool = True  # snapshots and clips when a camera alert fires
    clips: bool = True  # a clip when a camera alert fires (snapshots only when False)
    preroll_s: float = 10.0  # seconds kept in each worker's packet ring (applies at its next start)
    postroll_s: float = 10.0  # seconds after the alert in its clip
    max_age_days: float = 30.0  # older evidence is removed
    max_total_mb: float = 2048.0  # the store never holds more (oldest removed first)
    min_free_mb: float = 1024.0  # nothing is written when the disk has less free space

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> EvidenceSettings:
        """From the stored settings (``evidence.preroll_s`` ...); bad values fall back to the defaults."""
        base = cls()
        out: dict[str, Any] = {}
        for name in ("enabled", "clips"):
            v = values.get(f"evidence.{name}")
            out[name] = v if isinstance(v, bool) else getattr(base, name)
        limits = {"preroll_s": (0, 60), "postroll_s": (0, 120), "max_age_days": (0.01, 3650),
                  "max_total_mb": (1, 10_000_000), "min_free_mb": (0, 10_000_000)}
        for name, (lo, hi) in limits.items():
            v = values.get(f"evidence.{name}")
            if isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi:
                out[name] = float(v)
            else:
                out[name] = getattr(base, name)
        return cls(**out)


@dataclass(frozen=True)
class EvidenceUsage:
    """What one camera's evidence takes (the evidence page)."""

    camera_id: int | None
    camera_name: str
    snapshots: int
    clips: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None
