"""An in-memory store: the domain's unit of work and repositories without a database.

:class:`MemoryStore` is a :class:`~app.domain.ports.UnitOfWorkFactory` for the
services' unit tests: no SQLite, no migrations. It keeps the rules the real store
keeps, as the domain errors the real store raises: camera and rule names are unique
case-insensitively (``name_key``) and a rule's camera must exist
(:class:`~app.domain.errors.ConstraintViolation`), a rule written with an
``expected_version`` it is no longer at, or changed by another unit of work that
committed first, is a :class:`~app.domain.errors.StaleWrite`; removing a camera
removes the rules that name it. A unit of work sees its own writes; they reach
the store only on ``commit`` (leaving the block without it rolls back).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Self, TypeVar

from app.domain.camera import Camera, name_key
from app.domain.errors import ConstraintViolation, StaleWrite
from app.domain.rules import AlertRule

_T = TypeVar("_T")


@dataclass
class _Tables:
    cameras: dict[int, Camera] = field(default_factory=dict)
    rules: dict[int, AlertRule] = field(default_factory=dict)

    def copy(self) -> _Tables:
        return _Tables(dict(self.cameras), dict(self.rules))


class _Shared:
    """The committed state and the id sequences, shared by a store and its views."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tables = _Tables()
        self.camera_ids = itertools.count(1)
        self.rule_ids = itertools.count(1)
        self.before_commit: list[Callable[[], None]] = []


class MemoryStore:
    """Hands out :class:`MemoryUnitOfWork` on one shared in-memory state."""

    def __init__(self, *, commit_error: BaseException | None = None,
                 _shared: _Shared | None = None) -> None:
        self._shared = _shared or _Shared()
        self.commit_error = commit_error

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self._shared, self.commit_error)

    def failing_commits(self, error: BaseException) -> MemoryStore:
        """A view on the same data whose commits raise ``error`` (a full disk, a lost connection)."""
        return MemoryStore(commit_error=error, _shared=self._shared)

    def before_next_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once, when the next unit of work commits and before its writes land: another
        writer that gets in between an operation's checks and its commit."""
        with self._shared.lock:
            self._shared.before_commit.append(fn)

    def camera_snapshot(self) -> tuple[Camera, ...]:
        with self._shared.lock:
            return tuple(c for _, c in sorted(self._shared.tables.cameras.items()))

    def dispose(self) -> None:
        """Nothing to release (the same call as the real store's)."""


class MemoryUnitOfWork:
    """One transaction on a :class:`MemoryStore` (a :class:`~app.domain.ports.UnitOfWork`)."""

    def __init__(self, shared: _Shared, commit_error: BaseException | None) -> None:
        self._shared = shared
        self._commit_error = commit_error
        self._base = _Tables()  # the committed state this unit of work started from
        self._work: _Tables | None = None
        self.cameras = MemoryCameraRepository(self)
        self.rules = MemoryRuleRepository(self)

    def __enter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("unit of work is already in use")
        self._begin()
        return self

    def __exit__(self, *exc: object) -> None:
        self._work = None

    def _begin(self) -> None:
        with self._shared.lock:
            self._base = self._shared.tables
            self._work = self._base.copy()

    @property
    def tables(self) -> _Tables:
        assert self._work is not None, "unit of work not entered"
        return self._work

    def commit(self) -> None:
        work = self.tables
        if self._commit_error is not None:
            raise self._commit_error
        with self._shared.lock:
            hooks, self._shared.before_commit = self._shared.before_commit, []
        for hook in hooks:
            hook()
        with self._shared.lock:
            committed = self._shared.tables.copy()
            for rid in _changed(self._base.rules, work.rules):
                if committed.rules.get(rid) is not self._base.rules.get(rid):
                    raise StaleWrite(f"alert rule {rid} was changed by another unit of work meanwhile")
            _apply(self._base.cameras, work.cameras, committed.cameras)
            _apply(self._base.rules, work.rules, committed.rules)
            _check_constraints(committed)  # against what others committed meanwhile, as the database does
            self._shared.tables = committed
        self._begin()

    def rollback(self) -> None:
        assert self._work is not None, "unit of work not entered"
        self._begin()

    def next_camera_id(self) -> int:
        with self._shared.lock:
            return next(self._shared.camera_ids)

    def next_rule_id(self) -> int:
        with self._shared.lock:
            return next(self._shared.rule_ids)


