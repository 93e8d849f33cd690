"""Normalize operation outcomes so the two paths can be compared.

Volatile fields (pid, uptimes, CPU, frame counters, timestamps, image bytes...)
are removed; ``starting`` and ``running`` are the same state (which one a caller
sees right after a start is a matter of timing); floats are rounded; an
``OperationError`` becomes ``{"error": code}`` (the code is the contract, the
message is not).
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from app.domain.errors import OperationError
from app.domain.operations import (
    CameraLogs,
    CameraStats,
    CameraStatus,
    ExitRecord,
    ProbeResult,
    Snapshot,
    StatusList,
)

_VOLATILE: dict[type, frozenset[str]] = {
    CameraStatus: frozenset({"pid", "uptime", "source", "fps", "last_frame_age", "motion", "motion_active",
                             "width", "height", "codec", "error"}),
    CameraStats: frozenset({"pid", "cpu_percent", "rss_bytes", "threads", "children", "fps_avg", "fps_min",
                            "decoded", "dropped", "motion_avg", "samples"}),
    ProbeResult: frozenset({"elapsed"}),
    Snapshot: frozenset({"taken_at", "seq", "png", "jpeg"}),  # compared: the image is valid (as "png")
    CameraLogs: frozenset({"lines"}),
    ExitRecord: frozenset({"at"}),
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def _plain(value: Any) -> Any:
    if isinstance(value, OperationError):
        return {"error": str(value.code)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        drop = _VOLATILE.get(type(value), frozenset())
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in drop}
        if isinstance(value, CameraStatus) and out.get("state") == "starting":
            out["state"] = "running"
        if isinstance(value, Snapshot):
            out["png"] = value.image.startswith(PNG_SIGNATURE if value.format == "png" else JPEG_SIGNATURE)
        if isinstance(value, StatusList):
            out["items"] = sorted(out["items"], key=lambda d: d.get("camera_id", 0))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def normalize(outcome: Any) -> Any:
    """A JSON-able, comparable form of a result or an ``OperationError``."""
    return _plain(outcome)


def summarize(norm: Any, limit: int = 60) -> str:
    """One short line for a table cell."""
    if isinstance(norm, dict) and set(norm) == {"error"}:
        return f"error:{norm['error']}"
    if isinstance(norm, dict) and "failure" in norm:
        return f"FAILED {norm['failure']}"[:limit]
    if isinstance(norm, dict):
        if "state" in norm:
            return f"ok state={norm['state']}"
        if "rule" in norm and isinstance(norm["rule"], dict):
            r = norm["rule"]
            return f"ok rule id={r.get('id')} v{r.get('version')}"
        if "items" in norm:
            return f"ok {len(norm['items'])} cameras"
        if "ok" in norm:
            return "ok probe ok" if norm["ok"] else f"ok probe error={str(norm.get('error'))[:30]}"
        return "ok"
    return "ok"


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two normalized values differ (dotted paths), for messages."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}{k}")
            else:
                out.extend(differences(a[k], b[k], f"{path}{k}."))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(differences(x, y, f"{path}{i}."))
        return out
    return [] if a == b else [path.rstrip(".") or "(value)"]
