"""Domain-only administration: camera CRUD, rule delete/enable, plain listings.

These are not among the thirteen routed operations; the CLI,
the window and the YAML import call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from app.domain.camera import Camera, MotionSettings
from app.domain.errors import (
    Conflict,
    ConstraintViolation,
    FieldError,
    InvalidState,
    NotFound,
    ValidationError,
)
from app.domain.ports import SupervisorPort, UnitOfWorkFactory
from app.domain.rules import AlertRule
from app.domain.worker import WorkerState

CAMERA_FIELDS = frozenset(f.name for f in fields(Camera)) - {"id"}
MOTION_FIELDS = frozenset(f.name for f in fields(MotionSettings))


class StationAdmin:
    """Camera and rule administration on a unit of work (and the supervisor, to refuse unsafe deletes)."""

    def __init__(self, store: UnitOfWorkFactory, supervisor: SupervisorPort) -> None:
        self._store = store
        self._sup = supervisor

    # -- cameras

    def list_cameras(self) -> list[Camera]:
        with self._store.uow() as uow:
            return uow.cameras.list()

    def get_camera(self, camera_id: int) -> Camera:
        with self._store.uow() as uow:
            camera = uow.cameras.get(camera_id)
        if camera is None:
            raise NotFound(f"camera {camera_id} does not exist")
        return camera

    def add_camera(self, camera: Camera) -> Camera:
        """Store a new camera (validated; a duplicate name is a conflict)."""
        if not isinstance(camera, Camera):
            raise ValidationError(FieldError("camera", "must be a camera"), subject="add_camera request")
        camera = camera.with_changes(id=None).validated()
        with self._store.uow() as uow:
            if uow.cameras.get_by_name(camera.name) is not None:
                raise Conflict(f"a camera named {camera.name!r} already exists")
            try:
                saved = uow.cameras.add(camera)
                uow.commit()
            except ConstraintViolation as e:
                raise Conflict(f"a camera named {camera.name!r} already exists") from e
        return saved

    def update_camera(self, camera_id: int, changes: Mapping[str, Any]) -> Camera:
        """Change some fields of a camera. The station restarts a running worker whose settings changed
        (see ``Station.reload_cameras``)."""
        subject = f"changes to camera {camera_id}"
        with self._store.uow() as uow:
            current = uow.cameras.get(camera_id)
            if current is None:
                raise NotFound(f"camera {camera_id} does not exist")
            normalized = _camera_changes(changes, current, subject)
            camera = current.with_changes(**normalized).validated()
            other = uow.cameras.get_by_name(camera.name)
            if other is not None and other.id != camera_id:
                raise Conflict(f"a camera named {camera.name!r} already exists")
            try:
                saved = uow.cameras.update(camera)
                uow.commit()
            except ConstraintViolation as e:
                raise Conflict(f"a camera named {camera.name!r} already exists") from e
        return saved

    def remove_camera(self, camera_id: int) -> None:
        """Delete a camera (and, by cascade, its camera-targeted rules). Refused while its worker is live."""
        with self._store.uow() as uow:
            camera = uow.cameras.get(camera_id)
            if camera is None:
                raise NotFound(f"camera {camera_id} does not exist")
            state = self._sup.status(camera_id).state
            if state is not WorkerState.STOPPED:
                raise InvalidState(
                    f"camera {camera_id} ({camera.name}) is {state.value}; stop it before removing it")
            uow.cameras.remove(camera_id)  # resolves its firing alerts in this transaction
            uow.commit()

    # -- rules

    def list_rules(self) -> list[AlertRule]:
        with self._store.uow() as uow:
            return uow.rules.list()

    def get_rule(self, rule_id: int) -> AlertRule:
        with self._store.uow() as uow:
            rule = uow.rules.get(rule_id)
        if rule is None:
            raise NotFound(f"alert rule {rule_id} does not exist")
        return rule

    def delete_rule(self, rule_id: int) -> None:
        with self._store.uow() as uow:
            if not uow.rules.remove(rule_id):
                raise NotFound(f"alert rule {rule_id} does not exist")
            uow.commit()

    def set_rule_enabled(self, rule_id: int, enabled: bool) -> AlertRule:
        """Enable or disable a rule; a real change bumps its version, a no-op does not."""
        if not isinstance(enabled, bool):
            raise ValidationError(FieldError("enabled", "must be true or false"), subject="set_rule_enabled request")
        with self._store.uow() as uow:
            rule = uow.rules.get(rule_id)
            if rule is None:
                raise NotFound(f"alert rule {rule_id} does not exist")
            if rule.enabled == enabled:
                return rule
            saved = uow.rules.update(rule.with_changes(enabled=enabled, version=rule.version + 1))
            uow.commit()
        return saved


def _camera_changes(changes: Mapping[str, Any], current: Camera, subject: str) -> dict[str, Any]:
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError(FieldError("changes", "must name at least one field to change"), subject=subject)
    errs = [FieldError(str(k), "is not a field of a camera that can be changed")
            for k in changes if k not in CAMERA_FIELDS]
    out = dict(changes)
    motion = out.get("motion")
    if isinstance(motion, Mapping):
        errs += [FieldError(f"motion.{k}", "is not a motion setting") for k in motion if k not in MOTION_FIELDS]
        if not errs:
            out["motion"] = replace(current.motion, **dict(motion))
    elif "motion" in out and not isinstance(motion, MotionSettings):
        errs.append(FieldError("motion", "must be a mapping of motion settings"))
    if "tags" in out:
        if isinstance(out["tags"], list | tuple):
            out["tags"] = tuple(out["tags"])
        else:
            errs.append(FieldError("tags", "must be a list of strings"))
    if errs:
        raise ValidationError(errs, subject=subject)
    return out
