"""StationAdmin (domain-only camera/rule administration) on the in-memory store, no processes.

The same administration on the SQLite store is covered by the contract suite and
the store's integration tests.
"""

from __future__ import annotations

import pytest

from app.domain import (
    AlertRule,
    Camera,
    Comparator,
    ErrorCode,
    MotionSettings,
    OperationError,
    TargetKind,
)
from app.services import StationAdmin
from app.supervisor.model import WorkerState, WorkerStatus
from tests.support.memory_store import MemoryStore


class StatesOnly:
    """The only supervisor question the admin asks: is this camera's worker live?"""

    def __init__(self) -> None:
        self.states: dict[int, WorkerState] = {}

    def status(self, camera_id: int) -> WorkerStatus:
        return WorkerStatus(camera_id, self.states.get(camera_id, WorkerState.STOPPED))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def sup() -> StatesOnly:
    return StatesOnly()


@pytest.fixture
def admin(store: MemoryStore, sup: StatesOnly) -> StationAdmin:
    return StationAdmin(store, sup)  # type: ignore[arg-type]  # asks the supervisor only for status


def code(fn) -> tuple[ErrorCode, str]:
    with pytest.raises(OperationError) as ei:
        fn()
    return ei.value.code, ei.value.message


def test_add_list_get_update_remove_camera(admin: StationAdmin) -> None:
    gate = admin.add_camera(Camera("  Gate ", " test://moving ", tags=("north",), id=55))
    assert gate.id is not None and gate.id != 55 and gate.name == "Gate" and gate.source == "test://moving"
    yard = admin.add_camera(Camera("Yard", "/srv/yard.mp4", loop=True))
    assert [c.name for c in admin.list_cameras()] == ["Gate", "Yard"]
    assert admin.get_camera(gate.id) == gate
    upd = admin.update_camera(gate.id, {"max_fps": 5, "motion": {"threshold": 0.1}, "tags": ["a", "b"]})
    assert upd.max_fps == 5 and upd.motion == MotionSettings(True, 0.1, 10) and upd.tags == ("a", "b")
    assert admin.get_camera(gate.id) == upd
    admin.remove_camera(yard.id)
    assert [c.id for c in admin.list_cameras()] == [gate.id]


def test_camera_refusals(admin: StationAdmin, sup: StatesOnly) -> None:
    gate = admin.add_camera(Camera("Gate", "test://moving"))
    admin.add_camera(Camera("Yard", "test://still"))
    c, msg = code(lambda: admin.add_camera(Camera("", "ftp://x", max_fps=0)))
    assert c is ErrorCode.VALIDATION and all(f in msg for f in ("name", "source", "max_fps"))
    assert code(lambda: admin.add_camera(Camera("Gate", "test://still")))[0] is ErrorCode.CONFLICT
    assert code(lambda: admin.update_camera(gate.id, {"name": "Yard"}))[0] is ErrorCode.CONFLICT
    c, msg = code(lambda: admin.update_camera(gate.id, {"colour": "red", "motion": {"speed": 1}}))
    assert c is ErrorCode.VALIDATION and "colour" in msg and "motion.speed" in msg
    assert code(lambda: admin.update_camera(gate.id, {"stall_timeout": 0}))[0] is ErrorCode.VALIDATION
    c, msg = code(lambda: admin.update_camera(gate.id, {"tags": "north"}))
    assert c is ErrorCode.VALIDATION and "tags" in msg
    assert code(lambda: admin.update_camera(gate.id, {}))[0] is ErrorCode.VALIDATION
    for fn in (lambda: admin.get_camera(99), lambda: admin.update_camera(99, {"loop": True}),
               lambda: admin.remove_camera(99)):
        assert code(fn)[0] is ErrorCode.NOT_FOUND
    for live in (WorkerState.RUNNING, WorkerState.BACKOFF, WorkerState.FAILED):
        sup.states[gate.id] = live
        c, msg = code(lambda: admin.remove_camera(gate.id))
        assert c is ErrorCode.INVALID_STATE and live.value in msg
    assert admin.get_camera(gate.id) == gate


def test_removing_a_camera_removes_its_rules(admin: StationAdmin, store: MemoryStore) -> None:
    gate = admin.add_camera(Camera("Gate", "test://moving"))
    with store.uow() as uow:  # seeding only
        uow.rules.add(AlertRule("gate offline", "offline", Comparator.EQ, 1, target=TargetKind.CAMERA,
                                camera_id=gate.id))
        uow.rules.add(AlertRule("any slow", "fps", Comparator.LT, 2))
        uow.commit()
    admin.remove_camera(gate.id)
    assert [r.name for r in admin.list_rules()] == ["any slow"]


def test_rule_enable_disable_and_delete(admin: StationAdmin, store: MemoryStore) -> None:
    with store.uow() as uow:
        r = uow.rules.add(AlertRule("slow", "fps", Comparator.LT, 2))
        uow.commit()
    off = admin.set_rule_enabled(r.id, False)
    assert not off.enabled and off.version == 2
    assert admin.set_rule_enabled(r.id, False) == off  # no change, no bump
    assert admin.set_rule_enabled(r.id, True).version == 3
    assert code(lambda: admin.set_rule_enabled(r.id, "yes"))[0] is ErrorCode.VALIDATION  # type: ignore[arg-type]
    assert code(lambda: admin.set_rule_enabled(42, True))[0] is ErrorCode.NOT_FOUND
    admin.delete_rule(r.id)
    assert admin.list_rules() == []
    assert code(lambda: admin.delete_rule(r.id))[0] is ErrorCode.NOT_FOUND
    assert code(lambda: admin.get_rule(r.id))[0] is ErrorCode.NOT_FOUND
