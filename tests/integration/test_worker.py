"""The camera worker as a real process: heartbeats, motion, fps cap, preview slot,
exit codes, signals, files, a live HTTP source that vanishes, probe, parent death."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from app.workerlink.launch import worker_command
from app.workerlink.preview import PreviewReader
from tests.support.clips import write_clip
from tests.support.stream_server import StreamServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_KEYS = {
    "type": str, "ts": float, "camera_id": int, "fps": float, "decoded": int, "dropped": int,
    "motion": float, "motion_active": bool, "source": str, "last_frame_age": (float, type(None)),
    "width": (int, type(None)), "height": (int, type(None)), "codec": (str, type(None)),
    "preview_seq": int, "reconnects": int, "error": (str, type(None)),
}  # fmt: skip

Beat = dict[str, Any]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(EDGE_STATION_WORKER="1", EDGE_STATION_OWNER="test-owner")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Worker:
    """A worker process with its stdout parsed into heartbeats on a queue."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*worker_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=REPO_ROOT,
        )
        self.beats: queue.Queue[Beat] = queue.Queue()
        self.history: list[Beat] = []
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self.beats.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def next_beat(self, timeout: float) -> Beat | None:
        try:
            beat = self.beats.get(timeout=timeout)
        except queue.Empty:
            return None
        self.history.append(beat)
        return beat

    def wait_for(self, predicate: Callable[[Beat], bool], timeout: float, what: str) -> Beat:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            beat = self.next_beat(min(left, 0.5))
            if beat is not None and predicate(beat):
                return beat
            if beat is None and self.proc.poll() is not None and self.beats.empty():
                break
        raise AssertionError(
            f"no heartbeat with {what} within {timeout} s (exit code {self.proc.poll()}); "
            f"last beats: {self.history[-3:]}; stderr: {self.stderr_lines[-10:]}"
        )

    def collect(self, seconds: float) -> list[Beat]:
        deadline = time.monotonic() + seconds
        got = []
        while (left := deadline - time.monotonic()) > 0:
            beat = self.next_beat(left)
            if beat is not None:
                got.append(beat)
        return got

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._close()
        while self.next_beat(0) is not None:
            pass
        return code

    def _close(self) -> None:
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(*args: str) -> Worker:
        worker = Worker(*args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def run_args(source: str, *extra: str, camera_id: int = 7) -> list[str]:
    return ["run", "--camera-id", str(camera_id), "--source", source, *extra]


def up_with_frames(beat: Beat) -> bool:
    return beat["source"] == "up" and beat["fps"] > 0


# -- heartbeats, motion, fps cap ----------------------------------------------


def test_heartbeats_follow_the_contract_schema_and_report_fps(start_worker):
    worker = start_worker(*run_args("test://moving", "--heartbeat-interval", "0.5"))
    first = worker.wait_for(lambda b: True, 3, "anything")
    assert first["source"] in ("opening", "up")
    beat = worker.wait_for(up_with_frames, 5, "source up and fps > 0")
    for key, kind in HEARTBEAT_KEYS.items():
        assert isinstance(beat[key], kind), f"{key}={beat[key]!r} is not {kind}"
    assert set(beat) == set(HEARTBEAT_KEYS)
    assert beat["type"] == "heartbeat" and beat["camera_id"] == 7
    assert abs(beat["ts"] - time.time()) < 5
    assert (beat["width"], beat["height"], beat["codec"]) == (640, 360, "rawvideo")
    assert beat["decoded"] > 0 and beat["error"] is None and 0 <= beat["last_frame_age"] < 1
    steady = worker.wait_for(lambda b: b["decoded"] >= 30, 5, "30 frames decoded")
    assert 10 <= steady["fps"] <= 20  # test patterns play at their own rate (15)
    assert all(
        line.split(" ", 1)[0] in {"DEBUG", "INFO", "WARNING", "ERROR"}
        for line in worker.stderr_lines
    )


def test_motion_on_moving_pattern_and_none_on_still(start_worker):
    moving = start_worker(
        *run_args("test://moving", "--motion-warmup", "5", "--heartbeat-interval", "0.5")
    )
    still = start_worker(
        *run_args("test://still", "--motion-warmup", "5", "--heartbeat-interval", "0.5")
    )
    for worker in (moving, still):
        worker.wait_for(lambda b: b["decoded"] >= 10, 8, "warm-up done")
    moving_beats = moving.collect(3.0)
    still_beats = still.collect(0.5)
    assert len(moving_beats) >= 4 and len(still_beats) >= 1
    assert sum(b["motion_active"] for b in moving_beats) >= len(moving_beats) - 1
    assert max(b["motion"] for b in moving_beats) >= 0.02
    assert all(b["motion"] == 0.0 and not b["motion_active"] for b in still_beats + still.history)


def test_max_fps_caps_analysis_and_counts_drops(start_worker):
    worker = start_worker(*run_args("test://moving?rate=30&size=320x180", "--max-fps", "5"))
    worker.wait_for(lambda b: b["decoded"] >= 30, 8, "30 frames decoded")
    beats = worker.collect(3.2)
    last = beats[-1]
    assert last["dropped"] > 0
    ratio = last["dropped"] / last["decoded"]
    assert 0.7 <= ratio <= 0.9, f"dropped {last['dropped']} of {last['decoded']}"  # 25 of 30
    steady = [b["fps"] for b in beats[1:]]
    assert all(3.5 <= fps <= 6.5 for fps in steady), steady


# -- preview -----------------------------------------------------------------


def test_preview_reader_sees_increasing_frames_of_the_colour_bars(start_worker, tmp_path):
    path = tmp_path / "cam7.preview"
    worker = start_worker(
        *run_args("test://still", "--preview", str(path), "--preview-width", "320")
    )
    with PreviewReader(path) as reader:
        frames = []
        deadline = time.monotonic() + 8
        while len(frames) < 3 and time.monotonic() < deadline:
            got = reader.read()  # a reader that reads wants frames: the worker publishes them
            if got is not None and (not frames or got.seq > frames[-1].seq):
                frames.append(got)
            time.sleep(0.03)
        assert len(frames) == 3, f"stderr: {worker.stderr_lines[-10:]}"
        assert frames[0].seq < frames[1].seq < frames[2].seq
        assert all(f.seq % 2 == 0 for f in frames)
        assert frames[-1].image.shape == (180, 320, 4) and (frames[-1].image[..., 3] == 255).all()
        img = frames[-1].rgb()
        assert img.shape == (180, 320, 3) and img.dtype == np.uint8
        assert abs(frames[-1].ts - time.time()) < 5
        # SMPTE bars, top row, left to right: grey, yellow, cyan, green, magenta, red, blue.
        bar = lambda i: img[40, int((i + 0.5) * 320 / 7)].astype(int)  # noqa: E731
        grey, yellow, cyan, green, magenta, red, blue = (bar(i) for i in range(7))
        assert grey.min() > 150 and np.ptp(grey) < 20
        assert yellow[0] > 150 and yellow[1] > 150 and yellow[2] < 60
        assert cyan[0] < 60 and cyan[1] > 150 and cyan[2] > 150
        assert red[0] > 150 and red[1] < 60 and red[2] < 60
        assert blue[2] > 150 and blue[0] < 60
        del green, magenta
        # The rate limit holds while the reader keeps reading: at most --preview-fps (10) a second.
        seq0, t0 = frames[-1].seq, time.monotonic()
        last = frames[-1]
        while time.monotonic() - t0 < 2.0:
            got = reader.read()
            if got is not None:
                last = got
            time.sleep(0.02)
        per_second = (last.seq - seq0) / 2 / (time.monotonic() - t0)
    assert 5 <= per_second <= 11


def _steady_seq(worker: Worker, beats: int, timeout: float, what: str, min_seq: int = 0) -> Beat:
    """Wait for *beats* heartbeats in a row with frames decoded and preview_seq unchanged
    (and at least *min_seq*)."""
    run: list[Beat] = []

    def steady(beat: Beat) -> bool:
        if beat["preview_seq"] < min_seq:
            run.clear()
            return False
        if run and (beat["preview_seq"] != run[-1]["preview_seq"] or beat["decoded"] <= run[-1]["decoded"]):
            run.clear()
        run.append(beat)
        return len(run) >= beats

    return worker.wait_for(steady, timeout, what)


def test_previews_follow_a_readers_interest(start_worker, tmp_path):
    """No reader: heartbeats pass, frames are decoded, the slot's seq stays 0. A reader that marks
    interest gets frames; when its interest lapses, the worker stops writing."""
    path = tmp_path / "cam7.preview"
    worker = start_worker(*run_args("test://moving?rate=30&size=320x180", "--preview", str(path),
                                    "--heartbeat-interval", "0.2"))
    nobody = _steady_seq(worker, 5, 10, "five beats with frames and no preview written")
    assert nobody["preview_seq"] == 0 and nobody["decoded"] > 0
    with PreviewReader(path) as reader:
        assert reader.seq == 0 and reader.interested_until() == 0
        assert reader.mark_interest(hold=0.6)
        assert reader.interested_until() > time.monotonic_ns()
        wanted = wait_for(lambda: reader.mark_interest(hold=0.6) and reader.seq >= 6, 5,
                          "three preview frames while interest is marked")
        assert wanted
        frame = reader.read()  # read() marks interest too (with the default hold)
        assert frame is not None and frame.width == 320
    # Nobody marks interest any more: within the hold, the seq stops moving while frames go on.
    stopped = _steady_seq(worker, 5, 10, "the preview stopping once interest lapsed", min_seq=6)
    assert stopped["preview_seq"] >= 6
    later = _steady_seq(worker, 3, 5, "the preview still stopped")
    assert later["preview_seq"] == stopped["preview_seq"]
    assert later["decoded"] > stopped["decoded"]


# -- configuration errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (run_args("ftp://cam/x"), "unsupported source URL scheme 'ftp://'"),
        (run_args("/no/such/clip.mp4"), "video file not found: /no/such/clip.mp4"),
        (run_args("test://disco"), "unknown test pattern 'disco'"),
        (
            run_args("test://moving", "--max-fps", "-3"),
            "argument --max-fps: '-3' must be a number >= 0",
        ),
        (["run", "--source", "test://moving"], "the following arguments are required: --camera-id"),
        (
            run_args("test://moving", "--preview", "/no/such/dir/p"),
            "preview directory does not exist",
        ),
    ],
)
def test_configuration_errors_exit_78_with_one_clear_line(start_worker, args, message):
    worker = start_worker(*args)
    assert worker.wait_exit(10) == 78
    assert worker.stdout_lines == []
    assert len(worker.stderr_lines) == 1, worker.stderr_lines
    assert worker.stderr_lines[0].startswith("ERROR configuration error: ")
    assert message in worker.stderr_lines[0]


