"""The station's thirteen operations: typed requests, typed results, one Protocol.

Both implementations (``app.legacy`` and ``app.services``) provide
:class:`StationOperations` with identical observable behaviour; the rollout
router chooses which one serves each call. Every result is a frozen dataclass;
every refusal is an :class:`~app.domain.errors.OperationError` with a stable code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from app.domain.camera import CameraState
from app.domain.errors import FieldError, ValidationError
from app.domain.rules import AlertRule

#: operation name -> whether it changes something (writes are never run twice)
OPERATIONS: dict[str, bool] = {
    "create_rule": True,
    "update_rule": True,
    "start_camera": True,
    "stop_camera": True,
    "restart_camera": True,
    "camera_status": False,
    "list_status": False,
    "activate_camera": True,
    "deactivate_camera": True,
    "camera_logs": False,
    "camera_snapshot": False,
    "probe_camera": False,
    "camera_stats": False,
}
READ_ONLY_OPERATIONS = frozenset(op for op, writes in OPERATIONS.items() if not writes)

#: the rollout tracks (docs/rollout.md): the alert-rule writes go first, the camera operations second
RULES_TRACK = "rules"
CAMERAS_TRACK = "cameras"
TRACKS: dict[str, tuple[str, ...]] = {
    RULES_TRACK: ("create_rule", "update_rule"),
    CAMERAS_TRACK: tuple(op for op in OPERATIONS if op not in ("create_rule", "update_rule")),
}
TRACK_OF: dict[str, str] = {op: track for track, ops in TRACKS.items() for op in ops}
assert set(TRACK_OF) == set(OPERATIONS), "every operation belongs to exactly one track"


def track_of(op: str) -> str:
    """The rollout track an operation belongs to; ``KeyError`` for an unknown operation."""
    return TRACK_OF[op]


# ---------------------------------------------------------------- requests


def check_range(name: str, value: Any, low: float, high: float, *, unit: str = "",
                integer: bool = False, subject: str = "request") -> None:
    """Raise :class:`ValidationError` unless ``low < value <= high`` (``low <= value`` for integers)."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (low <= value <= high) if integer else (low < value <= high)
    if not ok:
        what = f"an integer from {low:g} to {high:g}" if integer else f"a number above {low:g} and at most {high:g}"
        raise ValidationError(FieldError(name, f"must be {what}{unit}"), subject=subject)


# The bounds of the requests' parameters are on the request types (``StopCamera.TIMEOUT_MAX``...)
# and each request checks itself (``validate()``): both implementations, and the API's
# models, read them from here.


@dataclass(frozen=True)
class CameraRef:
    """Names one camera (start, restart, status, activate, deactivate, snapshot)."""

    camera_id: int


#: image formats ``camera_snapshot`` answers in
SNAPSHOT_FORMATS = ("png", "jpeg")
#: how long a worker may take to answer a snapshot request (s)
SNAPSHOT_TIMEOUT = 5.0


@dataclass(frozen=True)
class SnapshotRequest(CameraRef):
    """``camera_snapshot`` with a choice of image format (a plain ``CameraRef`` asks for PNG)."""

    format: str = "png"

    FORMATS: ClassVar[tuple[str, ...]] = SNAPSHOT_FORMATS

    @staticmethod
    def format_of(req: CameraRef) -> str:
        """The format ``req`` asks for (PNG for a plain ``CameraRef``); a validation error for another."""
        fmt = req.format if isinstance(req, SnapshotRequest) else "png"
        if fmt not in SNAPSHOT_FORMATS:
            raise ValidationError(FieldError("format", f"must be one of {', '.join(SNAPSHOT_FORMATS)}"),
                                  subject="camera_snapshot request")
        return fmt


@dataclass(frozen=True)
class StopCamera:
    camera_id: int
    timeout: float | None = None  # None = the supervisor's stop timeout

    TIMEOUT_MAX: ClassVar[float] = 60.0

    def validate(self) -> None:
        if self.timeout is not None:
            check_range("timeout", self.timeout, 0, self.TIMEOUT_MAX, unit=" seconds",
                        subject="stop_camera request")


@dataclass(frozen=True)
class ListStatus:
    active_only: bool = False


@dataclass(frozen=True)
class LogsRequest:
    camera_id: int
    limit: int = 200

    LIMIT_MAX: ClassVar[int] = 5000

    def validate(self) -> None:
        check_range("limit", self.limit, 1, self.LIMIT_MAX, integer=True, subject="camera_logs request")


