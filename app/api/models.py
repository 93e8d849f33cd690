"""The API's request and answer models (pydantic): they are the validation and the OpenAPI document.

Every bound the domain enforces on a request is written here as a schema bound (ranges, lengths,
the metric names, the schedule syntax, "at least one change", "exactly one of ..."), so the
document the station serves and what it accepts cannot disagree. What a schema cannot say
(the metric must apply to the target, ``camera_id`` only with a one-camera target, a schedule
span's end after its start) the domain still judges, with a 422 naming the field.

Answers are the operations' result dataclasses, wrapped in ``{"data": ..., "route": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)
from pydantic import Tag as UnionTag

from app.api.routes import HealthDocument, RouteInfo
from app.domain.alerts import AlertEvent
from app.domain.camera import NAME_MAX, Camera, MotionSettings
from app.domain.errors import ErrorCode
from app.domain.operations import LogsRequest, ProbeRequest, StatsRequest, StopCamera
from app.domain.rules import METRICS, AlertRule, Comparator, NoDataPolicy, Severity, TargetKind

INT64_MAX = 2**63 - 1
#: the operations' own bounds, read from the request types that both implementations validate with
LOGS_LIMIT_MAX = LogsRequest.LIMIT_MAX
PROBE_TIMEOUT_MAX = ProbeRequest.TIMEOUT_MAX
STOP_TIMEOUT_MAX = StopCamera.TIMEOUT_MAX
STATS_WINDOW_MAX = StatsRequest.WINDOW_MAX
SECONDS_MAX = 7 * 86400  # a rule's durations

def _json_int(v: Any) -> Any:
    """An integer as JSON Schema has it: ``3`` and ``3.0`` are integers; ``true`` and ``"3"`` are not."""
    if isinstance(v, bool) or isinstance(v, str):
        raise ValueError("must be an integer")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


#: an integer field's JSON rule; written as ``Annotated[int, Field(<bounds>), JSON_INT]`` (the bounds on
#: the integer itself, so the document states them)
JSON_INT = BeforeValidator(_json_int)

Id = Annotated[int, Field(ge=1, le=INT64_MAX, description="a positive 64-bit id"), JSON_INT]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Seconds = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=SECONDS_MAX)]
if TYPE_CHECKING:  # the names are known when the app runs, not to a type checker
    Metric = str
else:
    Metric = Literal[tuple(sorted(METRICS))]

_DAY = "(?:mon|tue|wed|thu|fri|sat|sun)"
_HM = "(?:[01]?[0-9]|2[0-3]):[0-5][0-9]"
_SPAN = rf"{_DAY}(?:[ ]*-[ ]*{_DAY})?[ ]+{_HM}[ ]*-[ ]*(?:{_HM}|24:00)"
#: ``mon-fri 08:00-18:00; sat 10:00-14:00`` (lower case; empty = always)
SCHEDULE_PATTERN = rf"^[ ]*(?:{_SPAN})?[ ]*(?:;[ ]*(?:{_SPAN})?[ ]*)*$"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
#: what no text field may hold (app/domain/text.py): control characters, bidirectional overrides and
#: isolates, line separators (a character class's contents)
_BIDI = "\u202a-\u202e\u2066-\u2069\u2028\u2029"
_BAD = r"\x00-\x1f\x7f-\x9f" + _BIDI
_URLCHARS = rf"[^\s{_BAD}]"
#: a camera source the domain takes (app/domain/camera.py: source_problem). Plain file paths (give
#: them as file:// URLs) and IPv6 hosts are left to the cameras file: the schema may be stricter
#: than the domain, never looser
SOURCE_PATTERN = (
    r"^[ ]*(?:"
    rf"test://(?:/)?(?:moving|still|bars|life|mandelbrot|testsrc)(?:[/?#]{_URLCHARS}*)?"
    rf"|file://[A-Za-z0-9.-]*/{_URLCHARS}*"
    rf"|(?:rtsps?|https?)://(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?[A-Za-z0-9._~-]+(?::{_PORT})?(?:[/?#]{_URLCHARS}*)?"
    r"|/dev/video[0-9]+"
    r")[ ]*$"
)
#: a tag: 1-40 characters, no control character, no space at either end
TAG_PATTERN = rf"^[^\s{_BAD}](?:[^{_BAD}]*[^\s{_BAD}])?$"
#: a multi-line text (a rule's description): newlines and tabs, but no other control character, no
#: bidirectional override and no line separator (app/domain/text.py)
DESCRIPTION_PATTERN = rf"^[^\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]*$"
#: a one-line text (a location, a notification command's argument): the same, without newlines or tabs
TEXT_PATTERN = rf"^[^{_BAD}]*$"
#: a camera's name (app/domain/camera.py)
CAMERA_NAME_PATTERN = r"^[ ]*[\w][\w .\-()#/]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def Optional(**kw: Any) -> Any:  # noqa: N802 - reads like a type in the models below
    """A field a patch may leave out (not given = unchanged); ``null`` is refused unless the type allows it."""
    return Field(default=None, json_schema_extra=_no_default, **kw)


# ---------------------------------------------------------------- alert rules

#: an http(s) URL with a plain host name or IPv4 address (bracketed IPv6 is left out: never looser
#: than the domain, whose URL parser refuses some bracketed forms)
WEBHOOK_PATTERN = (r"^https?://(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?[A-Za-z0-9._~-]+(?::[0-9]{1,5})?"
                   r"(?:[/?#][^\s\x00-\x1f\x7f]*)?$")


CommandArg = Annotated[StrictStr, Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN)]


class NotifyIn(Strict):
    """Where a firing rule is sent besides the operator's screen."""

    webhook_url: Annotated[StrictStr, Field(max_length=2000, pattern=WEBHOOK_PATTERN)] | None = None
    command: list[CommandArg] = Field(default_factory=list, max_length=64)
    desktop: StrictBool = True
    sound: StrictBool = False


