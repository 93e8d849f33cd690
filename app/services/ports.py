"""The probe runner and the heartbeat history: two adapters the operations use.

* :class:`ProbeRunner` — runs ``<worker> probe URL`` in a short-lived process
  with a hard timeout (a :class:`~app.domain.ports.ProbePort`).
* :class:`HeartbeatHistory` — keeps the last heartbeats per camera so
  ``camera_stats`` can report frame metrics over a window (a
  :class:`~app.domain.ports.HistoryPort`).

The ports themselves (and :class:`SupervisorPort`, re-exported here) are the
domain's (:mod:`app.domain.ports`). ``app.legacy`` must not import this module
(the two implementations are independent); it takes the same objects through
the domain's ports.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from app.domain.camera import mask_secrets
from app.domain.errors import Unavailable
from app.domain.ports import HeartbeatSummary, SupervisorPort
from app.domain.worker import SupervisorEvent
from app.supervisor.proctree import INSTANCE_ENV, MARKER_ENV, PARENT_ENV

__all__ = ["HeartbeatHistory", "HeartbeatSample", "HeartbeatSummary", "ProbeRunner", "SupervisorPort"]

Clock = Callable[[], float]


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
                 env: Mapping[str, str] | None = None, run_dir: Path | None = None) -> None:
        if grace < 0:
            raise ValueError(f"grace must be >= 0, got {grace}")
        self._command = tuple(command) if command else None
        self.grace = grace
        self._env = dict(env) if env is not None else None
        # A pid file per probe in flight: the next start reaps one a killed station left.
        self.run_dir = Path(run_dir) if run_dir is not None else None

    def command_for(self, source: str, timeout: float) -> list[str]:
        if self._command is None:
            from app.workerlink.launch import worker_command

            prefix: Sequence[str] = worker_command()
        else:
            prefix = self._command
        # The source comes on stdin: a password must not show on the command line.
        return [*prefix, "probe", "-", "--timeout", f"{timeout:g}"]

    def probe(self, source: str, timeout: float) -> dict[str, Any]:
        shown = mask_secrets(source)
        env = dict(os.environ if self._env is None else self._env)
        instance = secrets.token_hex(8)
        env.update({MARKER_ENV: "1", INSTANCE_ENV: instance, PARENT_ENV: str(os.getpid())})
        argv = self.command_for(source, timeout)

        def spawn() -> subprocess.Popen[str]:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=env, text=True, errors="replace",
            )

        try:
            # The probe's parent-death signal fires when the thread that forked it ends:
            # fork from one long-lived thread, so a probe dies with the station, not
            # with a request's thread.
            proc = _SPAWNER.run(spawn)
        except OSError as e:
            raise Unavailable(f"cannot run the probe for {shown}: {e}") from e
        pidfile = self._write_pidfile(proc.pid, instance)
        limit = timeout + self.grace
        try:
            out, err = proc.communicate(input=source + "\n", timeout=limit)
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
        finally:
            if pidfile is not None:
                with contextlib.suppress(OSError):
                    pidfile.unlink()
        answer = _last_json_object(out)
        if answer is not None:
            return answer
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": f"probe exited with code {proc.returncode} without an answer: {tail[0]}"}


    def _write_pidfile(self, pid: int, instance: str) -> Path | None:
        if self.run_dir is None:
            return None
        from app.supervisor.pidfiles import PidRecord, write_probe_pidfile

        try:
            create_time = psutil.Process(pid).create_time()
            return write_probe_pidfile(self.run_dir, PidRecord(
                camera_id=-1, pid=pid, create_time=create_time, instance=instance, owner="probe",
                started_at=time.time()))
        except (OSError, psutil.Error):
            return None  # it may have ended already; a safety net only


class _Spawner:
    """One long-lived daemon thread that forks on behalf of other threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="edge-probe-spawner", daemon=True)
                self._thread.start()
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)


_SPAWNER = _Spawner()


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _Ring:
    """One camera's samples as five preallocated float columns (a fixed 40 bytes a sample).

    3,600 samples of 16 cameras are 2.3 MB from the first heartbeat on, instead of
    Python objects that grew to several times that before the cap was reached.
    """

    __slots__ = ("t", "fps", "decoded", "dropped", "motion", "head", "size")

    def __init__(self, maxlen: int) -> None:
        blank = [math.nan] * maxlen
        self.t = array("d", blank)
        self.fps = array("d", blank)
        self.decoded = array("d", blank)
        self.dropped = array("d", blank)
        self.motion = array("d", blank)
        self.head = 0  # where the next sample goes
        self.size = 0

    def append(self, t: float, fps: float | None, decoded: int, dropped: int, motion: float | None) -> None:
        i = self.head
        self.t[i] = t
        self.fps[i] = math.nan if fps is None else fps
        self.decoded[i] = decoded
        self.dropped[i] = dropped
        self.motion[i] = math.nan if motion is None else motion
        n = len(self.t)
        self.head = (i + 1) % n
        self.size = min(self.size + 1, n)

    def since(self, t0: float) -> list[HeartbeatSample]:
        n = len(self.t)
        out: list[HeartbeatSample] = []
        for k in range(self.size):  # newest first, stop at the first one that is too old
            i = (self.head - 1 - k) % n
            t = self.t[i]
            if t < t0:
                break
            fps, motion = self.fps[i], self.motion[i]
            out.append(HeartbeatSample(t=t, fps=None if math.isnan(fps) else fps,
                                       decoded=int(self.decoded[i]), dropped=int(self.dropped[i]),
                                       motion=None if math.isnan(motion) else motion))
        out.reverse()
        return out


class HeartbeatHistory:
    """Per-camera bounded rings of heartbeat samples. Thread-safe.

    Feed it with :meth:`attach` (subscribes to a supervisor's events) or call
    :meth:`record` directly. ``clock`` stamps arrivals and bounds windows, so a
    test can move time without sleeping. Memory is fixed per camera from the first
    sample (see :class:`_Ring`).
    """

    def __init__(self, maxlen: int = 3600, clock: Clock = time.monotonic) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self.maxlen = maxlen
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: dict[int, _Ring] = {}
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
        t = self._clock()
        fps = _number(heartbeat.get("fps"))
        decoded = int(heartbeat.get("decoded") or 0)
        dropped = int(heartbeat.get("dropped") or 0)
        motion = _number(heartbeat.get("motion"))
        with self._lock:
            ring = self._samples.get(camera_id)
            if ring is None:
                ring = self._samples[camera_id] = _Ring(self.maxlen)
            ring.append(t, fps, decoded, dropped, motion)

    def samples(self, camera_id: int, window_s: float) -> list[HeartbeatSample]:
        """The samples that arrived within the last ``window_s`` seconds, oldest first."""
        since = self._clock() - window_s
        with self._lock:
            ring = self._samples.get(camera_id)
            if ring is None:
                return []
            return ring.since(since)

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
