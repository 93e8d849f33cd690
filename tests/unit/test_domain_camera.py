import pytest

from app.domain import (
    Camera,
    ErrorCode,
    MotionSettings,
    ValidationError,
    mask_secrets,
    source_problem,
)


def test_valid_camera_is_normalized():
    cam = Camera(name="  Lobby ", source=" test://moving ").validated()
    assert cam.name == "Lobby"
    assert cam.source == "test://moving"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"source": "ftp://host/x"}, "source"),
        ({"source": "rtsp://"}, "source"),
        ({"source": "rtsp://host:99999/x"}, "source"),
        ({"source": "test://nosuch"}, "source"),
        ({"source": "/dev/videoX"}, "source"),
        ({"source": "camera"}, "source"),
        ({"max_fps": 0}, "max_fps"),
        ({"max_fps": -5}, "max_fps"),
        ({"stall_timeout": 0}, "stall_timeout"),
        ({"motion": MotionSettings(threshold=1.5)}, "motion.threshold"),
        ({"tags": ("ok", " padded")}, "tags[1]"),
    ],
)
def test_each_bad_field_is_named(changes, field):
    cam = Camera(name="Cam", source="test://moving").with_changes(**changes)
    with pytest.raises(ValidationError) as info:
        cam.validated()
    assert info.value.code is ErrorCode.VALIDATION
    assert [e.field for e in info.value.errors] == [field]
    assert field in str(info.value)


def test_all_problems_reported_at_once():
    cam = Camera(name="", source="ftp://x", max_fps=-1)
    fields = {e.field for e in cam.problems()}
    assert fields == {"name", "source", "max_fps"}


@pytest.mark.parametrize(
    "source",
    ["test://moving", "rtsp://user:pw@10.0.0.2:554/stream1", "rtsps://cam.local/live", "http://h/mjpg",
     "https://h/x.m3u8", "/var/video/clip.mp4", "file:///tmp/a.mp4", "/dev/video0"],
)
def test_supported_sources(source):
    assert source_problem(source) is None


def test_mask_secrets_hides_only_the_password():
    assert mask_secrets("rtsp://admin:s3cret@10.0.0.5:554/x?y=1") == "rtsp://admin:***@10.0.0.5:554/x?y=1"
    assert mask_secrets("rtsp://10.0.0.5/x") == "rtsp://10.0.0.5/x"
    assert mask_secrets("/path/file.mp4") == "/path/file.mp4"


def test_domain_knows_exactly_the_worker_test_patterns():
    from app.domain.camera import TEST_PATTERNS
    from app.worker.sources import TEST_PATTERNS as WORKER_PATTERNS

    assert set(TEST_PATTERNS) == set(WORKER_PATTERNS)
