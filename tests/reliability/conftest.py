"""Fixtures for the supervisor reliability tests.

Each test gets a Supervisor with a unique owner token; afterwards every process that
carries that token in its environment (workers, and grandchildren that escaped with
setsid, which the suite-wide child check cannot see) must be gone.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent, WorkerSpec, WorkerState
from app.supervisor.proctree import OWNER_ENV, find_by_env

HERE = Path(__file__).resolve().parent
FAKE_WORKER = HERE / "fakeworkers" / "fakeworker.py"
FAKE_COMMAND = (sys.executable, str(FAKE_WORKER))
REPO_ROOT = HERE.parent.parent


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def fast_policy(**overrides: object) -> RestartPolicy:
    base: dict[str, object] = dict(
        backoff_initial=0.2, backoff_max=2.0, backoff_factor=2.0, jitter=0.0, stable_after=0.5,
        rate_limit_starts=20, rate_limit_window=60.0, failed_retry_interval=60.0,
        heartbeat_timeout=2.0, stop_timeout=2.0, heartbeat_interval=0.2, start_timeout=10.0,
    )
    base.update(overrides)
    return RestartPolicy(**base)  # type: ignore[arg-type]


@dataclass
class Recorder:
    """Collects supervisor events (thread-safe)."""

    events: list[SupervisorEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, ev: SupervisorEvent) -> None:
        with self.lock:
            self.events.append(ev)

    def of(self, kind: str, camera_id: int | None = None) -> list[SupervisorEvent]:
        with self.lock:
            return [e for e in self.events
                    if e.kind == kind and (camera_id is None or e.camera_id == camera_id)]

    def states(self, camera_id: int) -> list[str]:
        return [e.detail["to"] for e in self.of("state", camera_id)]

    def wait(self, pred: Callable[[SupervisorEvent], bool], timeout: float, what: str) -> SupervisorEvent:
        def find() -> SupervisorEvent | None:
            with self.lock:
                for e in self.events:
                    if pred(e):
                        return e
            return None
        return wait_for(find, timeout, what)  # type: ignore[return-value]


class Journal:
    """Reads the fake worker's start/exit journal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, event: str | None = None) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line being written
            if event is None or e.get("event") == event:
                out.append(e)
        return out

    def starts(self) -> list[dict[str, object]]:
        return self.entries("start")


@dataclass
class Harness:
    tmp: Path
    owner: str
    recorder: Recorder
    supervisors: list[Supervisor] = field(default_factory=list)

    def supervisor(self, policy: RestartPolicy | None = None, **kw: object) -> Supervisor:
        n = len(self.supervisors)
        sup = Supervisor(self.tmp / f"run{n}", self.tmp / f"logs{n}", policy=policy or fast_policy(),
                         owner=self.owner, **kw)  # type: ignore[arg-type]
        sup.subscribe(self.recorder)
        sup.start()
        self.supervisors.append(sup)
        return sup

    def journal(self, name: str = "journal") -> Journal:
        return Journal(self.tmp / f"{name}.jsonl")

    def spec(self, camera_id: int = 1, *fake_args: str, journal: str = "journal",
             stall_timeout: float = 10.0, source: str = "test://moving") -> WorkerSpec:
        return WorkerSpec(
            camera_id=camera_id, name=f"cam{camera_id}", source=source,
            stall_timeout=stall_timeout,
            extra_args=("--fake-journal", str(self.tmp / f"{journal}.jsonl"), *fake_args),
            command=FAKE_COMMAND,
        )


def owned_processes(owner: str) -> list[psutil.Process]:
    return find_by_env(OWNER_ENV, owner)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    owner = f"t{secrets.token_hex(6)}"
    h = Harness(tmp=tmp_path, owner=owner, recorder=Recorder())
    try:
        yield h
    finally:
        for sup in h.supervisors:
            sup.shutdown(timeout=2.0)
        leaked_previews = [p for sup in h.supervisors if sup.preview_dir.exists()
                           for p in sup.preview_dir.glob("cam-*.preview")]
        deadline = time.monotonic() + 3.0
        left = owned_processes(owner)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = owned_processes(owner)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        assert not left, f"processes of this test still alive: {[p.pid for p in left]}"
        assert not leaked_previews, f"preview slots left behind: {leaked_previews}"


def loop_passes(sup: Supervisor, n: int = 3, timeout: float = 10.0) -> None:
    """Wait until the supervisor loop has run ``n`` more passes: every event and timer that was
    due has been handled (the loop wakes at least once a second)."""
    start = sup.loop_passes
    wait_for(lambda: sup.loop_passes >= start + n, timeout, f"{n} more passes of the supervisor loop")


def running(sup: Supervisor, camera_id: int, other_than: int | None = None) -> bool:
    st = sup.status(camera_id)
    return st.state == WorkerState.RUNNING and st.pid is not None and st.pid != other_than
