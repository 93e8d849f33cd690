"""Capacity benchmark: how many cameras a core carries, and how the cost grows with cameras.

    .venv/bin/python tests/bench/bench_capacity.py [--part clips|growth|all] [--clip-workers 4]
        [--growth-n 1,2,4,8,16,32,64] [--rounds 2]
    BENCH_QUICK=1: shorter windows, growth only up to 8 cameras.
    BENCH_LOCK=/tmp/cpu.lock: hold that lock (flock) around each measured step only, so a
    shared machine can run other heavy things between the steps.

Everything runs under the station's supervisor in a process of its own
(tests/bench/supervisor_driver.py, built as the station builds it), with no preview reader
attached (nobody reads the preview slots, as with no window open). CPU is measured from
outside with psutil over the supervisor process and all its descendants (user + system time
over a window after a warm-up), in % of one core; the supervisor process's own share is
reported apart.

(a) clips: a 720p30 H.264 clip the bench makes with PyAV/libx264 (FFmpeg's testsrc2 pattern with
    temporal noise, about 4 Mbit/s, a key frame a second, no B-frames: what IP cameras send),
    looped by --clip-workers workers analysing at 15 fps (max_fps 15). Baseline in the same run,
    observed the same way: as many bare PyAV decoders of the same clip (decode every frame at
    the clip's real-time pace, nothing else: the floor any worker pays for H.264). Rounds
    alternate the order of the two. Output: per-camera cost, supervisor share, cameras per
    core (100 % / (per-camera cost + supervisor share per camera)), ratio worker / bare decode.
(b) growth: N workers on test-pattern sources (test://moving, 640x360 at 15 fps, max_fps 15:
    the demo camera) for N in --growth-n; each N measured in --rounds rounds (the order of N
    reversed every other round), two windows each. Output: total CPU per N (median, min-max),
    the least-squares fit total = a + b*N with its residuals.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.waiting import wait_for  # noqa: E402

DRIVER = REPO / "tests" / "bench" / "supervisor_driver.py"
QUICK = os.environ.get("BENCH_QUICK") == "1"
LOCK = os.environ.get("BENCH_LOCK")
CLIP_SECONDS = 20
CLIP_FPS = 30
ANALYSIS_FPS = 15.0
KEPT_UP_FPS = 14.5  # a worker reporting less fell behind its 15 fps: the machine was saturated
SATURATED = 0.9  # ... as it is when the machine's cores are this busy (the measured tree + the rest)

BARE_DECODER = r"""
import sys, time, av
path = sys.argv[1]
print("ready", flush=True)
while True:
    with av.open(path) as c:
        s = c.streams.video[0]
        tb = float(s.time_base)
        t0 = None
        for f in c.decode(s):
            pts = float(f.pts) * tb
            now = time.monotonic()
            if t0 is None:
                t0 = now - pts
            delay = t0 + pts - now
            if delay > 0:
                time.sleep(delay)
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


@contextlib.contextmanager
def heavy_step() -> Iterator[None]:
    """Hold BENCH_LOCK (when given) for one measured step."""
    if not LOCK:
        yield
        return
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)




# --------------------------------------------------------------------- the clip


def make_clip(path: Path, seconds: int = CLIP_SECONDS) -> dict[str, float]:
    import av

    src = f"testsrc2=size=1280x720:rate={CLIP_FPS}:duration={seconds},noise=alls=10:allf=t,format=yuv420p"
    with av.open(src, format="lavfi") as inp, av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=CLIP_FPS)
        st.width, st.height, st.pix_fmt = 1280, 720, "yuv420p"
        st.bit_rate = 4_000_000
        st.options = {"preset": "veryfast", "g": str(CLIP_FPS), "bf": "0", "maxrate": "4M", "bufsize": "8M"}
        for frame in inp.decode(video=0):
            frame.pts = None
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.demux(v) if _.size)
        return {"width": v.codec_context.width, "height": v.codec_context.height,
                "fps": float(v.average_rate or 0), "frames": frames,
                "mbps": path.stat().st_size * 8 / seconds / 1e6, "codec": v.codec_context.name}


# --------------------------------------------------------------------- measuring a process tree