def test_file_that_is_not_a_video_exits_78(start_worker, tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video\n" * 100)
    worker = start_worker(*run_args(str(bogus)))
    assert worker.wait_exit(10) == 78
    assert any("configuration error: cannot open" in line for line in worker.stderr_lines)


# -- signals -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_within_one_second(start_worker, sig):
    worker = start_worker(*run_args("test://moving"))
    worker.wait_for(up_with_frames, 8, "frames flowing")
    t0 = time.monotonic()
    worker.proc.send_signal(sig)
    code = worker.wait_exit(5)
    elapsed = time.monotonic() - t0
    assert code == 0
    assert elapsed < 1.0, f"took {elapsed:.2f} s"


def test_sigterm_while_blocked_opening_a_silent_server_still_exits_within_one_second(start_worker):
    # A server that accepts the TCP connection and then says nothing.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        worker = start_worker(
            *run_args(f"http://127.0.0.1:{port}/live.ts", "--stall-timeout", "60")
        )
        worker.wait_for(lambda b: b["source"] == "opening", 5, "opening")
        conn, _ = silent.accept()  # the worker is now inside FFmpeg's open
        with conn:
            # Heartbeats keep coming while the open is blocked.
            beats = [worker.wait_for(lambda b: True, 2.5, "a heartbeat") for _ in range(2)]
            assert all(b["source"] == "opening" and b["decoded"] == 0 for b in beats)
            assert worker.proc.poll() is None
            t0 = time.monotonic()
            worker.proc.terminate()
            code = worker.wait_exit(5)
            elapsed = time.monotonic() - t0
    assert code == 0
    assert elapsed < 1.0, f"took {elapsed:.2f} s"


