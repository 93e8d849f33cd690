"""What "the same answer" means when the legacy and the domain paths are compared.

One set of rules, used everywhere two answers are compared: the shadow comparison of
the router, ``edge-station verify`` on a scratch station and ``verify --live`` through
the API (which compares the JSON answers of the running station):

* volatile fields (pid, uptimes, CPU, frame counters, timestamps, image bytes...) are
  dropped (:data:`VOLATILE`);
* ``starting`` and ``running`` are the same state (which one a caller sees right after
  a start is a matter of timing);
* a snapshot is compared by whether its image is valid (its ``png`` field), not by its bytes;
* the log lines are compared by being a list of lines, not by their text;
* floats are rounded to 2 places; status lists are sorted by camera id;
* an ``OperationError`` becomes ``{"error": code}`` (the code is the contract, the
  message is not); a failure of a path (``{"failure": ...}``) is never the same answer.

Two runs one after the other on one live station differ by construction in a few more
fields (the first run leaves a restart count and a last exit behind, each run names the
rule it creates after its path): the ``live`` profile (:data:`LIVE_RUN_BOUND`) drops them too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from app.domain.errors import OperationError
from app.domain.operations import (
    CameraLogs,
    CameraStats,
    CameraStatus,
    ExitRecord,
    ProbeResult,
    RuleResult,
    Snapshot,
    StatusList,
)
from app.domain.rules import AlertRule

#: per result type: the fields that are never compared (they change from one call to the next)
VOLATILE: dict[type, frozenset[str]] = {
    CameraStatus: frozenset({"pid", "uptime", "source", "fps", "last_frame_age", "motion", "motion_active",
                             "width", "height", "codec", "error"}),
    CameraStats: frozenset({"pid", "cpu_percent", "rss_bytes", "threads", "children", "fps_avg", "fps_min",
                            "decoded", "dropped", "motion_avg", "samples"}),
    ProbeResult: frozenset({"elapsed"}),
    Snapshot: frozenset({"taken_at", "seq", "png", "jpeg"}),  # compared: the image is valid (as "png")
    CameraLogs: frozenset(),  # "lines": compared as being a list (SHAPE_ONLY)
    ExitRecord: frozenset({"at"}),
}

#: per result type: the fields compared by their kind only (a list of entries), not their contents
SHAPE_ONLY: dict[type, frozenset[str]] = {CameraLogs: frozenset({"lines"})}

#: per result type: what also differs between two runs one after the other on one live station
LIVE_RUN_BOUND: dict[type, frozenset[str]] = {
    CameraStatus: frozenset({"state", "restarts", "last_exit"}),
    CameraStats: frozenset({"window_s"}),
    ProbeResult: frozenset({"fps", "pix_fmt", "error"}),
    Snapshot: frozenset({"width", "height", "format"}),
    AlertRule: frozenset({"id", "name"}),
}

#: the result type of each operation (the ``data`` of its answer through the API)
RESULT_TYPES: dict[str, type] = {
    "create_rule": RuleResult,
    "update_rule": RuleResult,
    "start_camera": CameraStatus,
    "stop_camera": CameraStatus,
    "restart_camera": CameraStatus,
    "camera_status": CameraStatus,
    "list_status": StatusList,
    "activate_camera": CameraStatus,
    "deactivate_camera": CameraStatus,
    "camera_logs": CameraLogs,
    "camera_snapshot": Snapshot,
    "probe_camera": ProbeResult,
    "camera_stats": CameraStats,
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


@functools.cache
def _field_types(cls: type) -> dict[str, type | None]:
    """Each field's dataclass type, when it holds one (directly, optional, or as ``tuple[X, ...]``)."""
    out: dict[str, type | None] = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [hint]
        while args:
            h = args.pop()
            origin = typing.get_origin(h)
            if origin in (typing.Union, types.UnionType, tuple):
                args.extend(a for a in typing.get_args(h) if a is not Ellipsis)
            elif isinstance(h, type) and dataclasses.is_dataclass(h):
                out[name] = h
                break
        else:
            out[name] = None
    return out


def _image(fields: Mapping[str, Any]) -> bytes:
    fmt = fields.get("format", "png")
    raw = fields.get("jpeg" if fmt == "jpeg" else "png", b"")
    if isinstance(raw, str):  # an API answer: base64 text
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return bytes(raw) if isinstance(raw, bytes | bytearray) else b""


def _record(cls: type, fields: Mapping[str, Any], live: bool) -> dict[str, Any]:
    drop = VOLATILE.get(cls, frozenset()) | (LIVE_RUN_BOUND.get(cls, frozenset()) if live else frozenset())
    shape = SHAPE_ONLY.get(cls, frozenset())
    nested = _field_types(cls)
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in drop:
            continue
        if name in shape:
            out[name] = isinstance(value, Sequence) and not isinstance(value, str | bytes)
            continue
        out[name] = _plain(value, nested.get(name), live)
    if cls is CameraStatus and out.get("state") == "starting":
        out["state"] = "running"
    if cls is Snapshot:
        out["png"] = _image(fields).startswith(JPEG_SIGNATURE if fields.get("format") == "jpeg" else PNG_SIGNATURE)
    if cls is StatusList and isinstance(out.get("items"), list):
        out["items"] = sorted(out["items"], key=lambda d: d.get("camera_id", 0) if isinstance(d, dict) else 0)
    return out


def _plain(value: Any, declared: type | None = None, live: bool = False) -> Any:
    if isinstance(value, OperationError):
        return {"error": str(value.code)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _record(type(value), {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, live)
    if declared is not None and isinstance(value, Mapping):  # a JSON object of a known result type
        return _record(declared, value, live)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, None, live) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v, declared, live) for v in value]
    return value


def normalize(outcome: Any, *, live: bool = False) -> Any:
    """A JSON-able, comparable form of a result or an ``OperationError`` (``live``: the live profile)."""
    return _plain(outcome, None, live)


def normalize_answer(op: str, data: Any, *, live: bool = True) -> Any:
    """The comparable form of the ``data`` of an API answer of ``op`` (the same rules as :func:`normalize`)."""
    if op not in RESULT_TYPES:
        raise KeyError(f"unknown operation {op!r} (known: {', '.join(RESULT_TYPES)})")
    return _plain(data, RESULT_TYPES[op], live)


def is_failure(norm: Any) -> bool:
    """A normalized outcome that is a failure of its path (not an answer)."""
    return isinstance(norm, dict) and "failure" in norm


def same_answer(a: Any, b: Any) -> bool:
    """Whether two normalized outcomes are the same answer (a failure never is)."""
    return a == b and not is_failure(a) and not is_failure(b)


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
