"""Asking a running worker for evidence: a full-resolution snapshot or a pre-roll clip.

The request is a JSON file in the worker's evidence directory (written under a
temporary name, then renamed) and a SIGUSR1 to the worker; the answer is the
worker's ``{"type": "evidence", ...}`` stdout line, which the supervisor passes
on as an ``evidence`` event. Never the worker's stdin. See ``app.worker.evidence``
for the request and answer fields.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from app.domain.worker import EvidenceRequestError
from app.supervisor.model import SupervisorEvent, WorkerState, WorkerStatus

__all__ = ["EvidenceRequestError", "evidence_dir", "request_evidence", "take_snapshot"]

_WITH_PROCESS = (WorkerState.STARTING, WorkerState.RUNNING, WorkerState.STALLED)


class _Workers(Protocol):
    """What asking a worker needs of the supervisor (its public surface)."""

    @property
    def run_dir(self) -> Path: ...

    def status(self, camera_id: int) -> WorkerStatus: ...

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]: ...


def evidence_dir(run_dir: Path, camera_id: int) -> Path:
    """Where the camera's worker looks for requests (inside the station's run dir)."""
    return Path(run_dir) / "evidence" / f"cam-{camera_id}"


def request_evidence(sup: _Workers, camera_id: int, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send ``request`` (without ``id``) to the camera's worker; return its answer (``ok`` true).

    Raises :class:`EvidenceRequestError`.
    """
    status = sup.status(camera_id)
    if status.state not in _WITH_PROCESS or status.pid is None:
        raise EvidenceRequestError(f"camera {camera_id}: no worker is running", "not_running")
    ident = secrets.token_hex(8)
    answer: dict[str, Any] = {}
    done = threading.Event()

    def on_event(ev: SupervisorEvent) -> None:
        if ev.camera_id != camera_id:
            return
        if ev.kind == "evidence" and ev.detail.get("id") == ident:
            answer.update(ev.detail)
            done.set()
        elif ev.kind == "exit" and ev.detail.get("pid") == status.pid:
            answer.update({"ok": False, "exited": True, "error": f"the worker (pid {status.pid}) exited"})
            done.set()

    unsubscribe = sup.subscribe(on_event)
    directory = evidence_dir(sup.run_dir, camera_id)
    tmp = directory / f"{ident}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({**request, "id": ident}, fh)
        os.replace(tmp, directory / f"{ident}.req.json")
        # Only a worker that has sent a heartbeat has its SIGUSR1 handler (before that the signal
        # would kill it); a starting one finds the request at its next look into the directory.
        if sup.status(camera_id).state is not WorkerState.STARTING:
            try:
                os.kill(status.pid, signal.SIGUSR1)
            except ProcessLookupError:
                raise EvidenceRequestError(f"camera {camera_id}: the worker is gone", "exited") from None
        if not done.wait(timeout):
            _withdraw(directory, ident)
            raise EvidenceRequestError(
                f"camera {camera_id}: the worker did not answer the {request.get('kind')} request "
                f"within {timeout:g} s", "timeout")
    finally:
        unsubscribe()
        tmp.unlink(missing_ok=True)
    if answer.get("exited"):
        raise EvidenceRequestError(f"camera {camera_id}: {answer['error']}", "exited")
    if not answer.get("ok"):
        raise EvidenceRequestError(f"camera {camera_id}: {answer.get('error') or 'the worker refused'}", "refused")
    return answer


def _withdraw(directory: Path, ident: str) -> None:
    (directory / f"{ident}.req.json").unlink(missing_ok=True)


def take_snapshot(sup: _Workers, camera_id: int, fmt: str, timeout: float = 5.0) -> tuple[dict[str, Any], bytes]:
    """The worker's latest decoded frame at full resolution as ``fmt`` ("png"/"jpeg"):
    (the answer, the image bytes). The file the worker wrote is removed once read."""
    ext = "png" if fmt == "png" else "jpg"
    dest = evidence_dir(sup.run_dir, camera_id) / f"snap-{secrets.token_hex(6)}.{ext}"
    try:
        answer = request_evidence(sup, camera_id, {"kind": "snapshot", "format": fmt, "dest": str(dest)}, timeout)
        data = Path(answer["path"]).read_bytes()
    finally:
        dest.unlink(missing_ok=True)
    return answer, data