def tree(root: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(root)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_of(procs: Sequence[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def machine_busy() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def window(roots: Sequence[int], seconds: float, own: int | None = None) -> dict[str, float]:
    """CPU % of one core over ``seconds``: the trees of ``roots`` together, ``own`` alone, the rest."""
    procs = [p for r in roots for p in tree(r)]
    c0, m0, w0 = cpu_of(procs), machine_busy(), time.monotonic()
    time.sleep(seconds)  # the measured window itself
    c1, m1, w1 = cpu_of(procs), machine_busy(), time.monotonic()
    wall = w1 - w0
    total = sum(c1[p] - c0[p] for p in c1 if p in c0)
    own_cpu = (c1.get(own, 0.0) - c0.get(own, 0.0)) if own is not None else 0.0
    return {"total": 100 * total / wall, "own": 100 * own_cpu / wall,
            "others": 100 * ((m1 - m0) - total) / wall}


# --------------------------------------------------------------------- the station's supervisor


class Station:
    """The supervisor driver with N workers; ``status()`` reads their last heartbeats."""

    def __init__(self, tmp: Path, specs: list[dict[str, object]]) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "specs.json").write_text(json.dumps(specs))
        self.err = open(tmp / "driver.err", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(tmp / "run"), str(tmp / "logs"), str(tmp / "specs.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=child_env(), text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the supervisor driver did not start: see {tmp / 'driver.err'}")
        self.n = len(specs)

    def status(self) -> dict[str, dict[str, object]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("status\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def wait_all_running(self, timeout: float) -> None:
        def ok() -> bool:
            st = self.status()
            return len(st) == self.n and all(s["state"] == "running" and (s["fps"] or 0) > 0
                                             for s in st.values())
        wait_for(ok, timeout, f"{self.n} workers running")

    def fps(self) -> list[float]:
        return [float(s["fps"] or 0.0) for s in self.status().values()]

    def close(self) -> None:
        kids = tree(self.proc.pid)[1:]
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()
        self.err.close()


class BareDecoders:
    def __init__(self, clip: Path, n: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", BARE_DECODER, str(clip)], stdout=subprocess.PIPE,
                                       text=True, env=child_env()) for _ in range(n)]
        for p in self.procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a bare decoder did not start")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait(10)


# --------------------------------------------------------------------- (a) clips


def clips_part(tmp: Path, workers: int, rounds: int, warm: float, win: float, windows: int) -> None:
    clip = tmp / "cam720p30.mp4"
    with heavy_step():
        info = make_clip(clip)
    print(f"\n(a) clips: {clip.name}: {info['codec']} {info['width']}x{info['height']} at {info['fps']:g} fps, "
          f"{info['frames']} frames, {info['mbps']:.2f} Mbit/s; {workers} workers at max_fps {ANALYSIS_FPS:g} "
          f"(looped), {rounds} rounds x {windows} windows of {win:g} s after {warm:g} s warm-up", flush=True)
    specs = [dict(camera_id=i, name=f"cam{i}", source=str(clip), loop=True, max_fps=ANALYSIS_FPS)
             for i in range(1, workers + 1)]
    worker_cost: list[float] = []  # % of a core per worker (workers only)
    sup_share: list[float] = []  # % of a core, the supervisor process
    bare_cost: list[float] = []  # % of a core per bare decoder
    others: list[float] = []
    fps_seen: list[float] = []
    for r in range(rounds):
        for kind in (("station", "bare") if r % 2 == 0 else ("bare", "station")):
            with heavy_step():
                if kind == "station":
                    st = Station(tmp / f"clips-{r}", specs)
                    try:
                        st.wait_all_running(120)
                        time.sleep(warm)  # warm-up: past start-up and the first key frames
                        for _ in range(windows):
                            w = window([st.proc.pid], win, own=st.proc.pid)
                            worker_cost.append((w["total"] - w["own"]) / workers)
                            sup_share.append(w["own"])
                            others.append(w["others"])
                        fps_seen += st.fps()
                    finally:
                        st.close()
                else:
                    bd = BareDecoders(clip, workers)
                    try:
                        time.sleep(warm)
                        for _ in range(windows):
                            w = window([p.pid for p in bd.procs], win)
                            bare_cost.append(w["total"] / workers)
                            others.append(w["others"])
                    finally:
                        bd.close()
    per_cam = statistics.median(worker_cost) + statistics.median(sup_share) / workers
    print(f"   worker (720p30 H.264, 15 fps analysis) : {fmt(worker_cost)} % of a core each")
    print(f"   bare PyAV decode of the clip (baseline): {fmt(bare_cost)} % of a core each")
    print(f"   ratio worker / bare decode (medians)   : {statistics.median(worker_cost) / statistics.median(bare_cost):.3f}")
    print(f"   supervisor process ({workers} workers)     : {fmt(sup_share)} % of a core")
    print(f"   workers' reported analysis fps         : median {statistics.median(fps_seen):.2f}, "
          f"min-max {min(fps_seen):.2f}-{max(fps_seen):.2f}")
    print(f"   per camera incl. supervisor share      : {per_cam:.2f} % of a core -> "
          f"{100 / per_cam:.1f} cameras per core ({100 * (os.cpu_count() or 1) / per_cam:.1f} on "
          f"{os.cpu_count()} cores, with nothing else running)")
    print(f"   the rest of the machine meanwhile      : {fmt(others)} % of a core (other processes)", flush=True)


# --------------------------------------------------------------------- (b) growth


def growth_part(tmp: Path, ns: list[int], rounds: int, warm: float, win: float, windows: int) -> None:
    print(f"\n(b) growth: test://moving (640x360, 15 fps), max_fps 15, no preview reader; N = "
          f"{', '.join(map(str, ns))}; {rounds} rounds (order reversed every other) x {windows} windows "
          f"of {win:g} s after {warm:g} s warm-up", flush=True)
    totals: dict[int, list[float]] = {n: [] for n in ns}
    own: dict[int, list[float]] = {n: [] for n in ns}
    others: dict[int, list[float]] = {n: [] for n in ns}
    fps_low: dict[int, float] = {}
    for r in range(rounds):
        for n in (ns if r % 2 == 0 else ns[::-1]):
            specs = [dict(camera_id=i, name=f"cam{i}", source="test://moving", max_fps=15.0,
                          extra_args=["--motion-warmup", "10"]) for i in range(1, n + 1)]
            with heavy_step():
                st = Station(tmp / f"growth-{r}-{n}", specs)
                try:
                    st.wait_all_running(60 + 3 * n)
                    time.sleep(warm)
                    for _ in range(windows):
                        w = window([st.proc.pid], win, own=st.proc.pid)
                        totals[n].append(w["total"])
                        own[n].append(w["own"])
                        others[n].append(w["others"])
                    fps_low[n] = min(fps_low.get(n, 1e9), min(st.fps()))
                finally:
                    st.close()
            print(f"   round {r + 1} N={n:3d}: {totals[n][-1]:7.2f} % of a core", flush=True)
    report_growth(ns, totals, own, others, fps_low)


def report_growth(ns: list[int], totals: dict[int, list[float]], own: dict[int, list[float]],
                  others: dict[int, list[float]], fps_low: dict[int, float]) -> None:
    print("\n      N   total % of a core (median, min-max)   supervisor process   lowest fps   residual of fit")
    x = np.array(ns, dtype=float)
    y = np.array([statistics.median(totals[n]) for n in ns])
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    for n, res in zip(ns, resid, strict=True):
        print(f"   {n:4d}   {fmt(totals[n]):32s}   {statistics.median(own[n]):7.2f} %            "
              f"{fps_low[n]:6.2f}     {res:+7.2f}")
    ss_res = float(np.sum(resid ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    print(f"   least squares: total = {a:.2f} + {b:.3f} * N  % of a core  (R^2 {1 - ss_res / ss_tot:.4f}; "
          f"the landed code measured 5 + 1.54 * N)")
    capacity = 100.0 * (os.cpu_count() or 1)
    kept = [n for n in ns if fps_low[n] >= KEPT_UP_FPS
            and statistics.median(totals[n]) + statistics.median(others[n]) < SATURATED * capacity]
    if len(kept) < len(ns):
        print(f"   saturated (a worker below {KEPT_UP_FPS:g} fps, or this tree and the rest of the machine using "
              f">= {SATURATED:.0%} of all {os.cpu_count()} cores): N = {', '.join(str(n) for n in ns if n not in kept)}")
    if 2 <= len(kept) < len(ns):
        xk = np.array(kept, dtype=float)
        yk = np.array([statistics.median(totals[n]) for n in kept])
        bk, ak = np.polyfit(xk, yk, 1)
        rk = yk - (ak + bk * xk)
        print(f"   fit without the saturated N (N = {', '.join(map(str, kept))}): "
              f"total = {ak:.2f} + {bk:.3f} * N, residuals {', '.join(f'{v:+.2f}' for v in rk)}")
    print(f"   the rest of the machine meanwhile: median {statistics.median(v for n in ns for v in others[n]):.1f} % "
          "of a core (other processes)", flush=True)


def fmt(xs: Sequence[float]) -> str:
    return f"median {statistics.median(xs):7.2f}, min-max {min(xs):6.2f}-{max(xs):7.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["clips", "growth", "all"], default="all")
    ap.add_argument("--clip-workers", type=int, default=2 if QUICK else 4)
    ap.add_argument("--growth-n", default="1,2,4,8" if QUICK else "1,2,4,8,16,32,64")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    try:
        import av  # noqa: F401
        av.codec.Codec("libx264", "w")
    except Exception as exc:  # noqa: BLE001 - any reason PyAV cannot encode H.264 here
        print(f"SKIP: PyAV with libx264 is not available here ({exc})")
        return 77
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}{', quick mode' if QUICK else ''}")
    warm, win, windows = (2.0, 3.0, 1) if QUICK else (4.0, 5.0, 2)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as d:
        tmp = Path(d)
        if args.part in ("clips", "all"):
            clips_part(tmp, args.clip_workers, args.rounds, warm, win, windows)
        if args.part in ("growth", "all"):
            ns = [int(v) for v in args.growth_n.split(",")]
            growth_part(tmp, ns, args.rounds, 2.0 if QUICK else 3.0, 3.0 if QUICK else 4.0, windows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