# -- files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips"), width=320, height=180, seconds=1.0, fps=15)


def test_file_without_loop_exits_0_at_its_end(start_worker, clip):
    worker = start_worker(*run_args(str(clip), "--heartbeat-interval", "0.25"))
    assert worker.wait_exit(10) == 0
    last = worker.history[-1]
    assert last["decoded"] == 15 and last["codec"] == "h264"
    assert (last["width"], last["height"]) == (320, 180)


def test_file_with_loop_keeps_playing(start_worker, clip):
    worker = start_worker(*run_args(str(clip), "--loop", "--heartbeat-interval", "0.5"))
    beat = worker.wait_for(lambda b: b["decoded"] > 40, 8, "more frames than the clip holds")
    assert worker.proc.poll() is None
    assert beat["source"] == "up" and beat["reconnects"] == 0


# -- a network source that vanishes and returns ------------------------------


def test_http_source_down_then_back_up_without_restarting_the_process(start_worker):
    server = StreamServer(width=320, height=180, fps=15).start()
    try:
        worker = start_worker(
            *run_args(server.url, "--heartbeat-interval", "0.5", "--stall-timeout", "4")
        )
        up = worker.wait_for(up_with_frames, 15, "stream up")
        assert up["codec"] == "h264" and (up["width"], up["height"]) == (320, 180)
        pid = worker.proc.pid

        server.stop()
        down = worker.wait_for(lambda b: b["source"] == "down", 10, "source down")
        assert down["error"]
        refused = worker.wait_for(
            lambda b: "Connection refused" in (b["error"] or ""), 5, "refused"
        )
        assert refused["fps"] == 0.0
        worker.wait_for(lambda b: b["source"] == "down" and b["ts"] >= refused["ts"] + 0.5, 5,
                        "a later heartbeat while down")  # it keeps running and reporting
        assert worker.proc.poll() is None

        server.start()
        back = worker.wait_for(
            lambda b: up_with_frames(b) and b["reconnects"] >= 1, 20, "stream back up"
        )
        assert back["decoded"] > up["decoded"] and back["error"] is None
        assert worker.proc.pid == pid and worker.proc.poll() is None
        assert server.clients_served >= 2
    finally:
        server.stop()


