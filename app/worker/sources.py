"""Camera source URLs → PyAV open arguments.

Supported forms:

- ``test://PATTERN[?size=WxH&rate=N]`` — FFmpeg lavfi test sources (the demo
  default); ``moving`` produces motion, ``still`` does not.
- a file path or ``file://`` URL (the worker can loop it).
- ``rtsp://`` / ``rtsps://`` — RTSP over TCP with socket timeouts.
- ``http://`` / ``https://`` — with read/write timeouts.
- ``/dev/videoN`` — a V4L2 capture device.

``validate_source_url`` checks the syntax only (no I/O, no PyAV import), so the
store/config layer can call it cheaply. ``parse_source_url`` returns a
``SourceSpec`` with everything the worker needs to call ``av.open``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:  # pragma: no cover - PyAV loads only when a source is opened
    import av.container

__all__ = [
    "DEFAULT_TEST_RATE",
    "DEFAULT_TEST_SIZE",
    "TEST_PATTERNS",
    "InvalidSourceError",
    "SourceError",
    "SourceKind",
    "SourceNotFoundError",
    "SourceOpenError",
    "SourceReadError",
    "SourceSpec",
    "UnsupportedSchemeError",
    "check_source_available",
    "mask_url",
    "parse_source_url",
    "validate_source_url",
]

SourceKind = Literal["test", "file", "rtsp", "http", "v4l2"]

#: ``test://NAME`` → lavfi source filter.
TEST_PATTERNS: dict[str, str] = {
    "moving": "testsrc2",  # moving shapes and a running counter: motion
    "still": "smptebars",  # static colour bars: no motion
    "bars": "smptehdbars",  # static
    "testsrc": "testsrc",  # scrolling gradient and counter: motion
    "life": "life",  # Conway's game of life: motion everywhere
    "mandelbrot": "mandelbrot",  # slow zoom: motion everywhere
}
DEFAULT_TEST_SIZE = (640, 360)
DEFAULT_TEST_RATE = 15.0
_MAX_TEST_SIZE = (3840, 2160)
_MAX_TEST_RATE = 120.0
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_V4L2_RE = re.compile(r"^/dev/video\d+$")
_SUPPORTED = "test://, file paths or file://, rtsp://, rtsps://, http://, https://, /dev/videoN"


class SourceError(Exception):
    """Base class for everything that can go wrong with a camera source."""


class InvalidSourceError(SourceError, ValueError):
    """The source URL is malformed (a configuration error, never retried)."""


class UnsupportedSchemeError(InvalidSourceError):
    """The URL scheme is not one the worker can open."""


class SourceNotFoundError(SourceError):
    """A file source points at a path that does not exist (a configuration error)."""


class SourceOpenError(SourceError):
    """Opening the source failed (network down, device busy…); the worker retries."""


class SourceReadError(SourceError):
    """Reading or decoding failed after the source was open; the worker reconnects."""


@dataclass(frozen=True)
class SourceSpec:
    """Everything needed to open a source with ``av.open(file, format=, options=)``."""

    url: str  # as configured (may contain a password: never log it, use ``display``)
    kind: SourceKind
    file: str  # first argument of av.open
    format: str | None = None  # container/device format (lavfi, v4l2) or None to probe
    options: dict[str, str] = field(default_factory=dict)
    live: bool = False  # a live stream (EOF means the source was lost)
    paced: bool = False  # frames come as fast as we read them; pace to their timestamps

    @property
    def display(self) -> str:
        """The URL with any password masked, for logs and error messages."""
        return mask_url(self.url)

    @property
    def loopable(self) -> bool:
        return self.kind == "file"

    def open_kwargs(self, timeout: float | tuple[float, float] | None = None) -> dict[str, object]:
        """Keyword arguments for ``av.open`` (``file`` included)."""
        kwargs: dict[str, object] = {"file": self.file, "mode": "r"}
        if self.format:
            kwargs["format"] = self.format
        if self.options:
            kwargs["options"] = dict(self.options)
        if timeout is not None:
            kwargs["timeout"] = timeout
        return kwargs

    def open(self, timeout: float | tuple[float, float] | None = None) -> av.container.InputContainer:
        """``av.open`` of the source for reading (the arguments of ``open_kwargs``)."""
        import av

        return av.open(self.file, mode="r", format=self.format or None,
                       options=dict(self.options) if self.options else None, timeout=timeout)


def mask_url(url: str) -> str:
    """``rtsp://user:secret@host/x`` → ``rtsp://user:***@host/x``; other strings unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def validate_source_url(url: str) -> None:
    """Raise ``InvalidSourceError`` (a ``ValueError``) when *url* is not a usable source.

    Syntax only: no file system or network access, so it is fast and safe to call
    from configuration validation.
    """
    parse_source_url(url)


