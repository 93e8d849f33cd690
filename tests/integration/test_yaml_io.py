"""cameras.yaml: validate the whole file first, apply in one transaction, name file/line/field."""

from pathlib import Path

import pytest

from app.domain import Camera
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.yaml_io import (
    ConfigFileError,
    export_file,
    import_cameras,
    import_file,
    parse_cameras_file,
    parse_cameras_text,
)
from tests.support.dbdump import content

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
defaults:
  max_fps: 12
cameras:
  - name: Lobby
    source: test://moving
  - name: Yard
    source: rtsp://admin:s3cret@10.1.2.3:554/h264
    max_fps: 25
    stall_timeout: 20
    location: Outside
    tags: [outdoor]
    motion: {enabled: true, threshold: 0.05, warmup_frames: 5}
"""


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "station.db"
    store = open_store(sqlite_url(path))
    with store.uow() as uow:
        uow.cameras.add(Camera(name="Existing", source="test://still"))
        uow.commit()
    yield store, path
    store.dispose()


def write(tmp_path, text, name="cams.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_import_merges_and_applies_defaults(db, tmp_path):
    store, _ = db
    report = import_file(store, write(tmp_path, GOOD))
    assert report.added == ("Lobby", "Yard") and report.removed == ()
    with store.uow() as uow:
        cams = {c.name: c for c in uow.cameras.list()}
    assert set(cams) == {"Existing", "Lobby", "Yard"}
    assert cams["Lobby"].max_fps == 12  # from defaults
    assert cams["Yard"].max_fps == 25  # own value wins
    assert cams["Yard"].motion.threshold == 0.05


def test_import_replace_removes_others(db, tmp_path):
    store, _ = db
    report = import_file(store, write(tmp_path, GOOD), replace=True)
    assert report.removed == ("Existing",)
    again = import_file(store, write(tmp_path, GOOD), replace=True)
    assert again.unchanged == ("Lobby", "Yard") and not again.added and not again.updated


def test_export_round_trips_and_masks(db, tmp_path):
    store, _ = db
    import_file(store, write(tmp_path, GOOD), replace=True)
    out = tmp_path / "out.yaml"
    assert export_file(store, out) == 2
    text = out.read_text()
    assert "s3cret" not in text and "admin:***@" in text
    # Importing the masked export keeps the stored password and changes nothing.
    report = import_file(store, out, replace=True)
    assert report.unchanged == ("Lobby", "Yard")
    with store.uow() as uow:
        assert uow.cameras.get_by_name("Yard").source == "rtsp://admin:s3cret@10.1.2.3:554/h264"
    secret = tmp_path / "secret.yaml"
    export_file(store, secret, include_secrets=True)
    assert "s3cret" in secret.read_text()
    assert parse_cameras_file(secret) == parse_cameras_text(GOOD, "x")  # full round trip


BAD_CASES = {
    "broken yaml": ("cameras:\n  - name: A\n    source: [unclosed\n", r"cams\.yaml:\d+: not valid YAML"),
    "unknown key": ("cameras:\n  - name: A\n    source: test://moving\n    colour: red\n",
                    r"cams\.yaml:4: cameras\[0\]\.colour: unknown key"),
    "duplicate names": ("cameras:\n  - name: A\n    source: test://moving\n  - name: a\n    source: test://still\n",
                        r"cams\.yaml:4: cameras\[1\]\.name: duplicate camera name 'a' \(first at line 2\)"),
    "bad url": ("cameras:\n  - name: A\n    source: gopher://x/y\n", r"cams\.yaml:3: cameras\[0\]\.source: unsupported scheme"),
    "negative number": ("cameras:\n  - name: A\n    source: test://moving\n    max_fps: -2\n",
                        r"cams\.yaml:4: cameras\[0\]\.max_fps: must be greater than 0"),
    "wrong type": ("cameras:\n  - name: A\n    source: test://moving\n    stall_timeout: soon\n",
                   r"cams\.yaml:4: cameras\[0\]\.stall_timeout: Input should be a valid number"),
    "duplicate key": ("cameras:\n  - name: A\n    name: B\n    source: test://moving\n",
                      r"cams\.yaml:3: cameras\[0\]\.name: duplicate key"),
    "not a mapping": ("- just\n- a list\n", r"cams\.yaml:1: expected a mapping"),
    "empty": ("", r"cams\.yaml:1: the file is empty"),
    "newer format": ("version: 2\ncameras: []\n", r"cams\.yaml:1: version: this app reads version 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_line_field_and_changes_nothing(db, tmp_path, case):
    store, path = db
    text, pattern = BAD_CASES[case]
    # The good part of a file is not applied either: append a valid camera to each bad file.
    before = content(path)
    with pytest.raises(ConfigFileError, match=pattern):
        import_file(store, write(tmp_path, text))
    assert content(path) == before


def test_missing_file(db, tmp_path):
    store, path = db
    before = content(path)
    with pytest.raises(ConfigFileError, match="file not found"):
        import_file(store, tmp_path / "nope.yaml")
    assert content(path) == before


def test_one_bad_camera_among_good_ones_applies_nothing(db, tmp_path):
    store, path = db
    text = GOOD + "  - name: Broken\n    source: test://moving\n    max_fps: 0\n"
    before = content(path)
    with pytest.raises(ConfigFileError) as info:
        import_file(store, write(tmp_path, text))
    assert info.value.problems == [f"{tmp_path / 'cams.yaml'}:16: cameras[2].max_fps: must be greater than 0 and at most 240"]
    assert content(path) == before


def test_failure_during_apply_rolls_back(db, tmp_path):
    store, path = db
    cams = parse_cameras_text(GOOD)
    before = content(path)
    # Two cameras that collide on the database's unique name: the second insert fails mid-transaction.
    with pytest.raises(Exception):  # noqa: B017 - the store's ConstraintViolation (the database's refusal)
        import_cameras(store, [*cams, cams[0]], replace=False)
    assert content(path) == before


def test_shipped_example_config_is_valid():
    cams = parse_cameras_file(REPO / "config" / "cameras.yaml")
    assert len(cams) >= 3
    assert all(c.source.startswith("test://") for c in cams)
