"""Alerts survive a restart of the whole station (defect 3), on real workers: an acknowledged alert that is
still true is the same event after two restarts, still acknowledged, and nobody is notified twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain import AlertRule, Camera, Comparator, Severity, TargetKind
from app.domain.alerts import ChangeKind
from app.domain.operations import CreateRule
from app.platform.paths import resolve_paths
from app.station import Station, StationEvent, StationOptions
from app.supervisor import RestartPolicy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

RULE = "Yard under 100 fps"


def _station(data: Path, notified: list[tuple[int, str]], run: int) -> Station:
    st = Station(StationOptions(paths=resolve_paths(data), seed_demo=False, autostart=True,
                                policy=RestartPolicy(stop_timeout=3.0)))

    def seen(ev: StationEvent) -> None:
        change = ev.data
        if ev.kind == "alert" and getattr(change, "notify", False) and change.kind is ChangeKind.FIRING:
            notified.append((run, change.rule_name))

    st.subscribe(seen)
    st.open()
    return st


def _events(st: Station) -> list:
    return [e for e in st.alert_events(50) if e.rule_name == RULE]


def _evaluated_with_fresh_video(st: Station, cid: int) -> bool:
    """The camera's new worker has sent video for a few of the engine's one-second ticks."""
    s = st.parts().supervisor.status(cid)
    return bool(s.fps and s.uptime and s.uptime > 4)


def test_an_acknowledged_alert_is_the_same_event_after_two_station_restarts(tmp_path):
    data = tmp_path / "data"
    notified: list[tuple[int, str]] = []
    st = _station(data, notified, 1)
    try:
        cam = st.parts().admin.add_camera(Camera(name="Yard", source="test://moving?size=320x180&rate=15"))
        st.parts().router.create_rule(CreateRule(AlertRule(name=RULE, metric="fps", comparator=Comparator.LT, threshold=100,
                                                target=TargetKind.CAMERA, camera_id=cam.id,
                                                severity=Severity.WARNING, for_seconds=0, cooldown=0)))
        st.reload_cameras()
        st.reload_rules()
        (first,) = wait_for(lambda: [e for e in _events(st) if e.active], 60, "the alert to fire and be stored")
        st.acknowledge_alert(first.id, "desk")
    finally:
        st.close()
    for run in (2, 3):
        st = _station(data, notified, run)
        try:
            wait_for(lambda st=st: _evaluated_with_fresh_video(st, cam.id), 60, f"video in run {run}")
            events = _events(st)
            assert [(e.id, e.active, e.acknowledged_by) for e in events] == [(first.id, True, "desk")], \
                f"run {run}: {[(e.id, e.state, e.acknowledged_by, e.message) for e in events]}"
            (status,) = [s for s in st.parts().alerts.firing() if s.rule_name == RULE]
            assert status.acknowledged and status.event_id == first.id
        finally:
            st.close()
    assert notified == [(1, RULE)], "a restart notifies nobody again"