def parse_source_url(url: str, *, io_timeout: float = 5.0) -> SourceSpec:
    """Turn a configured source URL into a ``SourceSpec``.

    *io_timeout* (seconds) becomes the socket/read timeout of network sources.
    Raises ``InvalidSourceError``/``UnsupportedSchemeError`` with a precise message.
    """
    if not isinstance(url, str):
        raise InvalidSourceError(f"source URL must be a string, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise InvalidSourceError("source URL is empty")
    if text != url:
        raise InvalidSourceError(f"source URL {mask_url(url)!r} has leading or trailing spaces")
    if any(ord(ch) < 32 for ch in url):
        raise InvalidSourceError(f"source URL {mask_url(url)!r} contains control characters")

    if _V4L2_RE.match(url):
        return SourceSpec(url=url, kind="v4l2", file=url, format="v4l2", live=True)
    if url.startswith("/dev/video"):
        raise InvalidSourceError(f"video device {url!r} must look like /dev/videoN (N a number)")

    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        # No scheme: a plain file path.
        return _file_source(url, url)
    scheme = scheme.lower()
    if scheme == "test":
        return _test_source(url)
    if scheme == "file":
        return _file_url(url)
    if scheme in ("rtsp", "rtsps"):
        return _network_source(url, "rtsp", io_timeout)
    if scheme in ("http", "https"):
        return _network_source(url, "http", io_timeout)
    raise UnsupportedSchemeError(
        f"unsupported source URL scheme {scheme + '://'!r} in {mask_url(url)!r} "
        f"(supported: {_SUPPORTED})"
    )


def check_source_available(spec: SourceSpec) -> None:
    """Cheap I/O check before opening: a file source must exist and be a readable file.

    Raises ``SourceNotFoundError``. Devices and network sources are not checked
    here (a camera that is unplugged or offline is retried, not a config error).
    """
    if spec.kind != "file":
        return
    if not os.path.exists(spec.file):
        raise SourceNotFoundError(f"video file not found: {spec.file}")
    if not os.path.isfile(spec.file):
        raise SourceNotFoundError(f"video source is not a regular file: {spec.file}")
    if not os.access(spec.file, os.R_OK):
        raise SourceNotFoundError(f"video file is not readable: {spec.file}")


# ---------------------------------------------------------------------------


def _test_source(url: str) -> SourceSpec:
    parts = urlsplit(url)
    name = (parts.netloc + parts.path).strip("/").lower()
    if not name:
        raise InvalidSourceError(
            f"test source {url!r} names no pattern (use one of: {', '.join(sorted(TEST_PATTERNS))})"
        )
    if name not in TEST_PATTERNS:
        raise InvalidSourceError(
            f"unknown test pattern {name!r} in {url!r} (use one of: {', '.join(sorted(TEST_PATTERNS))})"
        )
    if parts.fragment:
        raise InvalidSourceError(f"test source {url!r} must not have a #fragment")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise InvalidSourceError(f"malformed query in test source {url!r}: {exc}") from None
    unknown = sorted(set(query) - {"size", "rate"})
    if unknown:
        raise InvalidSourceError(
            f"unknown parameter(s) {', '.join(unknown)} in test source {url!r} (allowed: size, rate)"
        )
    for key, values in query.items():
        if len(values) != 1:
            raise InvalidSourceError(f"parameter {key!r} given more than once in {url!r}")

    width, height = DEFAULT_TEST_SIZE
    if "size" in query:
        match = _SIZE_RE.match(query["size"][0])
        if not match:
            raise InvalidSourceError(
                f"size {query['size'][0]!r} in {url!r} must look like WIDTHxHEIGHT, e.g. 640x360"
            )
        width, height = int(match.group(1)), int(match.group(2))
        if not (16 <= width <= _MAX_TEST_SIZE[0] and 16 <= height <= _MAX_TEST_SIZE[1]):
            raise InvalidSourceError(
                f"size {width}x{height} in {url!r} is out of range "
                f"(16x16 to {_MAX_TEST_SIZE[0]}x{_MAX_TEST_SIZE[1]})"
            )
        if width % 2 or height % 2:
            raise InvalidSourceError(f"size {width}x{height} in {url!r} must have even dimensions")
    rate = DEFAULT_TEST_RATE
    if "rate" in query:
        raw = query["rate"][0]
        try:
            rate = float(raw)
        except ValueError:
            raise InvalidSourceError(f"rate {raw!r} in {url!r} is not a number") from None
        if not (0.5 <= rate <= _MAX_TEST_RATE):
            raise InvalidSourceError(
                f"rate {raw} in {url!r} is out of range (0.5 to {_MAX_TEST_RATE:g})"
            )
    graph = f"{TEST_PATTERNS[name]}=size={width}x{height}:rate={rate:g},format=yuv420p"
    return SourceSpec(url=url, kind="test", file=graph, format="lavfi", paced=True)


def _file_url(url: str) -> SourceSpec:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidSourceError(
            f"file URL {url!r} names host {parts.netloc!r}; only local files are supported "
            "(use file:///absolute/path)"
        )
    if parts.query or parts.fragment:
        raise InvalidSourceError(f"file URL {url!r} must not have a ?query or #fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise InvalidSourceError(f"file URL {url!r} must hold an absolute path (file:///path)")
    return _file_source(url, path)


def _file_source(url: str, path: str) -> SourceSpec:
    if "\x00" in path:
        raise InvalidSourceError(f"file path {path!r} contains a NUL byte")
    if path.endswith(("/", os.sep)):
        raise InvalidSourceError(f"file path {path!r} names a directory, not a video file")
    return SourceSpec(url=url, kind="file", file=path, format=None, paced=True)


def _network_source(url: str, kind: Literal["rtsp", "http"], io_timeout: float) -> SourceSpec:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidSourceError(f"malformed URL {mask_url(url)!r}: {exc}") from None
    if not parts.hostname:
        raise InvalidSourceError(f"URL {mask_url(url)!r} has no host name")
    if port == 0:
        raise InvalidSourceError(f"URL {mask_url(url)!r} has port 0")
    if any(ch.isspace() for ch in url):
        raise InvalidSourceError(f"URL {mask_url(url)!r} contains white space")
    micros = str(max(1, int(io_timeout * 1_000_000)))
    if kind == "rtsp":
        options = {"rtsp_transport": "tcp", "timeout": micros}
    else:
        # The worker does its own reconnect with backoff (and reports "down"),
        # so FFmpeg's own reconnect is kept short.
        options = {
            "rw_timeout": micros,
            "timeout": micros,
            "reconnect": "1",
            "reconnect_delay_max": "2",
        }
    return SourceSpec(url=url, kind=kind, file=url, format=None, options=options, live=True)
