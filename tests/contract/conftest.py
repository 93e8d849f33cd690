"""The contract suite: every operation against both implementations on real parts.

One parametrized fixture, ``ops``, builds the legacy or the domain
implementation on a ``station``: a temporary SQLite store (``open_store``), a
real :class:`Supervisor` running real workers (``python -m app.worker`` on
FFmpeg test sources), the heartbeat history and the probe runner. Teardown
shuts the supervisor down and checks that no process of this test survives.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from app.domain import Camera
from app.domain.operations import StationOperations
from app.legacy import LegacyOperations
from app.services import DomainOperations, HeartbeatHistory, ProbeRunner, StationAdmin
from app.store import Store, open_store
from app.supervisor import RestartPolicy, Supervisor
from app.supervisor.proctree import OWNER_ENV, find_by_env

IMPLEMENTATIONS = ("legacy", "domain")
#: a small synthetic source keeps the workers cheap
MOVING = "test://moving?size=320x180&rate=15"
STILL = "test://still?size=320x180&rate=15"
#: a python that hangs when asked to probe (for the hard-timeout cases)
HANGING_PROBE = (sys.executable, "-c", "import time; time.sleep(60)")


def contract_policy() -> RestartPolicy:
    return RestartPolicy(
        backoff_initial=0.2, backoff_max=2.0, jitter=0.0, stable_after=5.0, rate_limit_starts=10,
        heartbeat_timeout=5.0, stop_timeout=2.0, heartbeat_interval=0.25, start_timeout=15.0,
    )


@dataclass
class Station:
    """Everything an implementation is built on, plus three seeded cameras."""

    tmp: Path
    store: Store
    supervisor: Supervisor
    history: HeartbeatHistory
    probe_runner: ProbeRunner
    admin: StationAdmin
    gate: Camera  # active, moving test pattern
    yard: Camera  # inactive, still test pattern
    dock: Camera  # active, a file that does not exist (a configuration error)

    def build(self, kind: str, probe_runner: ProbeRunner | None = None) -> StationOperations:
        probe = probe_runner or self.probe_runner
        if kind == "legacy":
            return LegacyOperations(self.store.engine, self.supervisor, probe, self.history)
        if kind == "domain":
            return DomainOperations(self.store, self.supervisor, probe, self.history)
        raise ValueError(kind)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    owner = f"contract-{secrets.token_hex(5)}"
    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    sup = Supervisor(tmp_path / "run", tmp_path / "logs", policy=contract_policy(), owner=owner,
                     preview_root=tmp_path / "preview")
    history = HeartbeatHistory()
    started = time.time()
    try:
        sup.start()
        history.attach(sup)
        admin = StationAdmin(store, sup)
        yield Station(
            tmp=tmp_path, store=store, supervisor=sup, history=history, probe_runner=ProbeRunner(grace=3.0),
            admin=admin,
            gate=admin.add_camera(Camera("Gate", MOVING, stall_timeout=5.0)),
            yard=admin.add_camera(Camera("Yard", STILL, active=False)),
            dock=admin.add_camera(Camera("Dock", str(tmp_path / "missing.mp4"))),
        )
    finally:
        history.detach()
        sup.shutdown(timeout=2.0)
        store.dispose()
        left = find_by_env(OWNER_ENV, owner, created_after=started)
        deadline = time.monotonic() + 3.0
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = find_by_env(OWNER_ENV, owner, created_after=started)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        assert not left, f"worker processes outlived the station: {[p.pid for p in left]}"


@pytest.fixture(params=IMPLEMENTATIONS)
def ops(request: pytest.FixtureRequest, station: Station) -> StationOperations:
    """The implementation under test (legacy, then domain) on this test's station."""
    return station.build(request.param)