def test_stalled_http_source_times_out_to_down_and_recovers(start_worker):
    server = StreamServer(width=320, height=180, fps=15).start()
    try:
        # stall-timeout 2 s → the worker's read timeout is 1 s, below the
        # supervisor's stall limit, so the worker reports "down" first.
        worker = start_worker(
            *run_args(server.url, "--heartbeat-interval", "0.25", "--stall-timeout", "2")
        )
        worker.wait_for(up_with_frames, 15, "stream up")
        server.pause()
        t0 = time.monotonic()
        down = worker.wait_for(lambda b: b["source"] == "down", 5, "source down after the stall")
        assert time.monotonic() - t0 < 3.0
        assert "timed out" in down["error"]
        worker.wait_for(
            lambda b: b["source"] == "down" and b["last_frame_age"] >= 1.0, 3, "frames aging"
        )
        assert worker.proc.poll() is None
        server.resume()
        back = worker.wait_for(
            lambda b: up_with_frames(b) and b["reconnects"] >= 1, 20, "stream back up"
        )
        assert back["last_frame_age"] < 1.0
    finally:
        server.stop()


def test_unreachable_source_is_reported_down_and_retried(start_worker):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = start_worker(
        *run_args(f"rtsp://user:pw@127.0.0.1:{port}/live", "--heartbeat-interval", "0.5")
    )
    beat = worker.wait_for(lambda b: b["source"] == "down", 5, "source down")
    assert "Connection refused" in beat["error"] and "pw" not in beat["error"]
    worker.wait_for(lambda b: b["source"] == "down" and b["ts"] >= beat["ts"] + 1.0, 5,
                    "a heartbeat a second later, still down")  # retried, not given up
    assert worker.proc.poll() is None
    assert not any(":pw@" in line for line in worker.stderr_lines)


# -- probe -------------------------------------------------------------------


