"""What a caller is told when the supervisor refuses or the worker cannot answer: one wording and
one mapping to the operation's errors, for both implementations of the operations."""

from __future__ import annotations

from app.domain.errors import InvalidState, OperationError, Unavailable
from app.domain.worker import AlreadyRunning, EvidenceRequestError, NotRunning, SupervisorError

__all__ = ["no_live_frame", "snapshot_refusal", "supervisor_refusal"]


def _who(camera_id: int | None, name: str) -> str:
    return f"camera {camera_id} ({name})"


def supervisor_refusal(camera_id: int | None, name: str, e: SupervisorError) -> OperationError:
    """A supervisor refusal of a start, stop or restart as the operation's error."""
    if isinstance(e, AlreadyRunning):
        return InvalidState(f"{_who(camera_id, name)} is already running")
    if isinstance(e, NotRunning):
        return InvalidState(f"{_who(camera_id, name)} is not running")
    return Unavailable(f"the supervisor could not act on {_who(camera_id, name)}: {e}")


def no_live_frame(camera_id: int | None, name: str) -> InvalidState:
    """A snapshot of a camera whose worker is not running."""
    return InvalidState(f"{_who(camera_id, name)} is not running; there is no live frame")


def snapshot_refusal(camera_id: int | None, name: str, e: EvidenceRequestError) -> OperationError:
    """A snapshot the worker could not give (not running, no frame yet, or another reason)."""
    if e.reason == "not_running":
        return no_live_frame(camera_id, name)
    if "no frame" in str(e):
        return Unavailable(f"{_who(camera_id, name)} has not published a frame yet")
    return Unavailable(f"{_who(camera_id, name)}: no snapshot: {e}")
