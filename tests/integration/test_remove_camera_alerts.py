"""Removing a camera with a firing alert resolves it in the same transaction (defect 4): no ghost, no
foreign key failure when the engine later closes its instance."""

from __future__ import annotations

import logging
from datetime import UTC
from pathlib import Path

import pytest

from app.alerts import AlertEngine
from app.domain import Camera
from app.domain.alerts import EventState
from app.domain.rules import AlertRule, Comparator, TargetKind
from app.metrics import MetricsRegistry, camera_labels
from app.services.admin import StationAdmin
from app.store import open_store
from app.store.alert_events import AlertEventRepository
from app.store.yaml_io import import_cameras
from app.supervisor import Supervisor

T0 = 1_800_000_000.0


@pytest.fixture
def rig(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")  # never started: every camera is stopped
    with store.uow() as uow:
        cam = uow.cameras.add(Camera(name="Yard", source="test://moving"))
        other = uow.cameras.add(Camera(name="Dock", source="test://moving"))
        uow.rules.add(AlertRule(name="Yard slow", metric="fps", comparator=Comparator.LT, threshold=100.0,
                                target=TargetKind.CAMERA, camera_id=cam.id, for_seconds=0.0).validated())
        uow.rules.add(AlertRule(name="any slow", metric="fps", comparator=Comparator.LT, threshold=100.0,
                                target=TargetKind.ALL_CAMERAS, for_seconds=0.0).validated())
        uow.commit()
    now = [T0]
    reg = MetricsRegistry(clock=lambda: now[0])
    cams = [cam.id, other.id]
    engine = AlertEngine(reg, store=store, clock=lambda: now[0], cameras=lambda: list(cams), tz=UTC)
    engine.load_rules()
    for cid in cams:
        reg.record("fps", 15.0, camera_labels(cid), ts=now[0])
    engine.tick(now[0])
    assert engine.flush(10)
    yield store, StationAdmin(store, sup), engine, cam, other, cams, now
    engine.stop()
    store.dispose()


def events(store):
    with store.uow() as uow:
        return AlertEventRepository(uow.session).recent(100)


def _no_store_failures(caplog):
    bad = [r for r in caplog.records if "cannot store" in r.getMessage() or "FOREIGN KEY" in r.getMessage()
           or (r.exc_info and any(name in repr(r.exc_info[1]) for name in ("IntegrityError", "ConstraintViolation")))]
    assert not bad, [r.getMessage() for r in bad]


def test_removing_a_camera_resolves_its_alerts_at_once_and_the_engine_agrees(rig, caplog):
    store, admin, engine, cam, other, cams, now = rig
    firing = [e for e in events(store) if e.camera_id == cam.id]
    assert len(firing) == 2 and all(e.state is EventState.FIRING for e in firing)
    caplog.set_level(logging.WARNING)
    admin.remove_camera(cam.id)
    after = {e.id: e for e in events(store)}
    for e in firing:  # in the same transaction as the removal
        got = after[e.id]
        assert got.state is EventState.RESOLVED and got.resolved_at is not None, got
        assert "camera removed" in got.message
    # The engine evaluates next without that camera and closes its instances: stored without error.
    cams.remove(cam.id)
    now[0] += 1
    engine.tick(now[0])
    assert engine.flush(10)
    _no_store_failures(caplog)
    assert not [s for s in engine.firing() if s.camera_id == cam.id]
    assert all(e.state is EventState.RESOLVED for e in events(store) if e.id in after and e.camera_id in (None, cam.id))
    assert [e.state for e in events(store) if e.camera_id == other.id] == [EventState.FIRING]


def test_an_import_that_removes_a_camera_resolves_its_alerts(rig, caplog):
    store, _admin, engine, cam, other, cams, now = rig
    caplog.set_level(logging.WARNING)
    import_cameras(store, [Camera(name="Dock", source="test://moving")], replace=True)
    assert all(e.state is EventState.RESOLVED for e in events(store) if e.camera_id in (None, cam.id))
    cams.remove(cam.id)
    now[0] += 1
    engine.tick(now[0])
    assert engine.flush(10)
    _no_store_failures(caplog)
