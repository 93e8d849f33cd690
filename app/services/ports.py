"""What the domain services need from the outside world, and two small adapters.

* :class:`SupervisorPort` — the part of the supervisor's API the operations use
  (the real :class:`app.supervisor.Supervisor` satisfies it structurally; unit
  tests pass a fake).
* :class:`ProbeRunner` — runs ``<worker> probe URL`` in a short-lived process
  with a hard timeout.
* :class:`HeartbeatHistory` — keeps the last heartbeats per camera so
  ``camera_stats`` can report frame metrics over a window.

``app.legacy`` must not import this module (layers point down); it takes the
same objects duck-typed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from app.domain.camera import mask_secrets
from app.domain.errors import Unavailable
from app.supervisor.model import LogLine, ProcessStats, SupervisorEvent, WorkerSpec, WorkerStatus

Clock = Callable[[], float]


@runtime_checkable
class SupervisorPort(Protocol):
    """The subset of :class:`app.supervisor.Supervisor` the operations program against."""

    def start_worker(self, spec: WorkerSpec) -> WorkerStatus: ...
    def stop_worker(self, camera_id: int, timeout: float | None = None) -> WorkerStatus: ...
    def restart_worker(self, spec: WorkerSpec) -> WorkerStatus: ...
    def status(self, camera_id: int) -> WorkerStatus: ...
    def logs(self, camera_id: int, limit: int) -> Sequence[LogLine]: ...
    def stats(self, camera_id: int) -> ProcessStats | None: ...
    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]: ...
    def preview_path(self, camera_id: int) -> Any: ...
    def take_snapshot(self, camera_id: int, fmt: str = "png", timeout: float = 5.0) -> tuple[dict[str, Any], bytes]: ...


# ---------------------------------------------------------------- probe


class ProbeRunner:
    """Runs the worker's ``probe`` subcommand with a hard timeout.

    The worker gets ``--timeout T`` for opening the source; the parent waits
    ``T + grace`` (interpreter start-up, PyAV import) and then kills the whole
    process group. ``probe()`` returns the worker's JSON answer, or a
    ``{"ok": False, "error": ...}`` built from its exit when it printed none;
    a probe that had to be killed raises :class:`Unavailable`.
    """

    def __init__(self, command: Sequence[str] | None = None, *, grace: float = 2.0,
                 env: Mapping[str, str] | None = None) -> None:
        if grace < 0:
            raise ValueError(f"grace must be >= 0, got {grace}")
        self._command = tuple(command) if command else None
        self.grace = grace
        self._env = dict(env) if env is not None else None

    def command_for(self, source: str, timeout: float) -> list[str]:
        if self._command is None:
            from app.worker.launch import worker_command

            prefix: Sequence[str] = worker_command()
        else:
            prefix = self._command
        return [*prefix, "probe", source, "--timeout", f"{timeout:g}"]

    def probe(self, source: str, timeout: float) -> dict[str, Any]:
        shown = mask_secrets(source)
        env = dict(os.environ if self._env is None else self._env)
        env["EDGE_STATION_WORKER"] = "1"
        try:
            proc = subprocess.Popen(
                self.command_for(source, timeout),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=env, text=True, errors="replace",
            )
        except OSError as e:
            raise Unavailable(f"cannot run the probe for {shown}: {e}") from e
        limit = timeout + self.grace
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            try:
                proc.communicate(timeout=2.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it
                pass
            raise Unavailable(
                f"probe of {shown} did not finish within its {timeout:g} s timeout "
                f"(killed after {limit:g} s)",
                details={"timeout": timeout},
            ) from None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        answer = _last_json_object(out)
        if answer is not None:
            return answer
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": f"probe exited with code {proc.returncode} without an answer: {tail[0]}"}


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _last_json_object(text: str | None) -> dict[str, Any] | None:
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


# ---------------------------------------------------------------- heartbeat history


@dataclass(frozen=True)
class HeartbeatSample:
    t: float  # the history's clock when the heartbeat arrived
    fps: float | None
    decoded: int
    dropped: int
    motion: float | None


@dataclass(frozen=True)
class HeartbeatSummary:
    samples: int
    fps_avg: float | None
    fps_min: float | None
    motion_avg: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class HeartbeatHistory:
    """Per-camera bounded deques of heartbeat samples. Thread-safe.

    Feed it with :meth:`attach` (subscribes to a supervisor's events) or call
    :meth:`record` directly. ``clock`` stamps arrivals and bounds windows, so a
    test can move time without sleeping.
    """

    def __init__(self, maxlen: int = 3600, clock: Clock = time.monotonic) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self.maxlen = maxlen
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: dict[int, deque[HeartbeatSample]] = {}
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, supervisor: SupervisorPort) -> HeartbeatHistory:
        if self._unsubscribe is not None:
            raise RuntimeError("HeartbeatHistory is already attached to a supervisor")
        self._unsubscribe = supervisor.subscribe(self.on_event)
        return self

    def detach(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def on_event(self, event: SupervisorEvent) -> None:
        if event.kind == "heartbeat":
            self.record(event.camera_id, event.detail)

    def record(self, camera_id: int, heartbeat: Mapping[str, Any]) -> None:
        sample = HeartbeatSample(
            t=self._clock(),
            fps=_number(heartbeat.get("fps")),
            decoded=int(heartbeat.get("decoded") or 0),
            dropped=int(heartbeat.get("dropped") or 0),
            motion=_number(heartbeat.get("motion")),
        )
        with self._lock:
            dq = self._samples.get(camera_id)
            if dq is None:
                dq = self._samples[camera_id] = deque(maxlen=self.maxlen)
            dq.append(sample)

    def samples(self, camera_id: int, window_s: float) -> list[HeartbeatSample]:
        """The samples that arrived within the last ``window_s`` seconds, oldest first."""
        since = self._clock() - window_s
        with self._lock:
            dq = self._samples.get(camera_id)
            if not dq:
                return []
            return [s for s in dq if s.t >= since]

    def summary(self, camera_id: int, window_s: float) -> HeartbeatSummary:
        got = self.samples(camera_id, window_s)
        fps = [s.fps for s in got if s.fps is not None]
        motion = [s.motion for s in got if s.motion is not None]
        return HeartbeatSummary(
            samples=len(got),
            fps_avg=sum(fps) / len(fps) if fps else None,
            fps_min=min(fps) if fps else None,
            motion_avg=sum(motion) / len(motion) if motion else None,
        )

    def forget(self, camera_id: int) -> None:
        with self._lock:
            self._samples.pop(camera_id, None)