class NotifyPatch(Strict):
    """A change of ``notify``: the settings it leaves out keep their values."""

    webhook_url: Annotated[StrictStr, Field(max_length=2000, pattern=WEBHOOK_PATTERN)] | None = Optional()
    command: list[CommandArg] = Optional(max_length=64)
    desktop: StrictBool = Optional()
    sound: StrictBool = Optional()


def _rule_targets_schema() -> dict[str, Any]:
    """Which metrics apply to which target, and ``camera_id`` exactly with a one-camera target, as
    JSON Schema (``oneOf`` one branch per target; no ``target`` means all cameras)."""
    def metrics(kind: TargetKind) -> list[str]:
        return sorted(m for m, (kinds, _, _) in METRICS.items() if kind in kinds)

    branches = []
    for kind in TargetKind:
        branch: dict[str, Any] = {"properties": {"target": {"const": kind.value}, "metric": {"enum": metrics(kind)}}}
        if kind is TargetKind.CAMERA:
            branch["required"] = ["target", "camera_id"]
            branch["properties"]["camera_id"] = {"type": "integer"}
        else:
            branch["properties"]["camera_id"] = {"type": "null"}
            if kind is not TargetKind.ALL_CAMERAS:
                branch["required"] = ["target"]
        branches.append(branch)
    return {"oneOf": branches}


class RuleIn(Strict):
    """A new alert rule (``id`` and ``version`` are the station's).

    The metric must apply to the target, and ``camera_id`` is given exactly when the target is one
    camera (the ``oneOf`` of this schema); the camera must exist.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_rule_targets_schema())

    name: Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"\S")]
    metric: Metric
    comparator: Comparator
    threshold: Finite
    target: TargetKind = TargetKind.ALL_CAMERAS
    camera_id: Id | None = None
    for_seconds: Seconds = 0.0
    keep_firing_for: Seconds = 0.0
    severity: Severity = Severity.WARNING
    cooldown: Seconds = 300.0
    repeat_interval: Seconds = 0.0
    no_data: NoDataPolicy = NoDataPolicy.KEEP_LAST
    schedule: Annotated[StrictStr, Field(max_length=500, pattern=SCHEDULE_PATTERN)] = ""
    enabled: StrictBool = True
    notify: NotifyIn = Field(default_factory=NotifyIn)
    description: Annotated[StrictStr, Field(max_length=500, pattern=DESCRIPTION_PATTERN)] = ""
    template: Annotated[StrictStr, Field(max_length=100)] | None = None

    def to_rule(self) -> AlertRule:
        from app.domain.rules import Notify

        d = self.model_dump()
        n = self.notify
        d["notify"] = Notify(webhook_url=n.webhook_url, command=tuple(n.command), desktop=n.desktop, sound=n.sound)
        return AlertRule(**d)


class RuleChanges(Strict):
    """The fields of a rule to change (names as in the rule); at least one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"\S")] = Optional()
    metric: Metric = Optional()
    comparator: Comparator = Optional()
    threshold: Finite = Optional()
    target: TargetKind = Optional()
    camera_id: Id | None = Optional()
    for_seconds: Seconds = Optional()
    keep_firing_for: Seconds = Optional()
    severity: Severity = Optional()
    cooldown: Seconds = Optional()
    repeat_interval: Seconds = Optional()
    no_data: NoDataPolicy = Optional()
    schedule: Annotated[StrictStr, Field(max_length=500, pattern=SCHEDULE_PATTERN)] = Optional()
    enabled: StrictBool = Optional()
    notify: NotifyPatch = Optional()
    description: Annotated[StrictStr, Field(max_length=500, pattern=DESCRIPTION_PATTERN)] = Optional()
    template: Annotated[StrictStr, Field(max_length=100)] | None = Optional()

    @model_validator(mode="after")
    def _at_least_one(self) -> RuleChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def as_changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.model_fields_set}
        if "notify" in out and out["notify"] is not None:
            patch = out["notify"]
            out["notify"] = {k: (tuple(v) if k == "command" else v)
                             for k, v in ((k, getattr(patch, k)) for k in patch.model_fields_set)}
        return out