def probe(*args: str, timeout: float = 20) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [*worker_command(), "probe", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out
    return out.returncode, json.loads(lines[0])


def test_probe_a_clip(clip):
    code, result = probe(str(clip))
    assert code == 0
    assert result == {
        "ok": True, "codec": "h264", "width": 320, "height": 180, "fps": 15.0,
        "pix_fmt": "yuv420p", "duration": pytest.approx(1.0, abs=0.1),
    }  # fmt: skip


def test_probe_failures_are_precise():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, result = probe(f"http://127.0.0.1:{port}/cam.ts", "--timeout", "3")
    assert code == 1
    assert result == {
        "ok": False,
        "error": f"cannot open http://127.0.0.1:{port}/cam.ts: Connection refused",
    }
    code, result = probe("/no/such/clip.mp4")
    assert (code, result) == (1, {"ok": False, "error": "video file not found: /no/such/clip.mp4"})
    code, result = probe("gopher://cam/x")
    assert code == 78 and result["ok"] is False
    assert result["error"].startswith("unsupported source URL scheme 'gopher://'")


def test_probe_gives_up_at_its_timeout_on_a_silent_server():
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        code, result = probe(f"http://127.0.0.1:{port}/cam.ts", "--timeout", "1")
        elapsed = time.monotonic() - t0
    assert code == 1 and result["ok"] is False
    assert "timed out" in result["error"]
    assert elapsed < 5


# -- dies with its parent ----------------------------------------------------

_PARENT = """
import subprocess, sys
worker = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
print(worker.pid, flush=True)
for line in worker.stderr:
    if "started" in line:
        print("started", flush=True)
worker.wait()
"""


def test_worker_dies_when_its_parent_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, *worker_command(), *run_args("test://moving")],
        stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO_ROOT,
    )  # fmt: skip
    worker_pid = None
    try:
        assert parent.stdout is not None
        worker_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "started"
        worker = psutil.Process(worker_pid)
        assert worker.ppid() == parent.pid
        parent.kill()
        parent.wait(5)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and _alive(worker_pid):
            time.sleep(0.02)
        assert not _alive(worker_pid), "the worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        if parent.stdout is not None:
            parent.stdout.close()
        if worker_pid is not None and _alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_works_even_when_nobody_reads_the_output(tmp_path):
    """A hung supervisor fills the worker's stdout pipe; the worker must not block on it."""
    proc = subprocess.Popen(
        [*worker_command(), *run_args("test://moving", "--heartbeat-interval", "0.005")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        # ~300-byte heartbeats at 200/s fill a 64 KB pipe in about a second.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.25)
            if _pipe_fill(fd) >= 60_000:
                break
        assert _pipe_fill(fd) >= 60_000, "the pipe did not fill up"
        # The worker goes on (dropping heartbeats, not blocked on the pipe): it keeps using CPU.
        worker_ps = psutil.Process(proc.pid)
        used = sum(worker_ps.cpu_times()[:2])
        wait_for(lambda: sum(worker_ps.cpu_times()[:2]) >= used + 0.05, 5, "the worker to keep running")
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.terminate()
        code = proc.wait(5)
        elapsed = time.monotonic() - t0
        assert code == 0
        assert elapsed < 1.0, f"took {elapsed:.2f} s"
        first = proc.stdout.readline()
        assert json.loads(first)["type"] == "heartbeat"  # what was written is whole
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _pipe_fill(fd: int) -> int:
    import array
    import fcntl
    import termios

    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def test_http_404_is_reported_precisely_by_probe_and_run(start_worker):
    with StreamServer() as server:
        missing = server.url.replace("/stream.ts", "/nope.ts")
        code, result = probe(missing, "--timeout", "3")
        assert code == 1
        assert result == {
            "ok": False,
            "error": f"cannot open {missing}: Server returned 404 Not Found",
        }
        worker = start_worker(*run_args(missing, "--heartbeat-interval", "0.25"))
        beat = worker.wait_for(lambda b: b["source"] == "down", 5, "source down")
        assert beat["error"] == f"cannot open {missing}: Server returned 404 Not Found"
        code, result = probe(server.url, "--timeout", "5")
        assert code == 0 and result["codec"] == "h264" and result["duration"] is None