@dataclass(frozen=True)
class ProbeRequest:
    camera_id: int
    timeout: float = 8.0

    TIMEOUT_MAX: ClassVar[float] = 60.0

    def validate(self) -> None:
        check_range("timeout", self.timeout, 0, self.TIMEOUT_MAX, unit=" seconds", subject="probe_camera request")


@dataclass(frozen=True)
class StatsRequest:
    camera_id: int
    window_s: float = 60.0

    WINDOW_MAX: ClassVar[float] = 3600.0

    def validate(self) -> None:
        check_range("window_s", self.window_s, 0, self.WINDOW_MAX, unit=" seconds", subject="camera_stats request")


@dataclass(frozen=True)
class CreateRule:
    rule: AlertRule


@dataclass(frozen=True)
class UpdateRule:
    rule_id: int
    changes: dict[str, Any]
    expected_version: int | None = None  # optimistic concurrency: conflict when it differs


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ExitRecord:
    code: int | None
    signal: int | None
    reason: str
    at: float


@dataclass(frozen=True)
class CameraStatus:
    camera_id: int
    name: str
    state: CameraState
    active: bool
    pid: int | None = None
    uptime: float | None = None
    restarts: int = 0
    last_exit: ExitRecord | None = None
    source: str | None = None  # up | down | opening
    fps: float | None = None
    last_frame_age: float | None = None
    motion: float | None = None
    motion_active: bool = False
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusList:
    items: tuple[CameraStatus, ...]


@dataclass(frozen=True)
class LogEntry:
    ts: float
    source: str  # worker | supervisor
    level: str
    text: str


@dataclass(frozen=True)
class CameraLogs:
    camera_id: int
    lines: tuple[LogEntry, ...]


@dataclass(frozen=True)
class Snapshot:
    """The camera's latest decoded frame at the source's own resolution, encoded as asked.

    The image is in ``png`` or in ``jpeg`` (the other one is empty), as ``format`` says;
    ``image`` is whichever it is. ``seq`` is the worker's decoded-frame count at that frame.
    """

    camera_id: int
    width: int
    height: int
    taken_at: float
    seq: int
    png: bytes = field(default=b"", repr=False)
    format: str = "png"  # "png" | "jpeg"
    jpeg: bytes = field(default=b"", repr=False)

    @property
    def image(self) -> bytes:
        return self.jpeg if self.format == "jpeg" else self.png

    @property
    def content_type(self) -> str:
        return "image/jpeg" if self.format == "jpeg" else "image/png"


@dataclass(frozen=True)
class ProbeResult:
    camera_id: int
    ok: bool
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pix_fmt: str | None = None
    error: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class CameraStats:
    camera_id: int
    window_s: float
    running: bool
    pid: int | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    threads: int | None = None
    children: int | None = None
    fps_avg: float | None = None
    fps_min: float | None = None
    decoded: int = 0
    dropped: int = 0
    motion_avg: float | None = None
    samples: int = 0


@dataclass(frozen=True)
class RuleResult:
    rule: AlertRule


# ---------------------------------------------------------------- the Protocol


@runtime_checkable
class StationOperations(Protocol):
    """What both the legacy and the domain implementation provide."""

    def create_rule(self, req: CreateRule) -> RuleResult: ...
    def update_rule(self, req: UpdateRule) -> RuleResult: ...
    def start_camera(self, req: CameraRef) -> CameraStatus: ...
    def stop_camera(self, req: StopCamera) -> CameraStatus: ...
    def restart_camera(self, req: CameraRef) -> CameraStatus: ...
    def camera_status(self, req: CameraRef) -> CameraStatus: ...
    def list_status(self, req: ListStatus) -> StatusList: ...
    def activate_camera(self, req: CameraRef) -> CameraStatus: ...
    def deactivate_camera(self, req: CameraRef) -> CameraStatus: ...
    def camera_logs(self, req: LogsRequest) -> CameraLogs: ...
    def camera_snapshot(self, req: CameraRef | SnapshotRequest) -> Snapshot: ...
    def probe_camera(self, req: ProbeRequest) -> ProbeResult: ...
    def camera_stats(self, req: StatsRequest) -> CameraStats: ...


class SideEffectFailure(Exception):
    """An implementation failed unexpectedly *after* it changed something.

    The rollout router never falls back on this one (the change may have
    happened); it reports it. Any other unexpected exception from the domain
    path is taken as a failure before any side effect and may fall back.
    """

    def __init__(self, op: str, cause: BaseException, effects: tuple[str, ...] = ()):
        what = f" ({'; '.join(effects)})" if effects else ""
        super().__init__(f"{op} failed after a side effect{what}: {cause!r}")
        self.op = op
        self.cause = cause
        self.effects = tuple(effects)  # what the call marked before it failed (app.domain.effects)
