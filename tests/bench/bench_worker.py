"""Worker throughput and memory at 720p against pure PyAV decoding of the same clip.

Run: ``python tests/bench/bench_worker.py [--seconds 20] [--fps 30] [--runs 3]``

1. writes a 1280x720 H.264 clip with PyAV/libx264;
2. baseline: decodes it in-process with PyAV (thread_type AUTO), best of N runs;
3. runs the real worker on it (``run --no-pace``, motion on every frame, preview
   slot at 10 fps, no fps cap) and measures its decode rate from its heartbeats
   (decoded-count delta over heartbeat timestamps, so interpreter start-up is not
   counted), best of N runs, plus its peak RSS (psutil polling and VmHWM);
4. prints the ratio worker/baseline (target >= 0.95) and the peak RSS (target <= 150 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from app.worker.launch import worker_command  # noqa: E402
from tests.support.clips import write_clip  # noqa: E402

RATIO_TARGET = 0.95
RSS_TARGET_MB = 150.0


def pyav_decode_rate(path: Path) -> tuple[float, int]:
    """Frames per second of a plain PyAV decode loop over *path*."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t0 = time.perf_counter()
        frames = sum(1 for _ in container.decode(stream))
        elapsed = time.perf_counter() - t0
    return frames / elapsed, frames


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_decode_rate(path: Path, preview: Path) -> tuple[float, int, int]:
    """(frames/s while decoding, frames decoded, peak RSS bytes) of one worker run."""
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
    beats = []
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            beats.append(json.loads(line))
    code = proc.wait(120)
    done.set()
    poller.join(5)
    if code != 0:
        raise SystemExit(f"worker exited with {code}")
    first = next(b for b in beats if b["decoded"] > 0)
    last = beats[-1]
    rate = (last["decoded"] - first["decoded"]) / (last["ts"] - first["ts"])
    return rate, last["decoded"], peak[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        t0 = time.perf_counter()
        clip = write_clip(tmp, width=1280, height=720, seconds=args.seconds, fps=args.fps)
        print(
            f"clip: {clip.name}, {clip.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s"
        )
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tmp)
        preview = shm / f"bench-worker-{os.getpid()}.preview"
        try:
            base = []
            work = []
            for run in range(args.runs):  # interleave so both see the same machine state
                rate, frames = pyav_decode_rate(clip)
                base.append(rate)
                wrate, wframes, rss = worker_decode_rate(clip, preview)
                work.append((wrate, rss))
                if wframes != frames:
                    raise SystemExit(f"worker decoded {wframes} frames, PyAV {frames}")
                print(
                    f"run {run + 1}: PyAV {rate:7.1f} frames/s   worker {wrate:7.1f} frames/s   "
                    f"worker peak RSS {rss / 2**20:6.1f} MB"
                )
        finally:
            preview.unlink(missing_ok=True)
    best_base = max(base)
    best_work = max(w for w, _ in work)
    peak_rss = max(r for _, r in work) / 2**20
    ratio = best_work / best_base
    paired = statistics.median(w / b for (w, _), b in zip(work, base, strict=True))
    print(f"PyAV decode (baseline, best of {args.runs}): {best_base:.1f} frames/s at 1280x720")
    print(f"worker (motion + preview, no cap, best of {args.runs}): {best_work:.1f} frames/s")
    print(
        f"ratio worker/PyAV, best vs best: {ratio:.3f}; median of paired runs: {paired:.3f}  "
        f"(target >= {RATIO_TARGET})  {'OK' if min(ratio, paired) >= RATIO_TARGET else 'BELOW TARGET'}"
    )
    print(
        f"worker peak RSS at 720p: {peak_rss:.1f} MB  (target <= {RSS_TARGET_MB:.0f} MB)  "
        f"{'OK' if peak_rss <= RSS_TARGET_MB else 'ABOVE TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
