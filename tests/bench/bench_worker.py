"""Worker throughput and memory at 720p against pure PyAV decoding of the same clip.

Run: ``python tests/bench/bench_worker.py [--seconds 40] [--fps 30] [--runs 5]``

1. writes a 1280x720 H.264 clip with PyAV/libx264;
2. baseline: decodes it in-process with PyAV (thread_type AUTO);
3. runs the real worker on it (``run --no-pace``: motion on every frame, preview
   slot at 10 fps, no fps cap) and reads its progress from its heartbeats;
4. prints, for both, frames/s (wall clock, first frame to last, start-up
   excluded) and CPU time per frame (less sensitive to a busy machine), the
   worker/PyAV ratios (target >= 0.95), and the worker's peak RSS (psutil
   polling and VmHWM; target <= 150 MB).

Runs alternate baseline and worker so both see the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from app.workerlink.launch import worker_command  # noqa: E402
from tests.support.clips import write_clip  # noqa: E402

RATIO_TARGET = 0.95
RSS_TARGET_MB = 150.0


@dataclass
class Run:
    fps: float  # frames per second, wall clock
    cpu_per_frame: float  # seconds of CPU (user + system, all threads) per frame
    frames: int
    peak_rss: int = 0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def pyav_decode(path: Path) -> Run:
    """Plain PyAV decode loop, timed from the first decoded frame to the last."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = 0
        first = last = cpu0 = 0.0
        for _frame in container.decode(stream):
            last = time.perf_counter()
            if frames == 0:
                first, cpu0 = last, _cpu(resource.RUSAGE_SELF)
            frames += 1
        cpu = _cpu(resource.RUSAGE_SELF) - cpu0
    return Run(fps=(frames - 1) / (last - first), cpu_per_frame=cpu / (frames - 1), frames=frames)


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_decode(path: Path, preview: Path) -> Run:
    """One worker run over *path*; rates from the heartbeat after its first frame to its end."""
    cmd = [
        *worker_command(), "run", "--camera-id", "1", "--source", str(path), "--no-pace",
        "--heartbeat-interval", "0.05", "--preview", str(preview), "--log-level", "WARNING",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), EDGE_STATION_WORKER="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    ps = psutil.Process(proc.pid)
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], ps.memory_info().rss, _vm_hwm(proc.pid))
            except psutil.Error:
                return
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    samples: list[tuple[dict, float]] = []  # (heartbeat, worker CPU seconds when it was read)
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            beat = json.loads(line)
            if beat["decoded"] > 0:
                try:
                    times = ps.cpu_times()
                except psutil.Error:  # already gone: the final heartbeat
                    break
                samples.append((beat, times.user + times.system))
    code = proc.wait(120)
    done.set()
    poller.join(5)
    if code != 0 or len(samples) < 3:
        raise SystemExit(f"worker exited with {code} after {len(samples)} heartbeats with frames")
    # From the first heartbeat with frames to the last one before the end of the
    # file: start-up and interpreter teardown are left out, as for the baseline.
    (first, cpu0), (last, cpu1) = samples[0], samples[-2]
    frames = last["decoded"] - first["decoded"]
    return Run(
        fps=frames / (last["ts"] - first["ts"]),
        cpu_per_frame=(cpu1 - cpu0) / frames,
        frames=samples[-1][0]["decoded"],
        peak_rss=peak[0],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    base: list[Run] = []
    work: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        t0 = time.perf_counter()
        clip = write_clip(tmp, width=1280, height=720, seconds=args.seconds, fps=args.fps)
        print(
            f"clip: {clip.name}, {clip.stat().st_size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tmp)
        preview = shm / f"bench-worker-{os.getpid()}.preview"
        try:
            for run in range(args.runs):
                b = pyav_decode(clip)
                w = worker_decode(clip, preview)
                if w.frames != b.frames:
                    raise SystemExit(f"worker decoded {w.frames} frames, PyAV {b.frames}")
                base.append(b)
                work.append(w)
                print(
                    f"run {run + 1}: PyAV {b.fps:7.1f} frames/s {b.cpu_per_frame * 1e3:5.2f} ms CPU/frame"
                    f"   worker {w.fps:7.1f} frames/s {w.cpu_per_frame * 1e3:5.2f} ms CPU/frame"
                    f"   peak RSS {w.peak_rss / 2**20:5.1f} MB"
                )
        finally:
            preview.unlink(missing_ok=True)

    fps_best = max(w.fps for w in work) / max(b.fps for b in base)
    fps_paired = statistics.median(w.fps / b.fps for w, b in zip(work, base, strict=True))
    cpu_best = min(b.cpu_per_frame for b in base) / min(w.cpu_per_frame for w in work)
    cpu_paired = statistics.median(
        b.cpu_per_frame / w.cpu_per_frame for w, b in zip(work, base, strict=True)
    )
    peak_rss = max(w.peak_rss for w in work) / 2**20

    def verdict(ok: bool) -> str:
        return "OK" if ok else "BELOW TARGET"

    print(f"decode throughput at 1280x720, {base[0].frames} frames, best of {args.runs}:")
    print(f"  PyAV in-process  {max(b.fps for b in base):8.1f} frames/s")
    print(
        f"  worker           {max(w.fps for w in work):8.1f} frames/s  (motion + preview, no cap)"
    )
    print(
        "ratios worker/PyAV (median of paired runs decides; a busy machine makes best-vs-best noisy):"
    )
    print(
        f"  frames/s:        median {fps_paired:.3f}, best vs best {fps_best:.3f}  "
        f"(target >= {RATIO_TARGET})  {verdict(fps_paired >= RATIO_TARGET)}"
    )
    print(
        f"  CPU efficiency:  median {cpu_paired:.3f}, best vs best {cpu_best:.3f}  "
        f"(PyAV CPU per frame / worker CPU per frame; target >= {RATIO_TARGET})  "
        f"{verdict(cpu_paired >= RATIO_TARGET)}"
    )
    print(
        f"worker peak RSS at 720p: {peak_rss:.1f} MB  (target <= {RSS_TARGET_MB:.0f} MB)  "
        f"{'OK' if peak_rss <= RSS_TARGET_MB else 'ABOVE TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