class RuleUpdate(Strict):
    """The fields to change and, optionally, the version the change is based on (409 when it differs)."""

    changes: RuleChanges
    expected_version: Id | None = None


# ---------------------------------------------------------------- cameras


class MotionIn(Strict):
    enabled: StrictBool = True
    threshold: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)] = 0.02
    warmup_frames: Annotated[int, Field(ge=0, le=1000), JSON_INT] = 10


class MotionPatch(Strict):
    enabled: StrictBool = Optional()
    threshold: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)] = Optional()
    warmup_frames: Annotated[int, Field(ge=0, le=1000), JSON_INT] = Optional()


CameraName = Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX, pattern=CAMERA_NAME_PATTERN)]
Source = Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=SOURCE_PATTERN)]
Tag = Annotated[StrictStr, Field(min_length=1, max_length=40, pattern=TAG_PATTERN)]
Fps = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=240)]
StallTimeout = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=3600)]


class CameraIn(Strict):
    """A new camera (``id`` is the station's)."""

    name: CameraName
    source: Source
    active: StrictBool = True
    max_fps: Fps | None = None
    loop: StrictBool = False
    motion: MotionIn = Field(default_factory=MotionIn)
    stall_timeout: StallTimeout = 10.0
    location: Annotated[StrictStr, Field(max_length=200, pattern=TEXT_PATTERN)] = ""
    tags: list[Tag] = Field(default_factory=list, max_length=50)

    def to_camera(self) -> Camera:
        d = self.model_dump()
        d["motion"] = MotionSettings(**d["motion"])
        d["tags"] = tuple(d["tags"])
        return Camera(**d)


class CameraChanges(Strict):
    """The fields of a camera to change; at least one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: CameraName = Optional()
    source: Source = Optional()
    active: StrictBool = Optional()
    max_fps: Fps | None = Optional()
    loop: StrictBool = Optional()
    motion: MotionPatch = Optional()
    stall_timeout: StallTimeout = Optional()
    location: Annotated[StrictStr, Field(max_length=200, pattern=TEXT_PATTERN)] = Optional()
    tags: list[Tag] = Optional(max_length=50)

    @model_validator(mode="after")
    def _at_least_one(self) -> CameraChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def as_changes(self, current: Camera) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.model_fields_set}
        if "motion" in out:
            patch = out["motion"]
            out["motion"] = MotionSettings(**{**current.motion.__dict__,
                                              **{k: getattr(patch, k) for k in patch.model_fields_set}})
        if "tags" in out:
            out["tags"] = tuple(out["tags"])
        return out


class CamerasYaml(Strict):
    """A cameras file (the format of ``config/cameras.yaml``) to import, all or nothing."""

    yaml: Annotated[StrictStr, Field(min_length=1, max_length=1_000_000)]
    replace: StrictBool = False


# ---------------------------------------------------------------- rollout, settings, alerts


def _thresholds_model() -> type[BaseModel]:
    """The rollout thresholds a change may set, each with the range the rollout enforces."""
    from pydantic import create_model

    from app.rollout.settings import Thresholds

    limits = dict(Thresholds._LIMITS)
    defaults = {f: getattr(Thresholds(), f) for f in limits}
    fields_: dict[str, Any] = {}
    for name, (low, high) in limits.items():
        if isinstance(defaults.get(name), int) and not isinstance(defaults.get(name), bool):
            tp: Any = Annotated[int, Field(ge=int(low), le=int(high)), JSON_INT]
        else:
            tp = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high)]
        fields_[name] = (tp, Optional())
    return create_model("RolloutThresholds", __config__=ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1}),
                        **fields_)


if TYPE_CHECKING:  # built from the rollout's limits when the app runs
    RolloutThresholds = BaseModel
else:
    RolloutThresholds = _thresholds_model()
_ROLLOUT_SETTINGS = ("use_domain", "percent", "auto_rollback", "shadow_rate", "thresholds")


#: a rollout track (docs/rollout.md): the alert-rule writes, or the camera operations; ``all`` for both
TrackName = Literal["rules", "cameras", "all"]
OverrideReason = Annotated[StrictStr, Field(min_length=1, max_length=500, pattern=r"\S")]
_Reason = Annotated[StrictStr, Field(min_length=1, max_length=500, pattern=r"\S")]


class RolloutResume(Strict):
    """Clear a track's rollback latch (audited with the reason); the track stays at 0 %."""

    track: Literal["rules", "cameras", "all"]
    reason: _Reason


