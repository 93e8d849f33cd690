"""Frame rate that does not spike (defect 8): fps comes from the stream's own timestamps over a
steady window and never exceeds what the source delivers, however fast frames arrive."""

from __future__ import annotations

import pytest

from tests.integration.test_worker import run_args, start_worker  # noqa: F401 - the fixture
from tests.support.clips import write_clip
from tests.support.stream_server import StreamServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip15(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("fps"), width=320, height=180, seconds=4.0, fps=15)


def test_a_15_fps_file_read_as_fast_as_possible_reports_15(start_worker, clip15):  # noqa: F811
    # --no-pace decodes far faster than real time: every second of wall time sees many seconds
    # of stream. Counting arrivals read that as a rate of hundreds; the stream says 15.
    worker = start_worker(*run_args(str(clip15), "--no-pace", "--loop", "--heartbeat-interval", "0.5"))
    worker.wait_for(lambda b: b["decoded"] >= 200, 20, "200 frames decoded")
    beats = [b for b in worker.collect(2.5) if b["source"] == "up"]
    assert beats, worker.history[-3:]
    fps = [b["fps"] for b in beats]
    assert all(f <= 15.0 + 1e-6 for f in fps + [b["fps"] for b in worker.history]), fps
    assert all(14.0 <= f for f in fps), fps  # steady, looped file included


def test_a_capped_fast_read_reports_the_cap(start_worker, clip15):  # noqa: F811
    worker = start_worker(*run_args(str(clip15), "--no-pace", "--loop", "--max-fps", "5",
                                    "--heartbeat-interval", "0.5"))
    worker.wait_for(lambda b: b["decoded"] >= 200, 20, "200 frames decoded")
    fps = [b["fps"] for b in worker.collect(2.0)]
    assert fps and all(4.0 <= f <= 5.0 + 1e-6 for f in fps), fps


def test_a_live_15_fps_stream_never_reads_above_15_from_the_start(start_worker):  # noqa: F811
    with StreamServer(fps=15) as server:
        worker = start_worker(*run_args(server.url, "--heartbeat-interval", "0.5"))
        worker.wait_for(lambda b: b["source"] == "up" and b["decoded"] >= 45, 30, "3 s of frames")
        beats = worker.collect(2.0)
        everything = [b["fps"] for b in worker.history]
        assert max(everything) <= 15.0 + 1e-6, everything
        assert all(13.0 <= b["fps"] for b in beats), [b["fps"] for b in beats]
        worker.stop()
