"""One text validation for every field, through both implementations (and the shared admin).

Control characters, ANSI escapes, newlines, bidirectional overrides and lone
surrogates are refused in rule names, camera names, locations, tags and sources,
each with the field that holds it and the character's position.
"""

from __future__ import annotations

import pytest

from app.domain import AlertRule, Camera, Comparator, ErrorCode, ValidationError
from app.domain.operations import CreateRule, StationOperations, UpdateRule
from tests.contract.conftest import MOVING, Station
from tests.contract.helpers import refused

BAD_TEXTS = {
    "newline": ("gate\nERROR forged line", "U+000A"),
    "escape": ("gate \x1b[31mred", "U+001B"),
    "rtl override": ("gate \u202egpj.exe", "U+202E"),
    "lone surrogate": ("gate \ud800", "U+D800"),
    "delete": ("gate\x7f", "U+007F"),
}


def rule(name: str) -> AlertRule:
    return AlertRule(name=name, metric="fps", comparator=Comparator.LT, threshold=5)


@pytest.mark.parametrize("kind", sorted(BAD_TEXTS))
def test_rule_names_refuse_what_camera_names_refuse(ops: StationOperations, station: Station, kind: str) -> None:
    text, code_point = BAD_TEXTS[kind]
    err = refused(lambda: ops.create_rule(CreateRule(rule(text))), ErrorCode.VALIDATION, "name", code_point)
    assert [e["field"] for e in err.details["errors"]] == ["name"]
    made = ops.create_rule(CreateRule(rule("gate low fps"))).rule
    assert made.id is not None
    refused(lambda: ops.update_rule(UpdateRule(made.id, {"name": text})), ErrorCode.VALIDATION,
            "name", code_point)
    if kind != "newline":  # a description may span lines, nothing else
        refused(lambda: ops.update_rule(UpdateRule(made.id, {"description": f"ok\n{text}"})),
                ErrorCode.VALIDATION, "description", code_point)
    assert [r.name for r in station.admin.list_rules()] == ["gate low fps"]


def test_a_description_may_span_lines(ops: StationOperations) -> None:
    made = ops.create_rule(CreateRule(rule("multi").with_changes(description="line one\n\tline two"))).rule
    assert made.description == "line one\n\tline two"


@pytest.mark.parametrize("field", ["name", "location", "tags"])
@pytest.mark.parametrize("kind", ["newline", "escape", "rtl override"])
def test_camera_text_fields(station: Station, field: str, kind: str) -> None:
    text, code_point = BAD_TEXTS[kind]
    value: object = (text,) if field == "tags" else text
    with pytest.raises(ValidationError) as ei:
        station.admin.add_camera(Camera(name="Porch", source=MOVING).with_changes(**{field: value}))
    fields = [e.field for e in ei.value.errors]
    assert fields == ["tags[0]" if field == "tags" else field]
    assert code_point in str(ei.value)
    assert "Porch" not in [c.name for c in station.admin.list_cameras()]


@pytest.mark.parametrize(("source", "fragment"), [
    ("rtsp://cam.local/live\nINFO forged", "U+000A"),
    ("rtsp://cam.local/" + "a" * 5000, "at most 2048 characters"),
    ("rtsp://[fe80::1/live", "not a valid URL"),
    ("rtsp://admin:pw@[::1/live", "not a valid URL"),
])
def test_camera_source_is_one_bounded_line_and_a_parsable_url(station: Station, source: str,
                                                               fragment: str) -> None:
    with pytest.raises(ValidationError) as ei:
        station.admin.add_camera(Camera(name="Porch", source=source))
    assert [e.field for e in ei.value.errors] == ["source"]
    assert fragment in str(ei.value)
    camera = station.admin.list_cameras()[0]
    with pytest.raises(ValidationError) as ei:
        station.admin.update_camera(camera.id, {"source": source})
    assert [e.field for e in ei.value.errors] == ["source"]
    assert station.admin.get_camera(camera.id).source == camera.source


def test_camera_logs_never_show_a_password(ops: StationOperations, station: Station) -> None:
    from app.domain.operations import CameraRef, LogsRequest
    from tests.contract.helpers import wait_for

    cam = station.admin.add_camera(Camera(name="Porch", source="rtsp://admin:Sup3rSecret@127.0.0.1:9/live"))
    assert cam.id is not None
    ops.start_camera(CameraRef(cam.id))

    def worker_spoke() -> list[str]:
        texts = [ln.text for ln in ops.camera_logs(LogsRequest(cam.id, limit=500)).lines]
        return texts if any(ln.startswith("worker for camera") or "cannot open" in ln for ln in texts) else []

    texts = wait_for(worker_spoke, 20, "the worker's own log lines")
    assert any("admin:***@127.0.0.1:9" in t for t in texts), texts
    assert not any("Sup3rSecret" in t for t in texts)
    log_file = station.supervisor.log_path(cam.id)
    assert "Sup3rSecret" not in log_file.read_text()