def _changed(base: dict[int, _T], work: dict[int, _T]) -> set[int]:
    """Ids written or removed in ``work`` since ``base`` (rows are immutable: a write replaces one)."""
    return {i for i in base.keys() | work.keys() if base.get(i) is not work.get(i)}


def _apply(base: dict[int, _T], work: dict[int, _T], into: dict[int, _T]) -> None:
    for i in _changed(base, work):
        if i in work:
            into[i] = work[i]
        else:
            into.pop(i, None)


def _check_constraints(tables: _Tables) -> None:
    for what, items in (("camera", tables.cameras), ("alert rule", tables.rules)):
        keys = [name_key(x.name) for x in items.values()]
        if len(keys) != len(set(keys)):
            raise ConstraintViolation(f"two {what}s have the same name", constraint="unique")
    for rule in tables.rules.values():
        if rule.camera_id is not None and rule.camera_id not in tables.cameras:
            raise ConstraintViolation(f"camera {rule.camera_id} does not exist", constraint="reference")


def _name_taken(items: dict[int, Camera] | dict[int, AlertRule], name: str, other_than: int | None) -> bool:
    key = name_key(name)
    return any(name_key(x.name) == key and i != other_than for i, x in items.items())


class MemoryCameraRepository:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, cam: Camera) -> Camera:
        cameras = self._uow.tables.cameras
        if _name_taken(cameras, cam.name, None):
            raise ConstraintViolation(f"camera name {cam.name!r} is taken", constraint="unique")
        saved = replace(cam, id=self._uow.next_camera_id())
        cameras[saved.id] = saved  # type: ignore[index]  # just given an id
        return saved

    def get(self, camera_id: int) -> Camera | None:
        return self._uow.tables.cameras.get(camera_id)

    def get_by_name(self, name: str) -> Camera | None:
        key = name_key(name)
        return next((c for c in self._uow.tables.cameras.values() if name_key(c.name) == key), None)

    def update(self, cam: Camera) -> Camera:
        assert cam.id is not None
        cameras = self._uow.tables.cameras
        if cam.id not in cameras:
            raise KeyError(cam.id)
        if _name_taken(cameras, cam.name, cam.id):
            raise ConstraintViolation(f"camera name {cam.name!r} is taken", constraint="unique")
        cameras[cam.id] = cam
        return cam

    def remove(self, camera_id: int) -> bool:
        tables = self._uow.tables
        if tables.cameras.pop(camera_id, None) is None:
            return False
        for rid in [rid for rid, r in tables.rules.items() if r.camera_id == camera_id]:
            del tables.rules[rid]  # the database's ON DELETE CASCADE
        return True

    def count(self) -> int:
        return len(self._uow.tables.cameras)

    def list(self) -> list[Camera]:
        return [c for _, c in sorted(self._uow.tables.cameras.items())]


class MemoryRuleRepository:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def _check(self, rule: AlertRule, other_than: int | None) -> None:
        tables = self._uow.tables
        if _name_taken(tables.rules, rule.name, other_than):
            raise ConstraintViolation(f"alert rule name {rule.name!r} is taken", constraint="unique")
        if rule.camera_id is not None and rule.camera_id not in tables.cameras:
            raise ConstraintViolation(f"camera {rule.camera_id} does not exist", constraint="reference")

    def add(self, rule: AlertRule) -> AlertRule:
        self._check(rule, None)
        saved = rule.with_changes(id=self._uow.next_rule_id())
        self._uow.tables.rules[saved.id] = saved  # type: ignore[index]  # just given an id
        return saved

    def get(self, rule_id: int) -> AlertRule | None:
        return self._uow.tables.rules.get(rule_id)

    def get_by_name(self, name: str) -> AlertRule | None:
        key = name_key(name)
        return next((r for r in self._uow.tables.rules.values() if name_key(r.name) == key), None)

    def update(self, rule: AlertRule, *, expected_version: int | None = None) -> AlertRule:
        assert rule.id is not None
        rules = self._uow.tables.rules
        current = rules.get(rule.id)
        if current is None:
            raise KeyError(rule.id)
        if expected_version is not None and current.version != expected_version:
            raise StaleWrite(f"alert rule {rule.id} is at version {current.version}, not {expected_version}")
        self._check(rule, rule.id)
        rules[rule.id] = rule
        return rule

    def remove(self, rule_id: int) -> bool:
        return self._uow.tables.rules.pop(rule_id, None) is not None

    def list(self) -> list[AlertRule]:
        return [r for _, r in sorted(self._uow.tables.rules.items())]
