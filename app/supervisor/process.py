"""What the supervisor keeps about one spawned worker process and one camera (plain data)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from app.supervisor.lifecycle import Lifecycle
from app.supervisor.logbuf import LogSink
from app.supervisor.model import ExitInfo, ProcessStats, WorkerSpec, WorkerState, WorkerStatus
from app.supervisor.proctree import ProcRef, TreeSampler

__all__ = ["Slot", "WorkerHandle", "WorkerProcess"]


class WorkerHandle(Protocol):
    """What the supervisor uses of a worker process: ``subprocess.Popen`` for one it spawned,
    ``app.supervisor.launcher.ForkedWorker`` for one the worker launcher forked."""

    @property
    def pid(self) -> int: ...
    @property
    def stdin(self) -> IO[bytes] | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    @property
    def stderr(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(eq=False)
class WorkerProcess:
    """One spawned worker process (a new one for every spawn)."""

    popen: WorkerHandle
    ref: ProcRef
    instance: str
    spawn_mono: float
    started_at: float
    preview: Path | None
    pidfd: int | None = None
    out_fd: int | None = None
    err_fd: int | None = None
    out_buf: bytearray = field(default_factory=bytearray)
    err_buf: bytearray = field(default_factory=bytearray)
    descendants: set[ProcRef] = field(default_factory=set)
    sampler: TreeSampler = field(default_factory=TreeSampler)
    stats: ProcessStats | None = None
    stop_note: str = ""  # human detail for hung/stalled
    stop_deadline: float | None = None
    killed: bool = False
    exited: bool = False
    hb: dict[str, Any] = field(default_factory=dict)
    last_err_line: str = ""
    strays_killed: int = 0
    #: forked by the worker launcher (its child, not ours: the launcher reaps it and reports the status)
    forked: bool = False

    @property
    def pid(self) -> int:
        return self.ref.pid


@dataclass(eq=False)
class Slot:
    """Everything the supervisor keeps about one camera across spawns."""

    spec: WorkerSpec
    log: LogSink
    lc: Lifecycle
    proc: WorkerProcess | None = None
    last_exit: ExitInfo | None = None
    stop_waiters: list[Future[WorkerStatus]] = field(default_factory=list)
    restart_waiters: list[Future[WorkerStatus]] = field(default_factory=list)
    pending_spec: WorkerSpec | None = None
    last_summary: float = 0.0
    announced: WorkerState = WorkerState.STOPPED  # the state the last "state" event told

    @property
    def camera_id(self) -> int:
        return self.spec.camera_id

    @property
    def state(self) -> WorkerState:
        return self.lc.state
