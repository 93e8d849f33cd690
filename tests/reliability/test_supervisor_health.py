"""Liveness: hung workers, stalled sources, sources that come and go, log floods, stats."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from app.supervisor import WorkerState
from tests.reliability.conftest import Harness, fast_policy, running, wait_for

pytestmark = pytest.mark.slow


def test_sigstopped_worker_is_detected_as_hung_and_restarted(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(heartbeat_timeout=1.0, stable_after=0.3))
    st = sup.start_worker(harness.spec(1))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    assert st.pid is not None
    os.kill(st.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    stalled = harness.recorder.wait(lambda e: e.kind == "state" and e.detail["to"] == "stalled",
                                    5, "the hung worker to be noticed")
    assert "hung" in stalled.detail["reason"]
    wait_for(lambda: running(sup, 1, other_than=st.pid), 10, "a new worker running")
    took = time.monotonic() - t0
    assert took < 1.0 + 0.2 + 2.0  # timeout + heartbeat interval + respawn
    new = sup.status(1)
    assert new.last_exit is not None and new.last_exit.signal == signal.SIGKILL
    assert "hung" in new.last_exit.reason
    assert new.restarts == 1
    assert not psutil.pid_exists(st.pid) or psutil.Process(st.pid).status() == psutil.STATUS_ZOMBIE


def test_worker_that_stops_heartbeating_is_restarted(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(heartbeat_timeout=0.8, stable_after=0.2))
    st = sup.start_worker(harness.spec(1, "--fake-hb-stop-after", "0.6", "--fake-faulty-runs", "1"))
    wait_for(lambda: running(sup, 1, other_than=st.pid), 10, "a new worker running")
    last = sup.status(1).last_exit
    assert last is not None and "no heartbeat" in last.reason


def test_worker_that_never_heartbeats_is_restarted_after_start_timeout(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(start_timeout=1.0, backoff_initial=0.1))
    journal = harness.journal()
    sup.start_worker(harness.spec(1, "--fake-first-hb-delay", "60", "--fake-faulty-runs", "1"))
    wait_for(lambda: running(sup, 1), 10, "the second run running")
    assert len(journal.starts()) == 2
    last = sup.status(1).last_exit
    assert last is not None and "within 1 s of start" in last.reason


def test_stalled_source_is_restarted(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=0.3))
    st = sup.start_worker(harness.spec(1, "--fake-stale-after", "0.8", "--fake-faulty-runs", "1",
                                       stall_timeout=0.5))
    ev = harness.recorder.wait(lambda e: e.kind == "state" and e.detail["to"] == "stalled",
                               10, "the stall to be noticed")
    assert "stalled" in ev.detail["reason"] and "last frame" in ev.detail["reason"]
    wait_for(lambda: running(sup, 1, other_than=st.pid), 10, "a new worker running")
    new = sup.status(1)
    assert new.last_exit is not None and new.last_exit.code == 0  # it obeyed TERM
    assert "stalled" in new.last_exit.reason
    assert new.restarts == 1


def test_source_down_is_not_a_reason_to_restart(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(stable_after=0.3))
    # The source is down from 1 s to 3 s, with frames old far past the stall timeout.
    st = sup.start_worker(harness.spec(1, "--fake-source-down", "1:3", stall_timeout=0.5))
    down = harness.recorder.wait(lambda e: e.kind == "source" and e.detail["to"] == "down",
                                 10, "source down")
    assert down.detail["error"] == "fake source gone"
    assert sup.status(1).source == "down"
    assert sup.status(1).error == "fake source gone"
    harness.recorder.wait(lambda e: e.kind == "source" and e.detail["to"] == "up"
                          and e.detail["from"] == "down", 10, "source back up")
    st2 = sup.status(1)
    assert st2.pid == st.pid and st2.restarts == 0 and st2.state == WorkerState.RUNNING
    assert st2.error is None
    assert harness.recorder.of("exit") == []


def test_log_flood_stays_within_bounds_and_heartbeats_keep_time(harness: Harness) -> None:
    max_bytes, backups = 100_000, 2
    sup = harness.supervisor(fast_policy(heartbeat_interval=0.2, heartbeat_timeout=1.0),
                             log_max_bytes=max_bytes, log_backups=backups, log_ring_size=500)
    sup.start_worker(harness.spec(1, "--fake-flood-stderr", journal="j1"))
    sup.start_worker(harness.spec(2, journal="j2"))
    wait_for(lambda: running(sup, 1) and running(sup, 2), 10, "both workers running")
    t_start = time.time()

    def beats_of(cid: int) -> list[float]:
        return [e.ts for e in harness.recorder.of("heartbeat", cid) if e.ts >= t_start]

    wait_for(lambda: (sup.log_dir / "camera-1.log.1").exists() and all(len(beats_of(c)) >= 16 for c in (1, 2)),
             20, "the flood to reach the rotation while both workers beat")
    elapsed = time.time() - t_start
    files = sorted(sup.log_dir.glob("camera-1.log*"))
    total = sum(f.stat().st_size for f in files)
    assert total <= (backups + 1) * max_bytes + 5_000, f"{total} bytes in {files}"
    assert (sup.log_dir / "camera-1.log.1").exists(), "the flood never reached the rotation"
    assert not (sup.log_dir / f"camera-1.log.{backups + 1}").exists()
    assert len(sup.logs(1, limit=100_000)) <= 500
    assert any("log flood" in line.text for line in sup.logs(1, limit=500))
    for cid in (1, 2):
        beats = beats_of(cid)
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert len(beats) >= 15 * elapsed / 4.0, f"camera {cid}: only {len(beats)} heartbeats in {elapsed:.1f} s"
        assert max(gaps) < 0.6, f"camera {cid}: heartbeat gap {max(gaps):.2f} s"
        st = sup.status(cid)
        assert st.state == WorkerState.RUNNING and st.restarts == 0


def test_stats_are_primed_and_include_descendants(harness: Harness) -> None:
    gc_file = harness.tmp / "gc.pid"
    sup = harness.supervisor()
    st = sup.start_worker(harness.spec(1, "--fake-grandchild", str(gc_file)))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    wait_for(lambda: gc_file.exists(), 10, "grandchild spawned")
    wait_for(lambda: (s := sup.stats(1)) is not None and s.children >= 1, 5, "descendant counted")
    stats = sup.stats(1)
    assert stats is not None and stats.pid == st.pid
    worker = psutil.Process(st.pid)
    grandchild = psutil.Process(int(gc_file.read_text()))
    own = worker.memory_info().rss + grandchild.memory_info().rss
    assert stats.rss_bytes >= 0.8 * own
    assert stats.threads >= worker.num_threads() + 1
    # The fake worker polls every 10 ms: a primed sample shows some CPU, never 100s of %.
    wait_for(lambda: (s := sup.stats(1)) is not None and s.cpu_percent > 0, 5, "non-zero CPU")
    s = sup.stats(1)
    assert s is not None and s.cpu_percent < 100


def test_garbage_on_stdout_is_logged_not_fatal(harness: Harness) -> None:
    sup = harness.supervisor(fast_policy(heartbeat_interval=0.2))
    st = sup.start_worker(harness.spec(1, "--fake-garbage"))
    wait_for(lambda: running(sup, 1), 10, "worker running")
    wait_for(lambda: any("not json" in line.text for line in sup.logs(1)), 5, "the odd line logged")
    seen = len(harness.recorder.of("heartbeat", 1))
    wait_for(lambda: len(harness.recorder.of("heartbeat", 1)) >= seen + 5, 5, "five more heartbeats")
    s = sup.status(1)
    assert s.state == WorkerState.RUNNING and s.pid == st.pid and s.restarts == 0
    # Fields of the odd heartbeat are dropped, not passed on with the wrong type.
    assert s.fps is None or isinstance(s.fps, float)
    assert s.source in (None, "up", "down", "opening")
    assert s.error is None or isinstance(s.error, str)
    assert isinstance(s.decoded, int) and (s.width is None or isinstance(s.width, int))
    assert s.width is not True
    # An invalid source value does not make the source state flap.
    assert [e.detail["to"] for e in harness.recorder.of("source", 1)] == ["up"]
