"""The unit of work's contract, on the SQLite store and on the tests' in-memory store.

The services' unit tests run on :class:`tests.support.memory_store.MemoryStore`;
these cases hold both to the same rules, so what those tests show holds on the
real store: the domain's errors for a taken name, a missing camera and a stale
write, rollback unless committed, and a removed camera taking its rules along.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.domain import AlertRule, Camera, Comparator, ConstraintViolation, StaleWrite, TargetKind
from app.domain.ports import UnitOfWorkFactory
from app.store import open_store
from tests.support.memory_store import MemoryStore


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield sql
    sql.dispose()


def rule(name: str, **kw: object) -> AlertRule:
    return AlertRule(name, "fps", Comparator.LT, 2.0, **kw)  # type: ignore[arg-type]


def test_writes_reach_the_store_only_on_commit(store: UnitOfWorkFactory) -> None:
    with store.uow() as uow:
        gate = uow.cameras.add(Camera("Gate", "test://moving"))
        assert gate.id is not None and uow.cameras.get(gate.id) == gate  # its own writes
    with store.uow() as uow:
        assert uow.cameras.list() == [] and uow.cameras.count() == 0
        gate = uow.cameras.add(Camera("Gate", "test://moving"))
        uow.commit()
    with store.uow() as uow:
        assert uow.cameras.list() == [gate] and uow.cameras.get_by_name(" gATE ") == gate
        uow.cameras.update(gate.with_changes(active=False))
        uow.rollback()
        assert uow.cameras.get(gate.id).active  # type: ignore[union-attr]


def test_names_are_unique_case_insensitively(store: UnitOfWorkFactory) -> None:
    with store.uow() as uow:
        uow.cameras.add(Camera("Gate", "test://moving"))
        yard = uow.cameras.add(Camera("Yard", "test://still"))
        uow.rules.add(rule("slow"))
        uow.commit()
    for write in (lambda uow: uow.cameras.add(Camera("GATE", "test://still")),
                  lambda uow: uow.cameras.update(yard.with_changes(name="gate")),
                  lambda uow: uow.rules.add(rule("SLOW"))):
        with pytest.raises(ConstraintViolation) as ei, store.uow() as uow:
            write(uow)
            uow.commit()
        assert ei.value.constraint == "unique"


def test_a_rule_must_name_a_camera_that_exists(store: UnitOfWorkFactory) -> None:
    with pytest.raises(ConstraintViolation) as ei, store.uow() as uow:
        uow.rules.add(rule("gate slow", target=TargetKind.CAMERA, camera_id=999))
        uow.commit()
    assert ei.value.constraint == "reference"


def test_a_stale_version_is_refused(store: UnitOfWorkFactory) -> None:
    with store.uow() as uow:
        r = uow.rules.add(rule("slow"))
        uow.commit()
    with store.uow() as uow:
        saved = uow.rules.update(r.with_changes(threshold=3.0, version=2), expected_version=1)
        uow.commit()
    assert saved.version == 2
    with pytest.raises(StaleWrite), store.uow() as uow:
        uow.rules.update(r.with_changes(threshold=4.0, version=2), expected_version=1)
    with store.uow() as uow:
        assert uow.rules.get(r.id).threshold == 3.0  # type: ignore[arg-type, union-attr]


def test_removing_a_camera_removes_its_rules(store: UnitOfWorkFactory) -> None:
    with store.uow() as uow:
        gate = uow.cameras.add(Camera("Gate", "test://moving"))
        uow.rules.add(rule("gate slow", target=TargetKind.CAMERA, camera_id=gate.id))
        kept = uow.rules.add(rule("any slow"))
        uow.commit()
    with store.uow() as uow:
        assert uow.cameras.remove(gate.id) and not uow.cameras.remove(gate.id)  # type: ignore[arg-type]
        uow.commit()
    with store.uow() as uow:
        assert uow.rules.list() == [kept] and uow.rules.remove(kept.id) and uow.rules.list() == []  # type: ignore[arg-type]
