"""The supervisor driving the real worker (python -m app.worker) on real video."""

from __future__ import annotations

import os
import signal

import pytest

from app.supervisor import RestartPolicy, WorkerSpec, WorkerState
from app.workerlink.preview import PreviewReader
from tests.reliability.conftest import Harness, loop_passes, running, wait_for
from tests.support.stream_server import StreamServer

pytestmark = pytest.mark.slow


def real_policy(**kw: object) -> RestartPolicy:
    base: dict[str, object] = dict(heartbeat_interval=0.5, heartbeat_timeout=5.0, stable_after=1.0,
                                   backoff_initial=0.2, stop_timeout=3.0)
    base.update(kw)
    return RestartPolicy(**base)  # type: ignore[arg-type]


def real_spec(camera_id: int, source: str, **kw: object) -> WorkerSpec:
    return WorkerSpec(camera_id=camera_id, name=f"cam{camera_id}", source=source, **kw)  # type: ignore[arg-type]


def test_real_worker_runs_reports_previews_and_stops(harness: Harness) -> None:
    sup = harness.supervisor(real_policy())
    st = sup.start_worker(real_spec(1, "test://moving?size=320x180&rate=15"))
    assert st.pid is not None
    wait_for(lambda: running(sup, 1) and sup.status(1).source == "up"
             and sup.status(1).decoded > 15, 30, "frames decoded")
    s = sup.status(1)
    assert s.width == 320 and s.height == 180
    assert s.fps is not None and s.fps > 5
    assert s.last_frame_age is not None and s.last_frame_age < 2.0
    assert s.motion is not None
    preview = sup.preview_path(1)
    assert preview is not None
    reader = PreviewReader(preview)
    try:
        frame = wait_for(reader.read, 10, "a preview frame")
        assert frame.image.ndim == 3 and frame.image.shape[2] == 4  # type: ignore[attr-defined]  # BGRX
        assert frame.width <= 320 and frame.height <= 180  # type: ignore[attr-defined]
    finally:
        reader.close()
    wait_for(lambda: (x := sup.stats(1)) is not None and x.cpu_percent > 0 and x.rss_bytes > 10_000_000,
             10, "primed process stats")
    stats = sup.stats(1)
    assert stats is not None and stats.threads >= 2
    assert any(line.source == "worker" for line in sup.logs(1))
    done = sup.stop_worker(1)
    assert done.state == WorkerState.STOPPED
    assert done.last_exit is not None and done.last_exit.code == 0
    assert not preview.exists()


def test_real_worker_config_error_is_failed_not_retried(harness: Harness) -> None:
    sup = harness.supervisor(real_policy(failed_retry_interval=0.5))
    sup.start_worker(real_spec(1, "gopher://nowhere/stream"))
    failed = harness.recorder.wait(lambda e: e.kind == "failed", 30, "the 'failed' event")
    assert failed.detail["retry"] is False
    loop_passes(sup)  # no retry is due
    st = sup.status(1)
    assert st.state == WorkerState.FAILED and st.next_retry_in is None
    assert st.last_exit is not None and st.last_exit.code == 78
    assert len(harness.recorder.of("exit", 1)) == 1


def test_real_worker_killed_is_restarted(harness: Harness) -> None:
    sup = harness.supervisor(real_policy())
    st = sup.start_worker(real_spec(1, "test://moving?size=160x90&rate=10"))
    wait_for(lambda: running(sup, 1), 30, "worker running")
    wait_for(lambda: (sup.status(1).uptime or 0.0) >= 1.1, 10, "a stable run")
    assert st.pid is not None
    os.kill(st.pid, signal.SIGKILL)
    wait_for(lambda: running(sup, 1, other_than=st.pid), 30, "restarted worker running")
    new = sup.status(1)
    assert new.restarts == 1 and new.last_exit is not None and new.last_exit.signal == signal.SIGKILL


def test_source_that_disappears_goes_down_and_reconnects_without_restart(harness: Harness) -> None:
    server = StreamServer(width=160, height=90, fps=10).start()
    try:
        sup = harness.supervisor(real_policy(heartbeat_timeout=8.0))
        st = sup.start_worker(real_spec(1, server.url, stall_timeout=6.0))
        wait_for(lambda: running(sup, 1) and sup.status(1).source == "up"
                 and sup.status(1).decoded > 5, 30, "the stream being decoded")
        server.stop()
        harness.recorder.wait(lambda e: e.kind == "source" and e.detail["to"] == "down", 20, "source down")
        assert sup.status(1).source == "down"
        server.start()
        harness.recorder.wait(lambda e: e.kind == "source" and e.detail["to"] == "up"
                              and e.detail["from"] == "down", 30, "source back up")
        wait_for(lambda: sup.status(1).last_frame_age is not None
                 and sup.status(1).last_frame_age < 2.0, 15, "fresh frames again")
        after = sup.status(1)
        assert after.pid == st.pid, "the worker process was restarted"
        assert after.restarts == 0 and after.state == WorkerState.RUNNING
        assert harness.recorder.of("exit", 1) == []
        sup.stop_worker(1)
    finally:
        server.stop()


def test_real_worker_sigstopped_is_restarted_as_hung(harness: Harness) -> None:
    sup = harness.supervisor(real_policy(heartbeat_timeout=2.0))
    st = sup.start_worker(real_spec(1, "test://moving?size=160x90&rate=10"))
    wait_for(lambda: running(sup, 1), 30, "worker running")
    assert st.pid is not None
    os.kill(st.pid, signal.SIGSTOP)
    wait_for(lambda: running(sup, 1, other_than=st.pid), 30, "a new worker running")
    last = sup.status(1).last_exit
    assert last is not None and "hung" in last.reason and last.signal == signal.SIGKILL
