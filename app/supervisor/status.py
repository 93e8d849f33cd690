"""What the supervisor says about a worker: its status snapshot and the text of its exit."""

from __future__ import annotations

from app.supervisor.model import WorkerStatus
from app.supervisor.process import Slot, WorkerProcess
from app.workerlink.protocol import EXIT_CONFIG, SOURCE_STATES

__all__ = ["exit_reason", "snapshot"]


def snapshot(slot: Slot, now: float) -> WorkerStatus:
    proc = slot.proc
    lc = slot.lc
    hb = proc.hb if proc is not None else {}
    last_hb = lc.run.last_heartbeat if lc.run is not None else None
    hb_age = now - last_hb if proc is not None and last_hb is not None else None
    frame_age = hb.get("last_frame_age")
    if isinstance(frame_age, int | float) and hb_age is not None:
        frame_age = float(frame_age) + hb_age  # aged to "now"
    else:
        frame_age = None

    def num(key: str) -> float | None:
        v = hb.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    def integer(key: str) -> int | None:
        v = hb.get(key)
        return int(v) if isinstance(v, int) and not isinstance(v, bool) else None

    source = hb.get("source")
    codec = hb.get("codec")
    return WorkerStatus(
        camera_id=slot.camera_id,
        state=slot.state,
        pid=proc.pid if proc is not None else None,
        started_at=proc.started_at if proc is not None else None,
        uptime=now - proc.spawn_mono if proc is not None else None,
        restarts=lc.restarts,
        last_exit=slot.last_exit,
        source=source if source in SOURCE_STATES else None,
        fps=num("fps"),
        decoded=integer("decoded") or 0,
        dropped=integer("dropped") or 0,
        motion=num("motion"),
        motion_active=bool(hb.get("motion_active", False)),
        last_frame_age=frame_age,
        width=integer("width"),
        height=integer("height"),
        codec=codec if isinstance(codec, str) else None,
        last_heartbeat_age=hb_age,
        preview_path=str(proc.preview) if proc is not None and proc.preview else None,
        next_retry_in=max(0.0, lc.next_start - now) if lc.next_start is not None else None,
        error=lc.error,
    )


def exit_reason(proc: WorkerProcess, stop_reason: str | None, code: int | None, how: str) -> str:
    r = stop_reason
    if r == "restart" and proc.stop_note:  # not asked for: e.g. its worker launcher ended
        return f"{proc.stop_note} ({how})"
    if r in ("stop", "shutdown", "restart"):
        verb = {"stop": "stopped", "shutdown": "stopped (station shutdown)", "restart": "stopped for restart"}[r]
        return f"{verb}{' (killed after the stop timeout)' if proc.killed else ''} ({how})"
    if r in ("hung", "stalled"):
        return f"{proc.stop_note} ({how})"
    if code == 0:
        return "exited cleanly (exit code 0)"
    if code == EXIT_CONFIG:
        detail = f": {proc.last_err_line}" if proc.last_err_line else ""
        return f"configuration error (exit code {EXIT_CONFIG}){detail}"
    if code is not None:
        return f"crashed ({how})"
    return how
