"""Alert evidence: what the pre-roll buffer costs a worker, how fast a snapshot lands, how long a clip takes.

Run: ``python tests/bench/bench_evidence.py [--seconds 20] [--runs 3]``

1. **Pre-roll on against off** (same run, alternating): the real worker plays a 1280x720
   H.264 15 fps clip in real time, once with ``--preroll 0`` and once with ``--preroll 10``;
   CPU seconds per wall second over a steady window (start-up excluded) and RSS at its end.
   Targets: CPU ratio <= 1.05, RSS <= +30 MB. The same for a lavfi test pattern, whose raw
   frames MP4 cannot hold: its buffer is re-encoded (H.264 ultrafast), which costs more.
2. **Alert to snapshot on disk**: a real station, the same clip as a camera and a rule that
   fires; the time from the alert change reaching the recorder to the JPEG being on disk and
   listed, and the same for snapshots on demand (request -> file -> row).
3. **Clip write time against the clip's length**: with ``post=0`` the whole clip is the
   pre-roll already in memory, so the time is the remux itself (a copy per packet).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from app.workerlink.launch import worker_command  # noqa: E402
from tests.support.clips import write_clip  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

CPU_TARGET = 1.05
RSS_TARGET_MB = 30.0


def _worker(source: str, evidence_dir: Path, preroll: float) -> subprocess.Popen:
    env = {**os.environ, "EDGE_STATION_WORKER": "1", "EDGE_STATION_OWNER": "bench-evidence",
           "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [*worker_command(), "run", "--camera-id", "1", "--source", source, "--loop",
         "--evidence-dir", str(evidence_dir), "--preroll", f"{preroll:g}", "--preview", str(evidence_dir / "p.slot")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO_ROOT)


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def measure_worker(source: str, tmp: Path, preroll: float, seconds: float) -> tuple[float, float]:
    """(CPU seconds per second, RSS MB at the end) of a worker playing ``source`` in real time."""
    d = tmp / f"w-{preroll:g}-{time.monotonic_ns()}"
    d.mkdir()
    proc = _worker(source, d, preroll)
    lines: list[dict] = []
    threading.Thread(target=lambda: [lines.append(json.loads(x)) for x in proc.stdout], daemon=True).start()
    try:
        ps = psutil.Process(proc.pid)
        # warm up past start-up and a full pre-roll
        wait_for(lambda: lines and lines[-1].get("decoded", 0) > 15 * (preroll + 2), 30, "a full pre-roll",
                 interval=0.1)
        c0, t0 = _cpu(ps), time.monotonic()
        time.sleep(seconds)
        c1, t1 = _cpu(ps), time.monotonic()
        rss = ps.memory_info().rss / 1e6
        return (c1 - c0) / (t1 - t0), rss
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def clip_write_times(source: str, tmp: Path, lengths: list[float]) -> list[tuple[float, float, float]]:
    """(asked pre-roll, clip seconds, write seconds) with post=0: the remux of what is in memory."""
    d = tmp / "clips"
    d.mkdir()
    proc = _worker(source, d, max(lengths) + 2)
    answers: list[dict] = []
    beats: list[dict] = []

    def read() -> None:
        for line in proc.stdout:
            obj = json.loads(line)
            (beats if obj["type"] == "heartbeat" else answers).append(obj)

    threading.Thread(target=read, daemon=True).start()
    out = []
    try:
        wait_for(lambda: beats and beats[-1]["decoded"] > 15 * (max(lengths) + 3), 60, "a full pre-roll",
                 interval=0.1)
        for i, length in enumerate(lengths):
            req = {"id": f"c{i}", "kind": "clip", "pre": length, "post": 0, "dest": str(d / f"c{i}.mp4")}
            (d / f"c{i}.tmp").write_text(json.dumps(req))
            os.replace(d / f"c{i}.tmp", d / f"c{i}.req.json")
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGUSR1)
            wait_for(lambda i=i: any(a["id"] == f"c{i}" for a in answers), 30, f"clip c{i}", interval=0.005)
            wall = time.perf_counter() - t0
            a = next(a for a in answers if a["id"] == f"c{i}")
            assert a["ok"], a
            out.append((length, a["duration"], a["write_seconds"], wall, a["bytes"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return out


def snapshot_latency(clip: Path, tmp: Path, n: int) -> tuple[list[float], list[float]]:
    from app.domain import Camera
    from app.domain.operations import CameraRef
    from app.domain.rules import AlertRule, Comparator, TargetKind
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    st = Station(StationOptions(paths=resolve_paths(tmp / "station"), autostart=False, seed_demo=False))
    st.open()
    try:
        cam = st.parts().admin.add_camera(Camera(name="Bench", source=str(clip), loop=True))
        st.reload_cameras()
        st.call("start_camera", CameraRef(cam.id))
        wait_for(lambda: st.parts().supervisor.status(cam.id).decoded >= 30, 30, "30 decoded frames", interval=0.1)
        demand = []
        for _ in range(n):
            t0 = time.perf_counter()
            st.save_snapshot(cam.id)
            demand.append(time.perf_counter() - t0)
        st.set_settings({"evidence.clips": False}, actor="bench")
        alert = []
        for i in range(n):
            with st.parts().store.uow() as uow:
                rule = uow.rules.add(AlertRule(name=f"bench {i}", metric="fps", comparator=Comparator.GT,
                                               threshold=0.0, target=TargetKind.CAMERA, camera_id=cam.id).validated())
                uow.commit()
            before = len(st.parts().evidence_recorder.latencies)
            st.reload_cameras()
            wait_for(lambda n=before: len(st.parts().evidence_recorder.latencies) > n, 20, "the alert's snapshot",
                     interval=0.02)
            alert.append(st.parts().evidence_recorder.latencies[before])
            st.parts().admin.set_rule_enabled(rule.id, False)  # resolves it (its resolution snapshot is not counted)
            st.reload_cameras()
            wait_for(lambda n=before + 1: len(st.parts().evidence_recorder.latencies) > n, 20, "the resolution's snapshot",
                     interval=0.02)
        return demand, alert
    finally:
        st.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per worker run")
    ap.add_argument("--runs", type=int, default=3, help="alternating off/on pairs")
    ap.add_argument("--snapshots", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp_s:
        tmp = Path(tmp_s)
        clip = write_clip(tmp, width=1280, height=720, seconds=60, fps=15)
        off, on = [], []
        for _ in range(args.runs):
            off.append(measure_worker(str(clip), tmp, 0.0, args.seconds))
            on.append(measure_worker(str(clip), tmp, 10.0, args.seconds))
        cpu_off = statistics.median(c for c, _ in off)
        cpu_on = statistics.median(c for c, _ in on)
        rss_off = statistics.median(r for _, r in off)
        rss_on = statistics.median(r for _, r in on)
        print("== pre-roll buffer, 1280x720 H.264 15 fps, real time")
        print(f"CPU  off {cpu_off * 100:.1f} %  on {cpu_on * 100:.1f} %  ratio {cpu_on / cpu_off:.3f} "
              f"(target <= {CPU_TARGET})  runs off {[round(c * 100, 1) for c, _ in off]} "
              f"on {[round(c * 100, 1) for c, _ in on]}")
        print(f"RSS  off {rss_off:.1f} MB  on {rss_on:.1f} MB  delta {rss_on - rss_off:+.1f} MB "
              f"(target <= +{RSS_TARGET_MB:g} MB)")

        raw = "test://moving?size=640x360&rate=15"
        roff = [measure_worker(raw, tmp, 0.0, args.seconds) for _ in range(1)]
        ron = [measure_worker(raw, tmp, 10.0, args.seconds) for _ in range(1)]
        print("== pre-roll buffer, a 640x360 15 fps lavfi pattern (raw frames: re-encoded into the buffer)")
        print(f"CPU  off {roff[0][0] * 100:.1f} %  on {ron[0][0] * 100:.1f} %  ratio {ron[0][0] / roff[0][0]:.3f}; "
              f"RSS off {roff[0][1]:.1f} MB  on {ron[0][1]:.1f} MB  delta {ron[0][1] - roff[0][1]:+.1f} MB")

        print("== clip write time (post=0: the remux of the pre-roll in memory)")
        for asked, dur, write_s, wall, size in clip_write_times(str(clip), tmp, [2.0, 5.0, 10.0]):
            print(f"pre {asked:4.1f} s -> clip {dur:5.2f} s, {size / 1e6:5.2f} MB: written in {write_s * 1000:6.1f} ms "
                  f"({write_s / max(dur, 1e-9) * 1000:.1f} ms per clip second; request to answer {wall * 1000:.1f} ms)")

        demand, alert = snapshot_latency(clip, tmp, args.snapshots)
        print("== snapshot on disk (1280x720 JPEG)")
        print(f"on demand: median {statistics.median(demand) * 1000:.1f} ms, max {max(demand) * 1000:.1f} ms "
              f"(n={len(demand)})")
        print(f"alert -> snapshot listed: median {statistics.median(alert) * 1000:.1f} ms, "
              f"max {max(alert) * 1000:.1f} ms (n={len(alert)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
