"""Source URL parsing/validation for the worker (no I/O, no PyAV)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.worker.sources import (
    InvalidSourceError,
    SourceNotFoundError,
    UnsupportedSchemeError,
    check_source_available,
    mask_url,
    parse_source_url,
    validate_source_url,
)


def test_test_pattern_defaults_to_640x360_at_15fps_through_lavfi():
    spec = parse_source_url("test://moving")
    assert spec.kind == "test"
    assert spec.format == "lavfi"
    assert spec.file == "testsrc2=size=640x360:rate=15,format=yuv420p"
    assert not spec.live and spec.paced


def test_test_pattern_size_and_rate_parameters():
    spec = parse_source_url("test://still?size=1280x720&rate=30")
    assert spec.file == "smptebars=size=1280x720:rate=30,format=yuv420p"
    assert parse_source_url("test://moving?rate=7.5").file.startswith(
        "testsrc2=size=640x360:rate=7.5,"
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("test://", "names no pattern"),
        ("test://disco", "unknown test pattern 'disco'"),
        ("test://moving?size=big", "must look like WIDTHxHEIGHT"),
        ("test://moving?size=8x8", "out of range"),
        ("test://moving?size=641x360", "even dimensions"),
        ("test://moving?rate=fast", "is not a number"),
        ("test://moving?rate=0", "out of range"),
        ("test://moving?fps=10", "unknown parameter(s) fps"),
        ("test://moving?rate=10&rate=20", "given more than once"),
    ],
)
def test_bad_test_urls_say_what_is_wrong(url: str, fragment: str):
    with pytest.raises(InvalidSourceError) as info:
        validate_source_url(url)
    assert fragment in str(info.value)


def test_plain_path_and_file_url_are_file_sources(tmp_path):
    path = tmp_path / "my clip.mp4"
    spec = parse_source_url(str(path))
    assert (spec.kind, spec.file, spec.format, spec.live, spec.loopable) == (
        "file",
        str(path),
        None,
        False,
        True,
    )
    assert parse_source_url("file:///videos/my%20clip.mp4").file == "/videos/my clip.mp4"
    assert parse_source_url("file://localhost/videos/a.mp4").file == "/videos/a.mp4"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file://nas/videos/a.mp4", "names host 'nas'"),
        ("file:///videos/a.mp4?x=1", "must not have a ?query"),
        ("/videos/", "names a directory"),
    ],
)
def test_bad_file_sources(url: str, fragment: str):
    with pytest.raises(InvalidSourceError, match=fragment.replace("?", r"\?")):
        parse_source_url(url)


def test_missing_file_is_found_by_the_availability_check_not_by_validation(tmp_path):
    missing = tmp_path / "nope.mp4"
    validate_source_url(str(missing))  # syntax is fine: no I/O in validation
    with pytest.raises(SourceNotFoundError, match="video file not found: .*nope.mp4"):
        check_source_available(parse_source_url(str(missing)))
    with pytest.raises(SourceNotFoundError, match="not a regular file"):
        check_source_available(parse_source_url(str(tmp_path)))
    check_source_available(parse_source_url("rtsp://cam/stream"))  # network: never checked


def test_rtsp_uses_tcp_and_a_socket_timeout_in_microseconds():
    spec = parse_source_url("rtsps://cam.local:322/live?channel=1", io_timeout=2.5)
    assert spec.kind == "rtsp" and spec.live and not spec.paced
    assert spec.file == "rtsps://cam.local:322/live?channel=1"
    assert spec.options == {"rtsp_transport": "tcp", "timeout": "2500000"}


def test_http_sets_read_timeout_and_short_ffmpeg_reconnect():
    spec = parse_source_url("https://cam.local/video.ts", io_timeout=4)
    assert spec.kind == "http" and spec.live
    assert spec.options["rw_timeout"] == "4000000"
    assert spec.options["reconnect"] == "1"
    kwargs = spec.open_kwargs((8.0, 4.0))
    assert kwargs["file"] == "https://cam.local/video.ts"
    assert kwargs["timeout"] == (8.0, 4.0)
    assert kwargs["options"] == spec.options and kwargs["options"] is not spec.options


def test_v4l2_device():
    spec = parse_source_url("/dev/video2")
    assert (spec.kind, spec.file, spec.format, spec.live) == ("v4l2", "/dev/video2", "v4l2", True)
    with pytest.raises(InvalidSourceError, match="must look like /dev/videoN"):
        parse_source_url("/dev/videoX")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "is empty"),
        (" test://moving", "leading or trailing spaces"),
        ("rtsp://", "has no host name"),
        ("http://cam:99999/x", "malformed URL"),
        ("http://cam:0/x", "port 0"),
        ("rtsp://cam/a b", "white space"),
    ],
)
def test_malformed_urls(url: str, fragment: str):
    with pytest.raises(InvalidSourceError, match=fragment):
        validate_source_url(url)


@pytest.mark.parametrize("url", ["rtmp://host/live", "ftp://host/a.mp4", "udp://239.0.0.1:1234"])
def test_unsupported_scheme_is_a_value_error_naming_the_scheme(url: str):
    with pytest.raises(UnsupportedSchemeError) as info:
        validate_source_url(url)
    assert isinstance(info.value, ValueError)
    scheme = url.split("://")[0]
    assert f"unsupported source URL scheme '{scheme}://'" in str(info.value)
    assert "rtsp://" in str(info.value)  # lists what is supported


def test_passwords_are_masked_in_messages_and_display():
    url = "rtsp://admin:s3cret@cam.local:554/h264"
    assert mask_url(url) == "rtsp://admin:***@cam.local:554/h264"
    assert parse_source_url(url).display == "rtsp://admin:***@cam.local:554/h264"
    assert mask_url("test://moving") == "test://moving"
    with pytest.raises(InvalidSourceError) as info:
        validate_source_url("http://admin:s3cret@cam:0/x")
    assert "s3cret" not in str(info.value)


def test_non_string_is_rejected():
    with pytest.raises(InvalidSourceError, match="must be a string"):
        validate_source_url(None)  # type: ignore[arg-type]


def test_importing_sources_loads_neither_pyav_nor_numpy():
    code = (
        "import sys, app.worker.sources as s; s.validate_source_url('test://moving');"
        "print(sorted(m for m in ('av', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "[]"
