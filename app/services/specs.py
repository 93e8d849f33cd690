"""From a camera (domain entity) to what the supervisor runs for it."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.camera import Camera
from app.domain.worker import WorkerSpec


def spec_for(camera: Camera, command: Sequence[str] | None = None) -> WorkerSpec:
    """The worker spec of a stored camera. ``command`` overrides the worker executable (tests)."""
    if camera.id is None:
        raise ValueError(f"camera {camera.name!r} has no id yet; store it first")
    return WorkerSpec(
        camera_id=camera.id,
        name=camera.name,
        source=camera.source,
        loop=camera.loop,
        max_fps=camera.max_fps,
        motion_threshold=camera.motion.threshold,
        stall_timeout=camera.stall_timeout,
        extra_args=("--motion-warmup", str(camera.motion.warmup_frames)),
        command=tuple(command) if command else None,
    )
