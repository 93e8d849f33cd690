"""The camera entity, its states and its validation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.domain.errors import FieldError, ValidationError
from app.domain.text import bad_character, text_problem

NAME_MAX = 64
SOURCE_MAX = 2048  # a URL longer than this is a mistake (and an argument list too long)
LOCATION_MAX = 200
TAG_MAX = 40
_NAME_RE = re.compile(r"^[\w][\w .\-()#/]*$", re.UNICODE)
SOURCE_SCHEMES = ("test", "rtsp", "rtsps", "http", "https", "file")
TEST_PATTERNS = ("moving", "still", "bars", "life", "mandelbrot", "testsrc")  # the worker's lavfi patterns


def name_key(name: str) -> str:
    """What makes two names the same: camera and rule names are unique case-insensitively
    (``Lobby``, ``lobby`` and ``LOBBY`` are one name), everywhere: store, both implementations, YAML."""
    return name.strip().casefold()


class CameraState(StrEnum):
    """What a camera is doing. ``inactive`` is decided by the camera's flag, the rest by its worker."""

    INACTIVE = "inactive"
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STALLED = "stalled"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    FAILED = "failed"

    @property
    def is_live(self) -> bool:
        """A worker process exists or is about to (it must be stopped before a delete)."""
        return self in (CameraState.STARTING, CameraState.RUNNING, CameraState.STALLED,
                        CameraState.BACKOFF, CameraState.STOPPING, CameraState.FAILED)


@dataclass(frozen=True)
class MotionSettings:
    enabled: bool = True
    threshold: float = 0.02
    warmup_frames: int = 10


@dataclass(frozen=True)
class Camera:
    """A camera of the station. ``id`` is ``None`` until the store assigned one."""

    name: str
    source: str
    active: bool = True
    max_fps: float | None = None
    loop: bool = False
    motion: MotionSettings = field(default_factory=MotionSettings)
    stall_timeout: float = 10.0
    location: str = ""
    tags: tuple[str, ...] = ()
    id: int | None = None

    def with_changes(self, **changes: Any) -> Camera:
        return replace(self, **changes)

    def problems(self) -> list[FieldError]:
        """Every rule this camera breaks (empty when valid)."""
        errs: list[FieldError] = []
        name = self.name.strip() if isinstance(self.name, str) else ""
        name_err = text_problem(self.name, max_len=10 * NAME_MAX, required=True)
        if name_err:
            errs.append(FieldError("name", name_err))
        elif len(name) > NAME_MAX:
            errs.append(FieldError("name", f"must be at most {NAME_MAX} characters"))
        elif not _NAME_RE.match(name):
            errs.append(FieldError("name", "may contain letters, digits, spaces and . - _ ( ) # /"))
        src_err = source_problem(self.source)
        if src_err:
            errs.append(FieldError("source", src_err))
        if self.max_fps is not None and not (0 < self.max_fps <= 240):
            errs.append(FieldError("max_fps", "must be greater than 0 and at most 240"))
        if not (0 < self.stall_timeout <= 3600):
            errs.append(FieldError("stall_timeout", "must be greater than 0 and at most 3600 seconds"))
        if not (0 < self.motion.threshold < 1):
            errs.append(FieldError("motion.threshold", "must be between 0 and 1 (exclusive)"))
        if not (0 <= self.motion.warmup_frames <= 1000):
            errs.append(FieldError("motion.warmup_frames", "must be between 0 and 1000"))
        loc_err = text_problem(self.location, max_len=LOCATION_MAX)
        if loc_err:
            errs.append(FieldError("location", loc_err))
        for i, tag in enumerate(self.tags):
            tag_err = text_problem(tag, max_len=TAG_MAX, required=True)
            if tag_err:
                errs.append(FieldError(f"tags[{i}]", tag_err))
            elif tag.strip() != tag:
                errs.append(FieldError(f"tags[{i}]", f"must be 1-{TAG_MAX} characters without surrounding spaces"))
        return errs

    def validated(self) -> Camera:
        """Return a normalized copy, or raise :class:`ValidationError` naming every bad field."""
        errs = self.problems()
        if errs:
            raise ValidationError(errs, subject=f"camera {self.name!r}")
        return replace(self, name=self.name.strip(), source=self.source.strip())


def source_problem(source: str) -> str | None:
    """Why ``source`` is not a usable camera source, or ``None``. Never opens it."""
    if not isinstance(source, str) or not source.strip():
        return "must not be empty"
    if len(source) > SOURCE_MAX:
        return f"must be at most {SOURCE_MAX} characters (got {len(source)})"
    source = source.strip()
    bad = bad_character(source)
    if bad is not None:
        pos, why = bad
        return f"must be one line without {why} (at character {pos + 1})"
    if source.startswith("/dev/video"):
        return None if source[len("/dev/video"):].isdigit() else "a capture device looks like /dev/videoN"
    if "://" not in source:
        if source.startswith("/") or source.startswith("./") or re.match(r"^[A-Za-z]:\\", source):
            return None  # a file path; whether it exists is checked when it is opened
        return "must be a URL (test://, rtsp://, rtsps://, http(s)://, file://), a file path or /dev/videoN"
    try:
        parts = urlsplit(source)
    except ValueError as e:  # "Invalid IPv6 URL": an unclosed [ in the host
        return f"is not a valid URL: {e} (an IPv6 host is written in brackets, e.g. rtsp://[fe80::1]:554/)"
    scheme = parts.scheme.lower()
    if scheme not in SOURCE_SCHEMES:
        return f"unsupported scheme {scheme!r} (use one of {', '.join(SOURCE_SCHEMES)})"
    if scheme == "test":
        pattern = parts.netloc or parts.path.lstrip("/")
        if pattern not in TEST_PATTERNS:
            return f"unknown test pattern {pattern!r} (use one of {', '.join(TEST_PATTERNS)})"
        return None
    if scheme == "file":
        return None if parts.path else "file:// URL has no path"
    try:
        host = parts.hostname
    except ValueError as e:
        return f"is not a valid URL: {e}"
    if not host:
        return f"{scheme}:// URL has no host"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "port is not a number between 0 and 65535"
    return None


def mask_secrets(source: str) -> str:
    """Replace a password in a URL with ``***`` (user stays visible)."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
        password = parts.password
    except ValueError:  # not a URL that parses: mask whatever looks like user:password@
        from app.domain.text import mask_urls

        return mask_urls(source)
    if password is None:
        return source
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def has_secret(source: str) -> bool:
    try:
        return "://" in source and urlsplit(source).password is not None
    except ValueError:
        return False