class ProblemReportIn(Strict):
    """A problem report against the current stage of a track; an open report holds its gate."""

    track: Literal["rules", "cameras"]
    text: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"\S")]
    camera_id: Id | None = None
    rule_id: Id | None = None
    operator: Annotated[StrictStr, Field(min_length=1, max_length=80, pattern=r"\S")] = "api"


class ProblemReportResolve(Strict):
    """Resolve an open problem report (audited)."""

    note: _Reason
    by: Annotated[StrictStr, Field(min_length=1, max_length=80, pattern=r"\S")] = "api"


class RolloutSettingsChange(Strict):
    """Change rollout settings (at least one); raising the share goes through the gate."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"anyOf": [{"required": [f]} for f in _ROLLOUT_SETTINGS]})

    use_domain: StrictBool = Optional()
    percent: Annotated[int, Field(ge=0, le=100), JSON_INT] = Optional()
    auto_rollback: StrictBool = Optional()
    shadow_rate: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)] = Optional()
    thresholds: RolloutThresholds = Optional()
    reason: Annotated[StrictStr, Field(max_length=500)] = ""
    track: TrackName = Optional()  # default: both tracks
    override_reason: OverrideReason = Optional()  # raise a share although the gate holds (audited)

    @model_validator(mode="after")
    def _a_setting(self) -> RolloutSettingsChange:
        if not set(_ROLLOUT_SETTINGS) & self.model_fields_set:
            raise ValueError(f"give at least one of {', '.join(_ROLLOUT_SETTINGS)}")
        return self

    def change(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.model_fields_set}
        if "thresholds" in out:
            t = out["thresholds"]
            out["thresholds"] = {k: getattr(t, k) for k in t.model_fields_set}
        return out


class RolloutRollback(Strict):
    """Roll back now: every call on legacy, latched until turned on again."""

    rollback: Literal[True]
    reason: Annotated[StrictStr, Field(max_length=500)] = ""
    track: TrackName = Optional()  # default: both tracks

    def change(self) -> dict[str, Any]:
        return {"rollback": True, "reason": self.reason, "track": self.track}


class RolloutAdvance(Strict):
    """Advance to the next stage when the gate allows it (409 with the gate's reasons when it does not)."""

    advance: Literal[True]
    reason: Annotated[StrictStr, Field(max_length=500)] = ""
    track: TrackName = Optional()  # default: each track whose gate passes
    override_reason: OverrideReason = Optional()  # advance although the gate holds (audited)

    def change(self) -> dict[str, Any]:
        return {"advance": True, "reason": self.reason, "track": self.track,
                "override_reason": self.override_reason}


def _rollout_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "rollback" if "rollback" in v else "advance" if "advance" in v else "settings"
    if isinstance(v, RolloutRollback):
        return "rollback"
    return "advance" if isinstance(v, RolloutAdvance) else "settings"


#: exactly one kind of change: settings, a rollback or an advance
RolloutUpdate = Annotated[
    Annotated[RolloutRollback, UnionTag("rollback")] | Annotated[RolloutAdvance, UnionTag("advance")]
    | Annotated[RolloutSettingsChange, UnionTag("settings")],
    Discriminator(_rollout_kind),
]
#: union tags that pydantic puts into an error's location (not field names)
UNION_TAGS = frozenset({"rollback", "advance", "settings"})


@dataclass(frozen=True)
class RolloutChange:
    """One change of the rollout as the backend reads it (every field present)."""

    use_domain: bool | None = None
    percent: int | None = None
    auto_rollback: bool | None = None
    shadow_rate: float | None = None
    thresholds: dict[str, Any] | None = None
    rollback: bool = False
    advance: bool = False
    reason: str = ""
    track: str | None = None
    override_reason: str | None = None


def rollout_change(body: RolloutSettingsChange | RolloutRollback | RolloutAdvance) -> RolloutChange:
    """The change as the backend reads it (every field present)."""
    return RolloutChange(**body.change())


class Acknowledge(Strict):
    """Who acknowledges the event (default: ``api``)."""

    by: Annotated[StrictStr, Field(min_length=1, max_length=80, pattern=r"\S")] = "api"


_Port = Annotated[int, Field(ge=0, le=65535), JSON_INT]
_MaxBody = Annotated[int, Field(ge=1024, le=16 * 1024 * 1024), JSON_INT]
_MaxConnections = Annotated[int, Field(ge=4, le=512), JSON_INT]
_Timeout = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=300)]
_Language = Annotated[StrictStr, Field(max_length=20, pattern=r"^[A-Za-z_]*$")]
_RetentionDays = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=3650)]
_AuditRows = Annotated[int, Field(ge=100, le=100_000_000), BeforeValidator(_json_int)]
_ImportBytes = Annotated[int, Field(ge=1024, le=10_000_000), BeforeValidator(_json_int)]


