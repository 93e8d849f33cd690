"""The supervisor's status snapshot is reused while nothing happens, never across a change.

Status reads are the station's hottest path (every API ``GET /cameras``, the window's refresh),
so ``Supervisor.statuses()`` keeps its snapshot for at most ``STATUS_TICK`` seconds while no
event happened. A command's change must still show at once to the caller that made it.
"""

from __future__ import annotations

import time

from app.supervisor import WorkerState
from app.supervisor.core import STATUS_TICK
from tests.reliability.conftest import Harness, running, wait_for


class FrozenClock:
    """The supervisor's monotonic clock, standing still unless the test moves it."""

    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t


def test_snapshot_is_reused_within_a_tick_and_renewed_after(harness: Harness) -> None:
    clock = FrozenClock()
    sup = harness.supervisor(clock=clock)
    first = sup.statuses()
    assert sup.statuses() is first  # nothing happened, same tick
    clock.t += STATUS_TICK / 4
    # nothing happened and the tick may or may not have turned: once it has, a new snapshot
    clock.t += STATUS_TICK * 1.5
    assert sup.statuses() is not first


def test_a_commands_change_shows_at_once(harness: Harness) -> None:
    clock = FrozenClock()
    sup = harness.supervisor(clock=clock)
    assert sup.status(1).state is WorkerState.STOPPED  # the snapshot of "nothing runs" is taken
    started = sup.start_worker(harness.spec(1))
    assert started.state is not WorkerState.STOPPED
    assert sup.status(1).state is not WorkerState.STOPPED  # same tick: the start's event renewed it
    assert 1 in sup.statuses()
    wait_for(lambda: running(sup, 1), 15, "worker running")
    stopped = sup.stop_worker(1)
    assert stopped.state is WorkerState.STOPPED
    assert sup.status(1).state is WorkerState.STOPPED and sup.status(1).pid is None
