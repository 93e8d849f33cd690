"""What supervising many real workers costs the readers: status reads during a stats pass,
and a start of many workers at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.supervisor import WorkerSpec, WorkerState, stats
from app.supervisor.model import SupervisorEvent
from tests.reliability.conftest import Harness, wait_for
from tests.reliability.test_supervisor_real_worker import real_policy, real_spec

pytestmark = pytest.mark.slow


def test_status_answers_while_a_stats_pass_is_held(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    entered = threading.Event()
    release = threading.Event()
    real_ppid_map = stats.ppid_map

    def held_ppid_map() -> dict[int, list[int]]:
        # The first /proc scan of a pass is held until the test lets it go.
        entered.set()
        assert release.wait(60), "the test never released the stats pass"
        return real_ppid_map()

    sup = harness.supervisor(real_policy())
    sup.start_worker(real_spec(1, "test://moving?size=160x90&rate=10"))
    wait_for(lambda: sup.status(1).state == WorkerState.RUNNING, 30, "worker running")
    pid = sup.status(1).pid
    beats: list[SupervisorEvent] = []
    got_beat = threading.Event()

    def on_event(ev: SupervisorEvent) -> None:
        if ev.kind == "heartbeat" and entered.is_set():
            beats.append(ev)
            got_beat.set()

    unsubscribe = sup.subscribe(on_event)
    monkeypatch.setattr(stats, "ppid_map", held_ppid_map)
    pool = ThreadPoolExecutor(1)
    try:
        assert entered.wait(30), "no stats pass began"
        # Read from another thread: were the read to wait for the held pass, the
        # bounded wait below would fail the test instead of hanging it.
        status = pool.submit(sup.status, 1).result(timeout=20)
        figures = pool.submit(sup.stats, 1).result(timeout=20)
        everything = pool.submit(sup.statuses).result(timeout=20)
        assert status.state == WorkerState.RUNNING and status.pid == pid
        assert everything[1].pid == pid
        assert figures is not None and figures.pid == pid
        # The supervisor thread goes on reading heartbeats while the pass is held.
        assert got_beat.wait(20), "no heartbeat was handled while the stats pass was held"
        assert sup.stats(1) == figures  # the held pass has published nothing yet
    finally:
        release.set()
        pool.shutdown()
        unsubscribe()
    # Once let go, the pass publishes fresh figures.
    wait_for(lambda: (x := sup.stats(1)) is not None and x.at > figures.at, 10, "the held pass's figures")


def test_many_workers_started_at_once_all_run(harness: Harness) -> None:
    n = 24
    sup = harness.supervisor(real_policy(start_timeout=120.0, heartbeat_timeout=60.0))
    sources = ["test://moving", "test://life", "test://still"]
    for cid in range(1, n + 1):
        spec: WorkerSpec = real_spec(cid, f"{sources[cid % 3]}?size=160x90&rate=5", max_fps=5.0)
        assert sup.start_worker(spec).state == WorkerState.STARTING
    wait_for(lambda: sum(s.state == WorkerState.RUNNING and s.last_heartbeat_age is not None
                         for s in sup.statuses().values()) == n, 180, f"all {n} workers running")
    statuses = sup.statuses()
    assert sorted(statuses) == list(range(1, n + 1))
    assert len({s.pid for s in statuses.values()}) == n
    assert all(s.restarts == 0 for s in statuses.values())