class SettingsUpdate(Strict):
    """Settings to store (in one transaction, each change audited); the API's own take effect at the next start,
    the audit log's retention at its next pruning and the import limit at the next import."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    api_port: _Port = Optional(alias="api.port")
    api_max_body: _MaxBody = Optional(alias="api.max_body")
    api_max_connections: _MaxConnections = Optional(alias="api.max_connections")
    api_request_timeout: _Timeout = Optional(alias="api.request_timeout")
    api_keep_alive: _Timeout = Optional(alias="api.keep_alive")
    kiosk_enabled: StrictBool = Optional(alias="kiosk.enabled")
    ui_language: _Language = Optional(alias="ui.language")
    audit_retention_days: _RetentionDays = Optional(alias="audit.retention_days")
    audit_max_rows: _AuditRows = Optional(alias="audit.max_rows")
    import_max_bytes: _ImportBytes = Optional(alias="import.max_bytes")

    @model_validator(mode="after")
    def _at_least_one(self) -> SettingsUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one setting")
        return self

    def as_values(self) -> dict[str, Any]:
        fields = type(self).model_fields
        return {fields[k].alias or k: getattr(self, k) for k in self.model_fields_set}


# ---------------------------------------------------------------- answers

T = TypeVar("T")


if TYPE_CHECKING:  # the operations' codes and the HTTP layer's own, known when the app runs
    ErrorCodeName = str
else:
    ErrorCodeName = Literal[tuple(c.value for c in ErrorCode) + (
        "bad_request", "unauthorized", "forbidden", "method_not_allowed", "length_required",
        "payload_too_large", "unsupported_media_type", "internal")]


class ErrorInfo(BaseModel):
    code: ErrorCodeName
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """Every refusal: a stable code, a message, details (``errors``: ``[{field, message}]`` for 422)."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorInfo
    route: RouteInfo | None = None


class Routed(BaseModel, Generic[T]):
    """An operation's answer and how the router served it."""

    model_config = ConfigDict(extra="forbid")
    data: T
    route: RouteInfo


class Data(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="forbid")
    data: T


class Deleted(BaseModel):
    deleted: int


class RuleList(BaseModel):
    items: list[AlertRule]


class CameraList(BaseModel):
    items: list[Camera]


class EventList(BaseModel):
    items: list[AlertEvent]


class AuditRecord(BaseModel):
    id: int | None
    at: str | None
    op: str
    outcome: str
    key: str
    path: str
    latency_ms: float | None
    fallback: bool
    actor: str
    reason: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """Newest first; pass ``next_before`` as ``before`` for the next page (null: no more)."""

    items: list[AuditRecord]
    next_before: int | None


class ImportResult(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]


__all__ = [
    "Acknowledge", "AuditPage", "CameraChanges", "CameraIn", "CameraList", "CamerasYaml", "Data", "Deleted",
    "ErrorBody", "EventList", "ProblemReportIn", "ProblemReportResolve", "RolloutResume", "HealthDocument", "ImportResult", "RolloutUpdate", "Routed", "RuleChanges",
    "RuleIn", "RuleList", "RuleUpdate", "SettingsUpdate",
]
