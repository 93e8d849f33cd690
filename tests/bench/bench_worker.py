"""The camera worker against the fastest decode of the same clip and against an ffmpeg rawvideo pipe.

Run: ``python tests/bench/bench_worker.py [--rounds 3] [--seconds 40] [--paced-seconds 8]``

1. Writes a 1280x720 30 fps H.264 clip with PyAV/libx264 (``--preset veryfast``; one slice a
   frame like most cameras, ``--slices`` for libx264's zerolatency slices).
2. **Decode threading**: a plain PyAV decode loop (a child process) over the clip, as fast as it
   goes, with PyAV's default threading, NONE, SLICE, FRAME and AUTO at FFmpeg's thread count and
   at one thread per core (and the box's choice, ``decode_threading()``, if none of those);
   interleaved rounds. The fastest (median frames/s) is the baseline, and the box's choice is
   judged against it (target: x1.0, i.e. the worker decodes with the fastest threading here).
3. **Throughput** (unpaced): the real worker (``run --no-pace``, motion on every frame, the
   threading it picks for this box, a preview slot nobody reads) against that fastest decode:
   what the rest of a worker costs (motion, heartbeats), and against the worker with PyAV's
   default threading and with AUTO at FFmpeg's count (the old choice).
4. **Cost** (paced at the clip's 30 fps, ``--paced-seconds`` each): the worker without a preview
   slot, with a slot and no reader, with a reader polling like a wall tile (10 Hz, marks interest,
   320 px); the fastest decode loop paced the same way; a Frigate-style
   ``ffmpeg -re -i clip -f rawvideo -pix_fmt yuv420p pipe:`` read by a Python child.
5. **Cost, paired** (``pairs``): the preview's cost again with both workers running at the same
   time, which a shared box's load moves alike (see ``pairs``).

Every side is a child process that prints ``{"decoded": n, "ts": t}`` lines (the worker: its
heartbeats); at each line the bench samples psutil ``cpu_times`` (user + system) and RSS of the
child's whole process tree (for ffmpeg: the reader and ffmpeg). Rates run from the first line
with frames to the last line before the end (start-up and teardown left out). The sides of one
round run back to back, rounds repeat; medians with min-max. A missing ffmpeg binary skips only
that peer (``SKIP:`` line); exit 77 only when nothing can run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

PREVIEW_COST_TARGET = 1.05  # worker with a reader / worker without previews (CPU per frame)
DECODE_TARGET = 1.0  # frames/s of the box's decode threading / the fastest threading of the sweep

# A plain PyAV decode loop: argv = clip, thread type (or "default"), thread count ("-": FFmpeg's),
# paced (0/1), seconds (0: to the end), progress interval.
_PYAV_CHILD = r"""
import json, sys, time
import av
path, ttype, tcount, paced, seconds, interval = sys.argv[1:7]
paced, seconds, interval = paced == "1", float(seconds), float(interval)
out = sys.stdout
with av.open(path) as container:
    stream = container.streams.video[0]
    if ttype != "default":
        stream.thread_type = ttype
    if tcount != "-":
        stream.codec_context.thread_count = int(tcount)
    n = 0
    start = time.monotonic()
    base = None
    next_line = 0.0
    for frame in container.decode(stream):
        now = time.monotonic()
        if paced and frame.time is not None:
            if base is None:
                base = now - frame.time
            delay = base + frame.time - now
            if delay > 0.001:
                time.sleep(delay)
                now = time.monotonic()
        n += 1
        if now >= next_line:
            out.write(json.dumps({"decoded": n, "ts": time.time()}) + "\n"); out.flush()
            next_line = now + interval
        if seconds and now - start > seconds:
            break
out.write(json.dumps({"decoded": n, "ts": time.time()}) + "\n"); out.flush()
"""

# Reads ffmpeg's rawvideo pipe the way a Frigate-style reader does: whole frames into a buffer.
# argv = frame bytes, progress interval, then the ffmpeg command.
_PIPE_CHILD = r"""
import json, subprocess, sys, time
size, interval, cmd = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
buf = bytearray(size)
view = memoryview(buf)
n = 0
next_line = 0.0
out = sys.stdout
while True:
    got = 0
    while got < size:
        k = proc.stdout.readinto(view[got:])
        if not k:
            break
        got += k
    if got < size:
        break
    n += 1
    now = time.monotonic()
    if now >= next_line:
        out.write(json.dumps({"decoded": n, "ts": time.time()}) + "\n"); out.flush()
        next_line = now + interval
proc.wait()
out.write(json.dumps({"decoded": n, "ts": time.time()}) + "\n"); out.flush()
"""


@dataclass
class Run:
    fps: float  # frames per second, wall clock between the first and last progress line
    cpu_per_frame: float  # CPU seconds (user + system, the process tree) per frame
    frames: int  # frames in the measured span
    peak_rss: int  # the largest RSS of the process tree at a progress line (bytes)
    extra: float = 0.0  # side-specific (the reader: preview frames received per second)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _sample(proc: psutil.Process) -> tuple[float, int] | None:
    cpu, rss = 0.0, 0
    alive = False
    for p in _tree(proc):
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
            alive = True
        except psutil.Error:
            continue
    return (cpu, rss) if alive else None


def observe(cmd: list[str], *, seconds: float = 0.0, env: dict[str, str] | None = None,
            during: Callable[[threading.Event], float] | None = None) -> Run:
    """Run *cmd*, sample its process tree at each progress line; stop it after *seconds* of
    lines (0: let it end). *during* runs on a thread while it runs (the preview reader) and
    returns its figure."""
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
                             start_new_session=True)
    ps = psutil.Process(child.pid)
    stop = threading.Event()
    extra: list[float] = []
    helper = None
    if during is not None:
        helper = threading.Thread(target=lambda: extra.append(during(stop)), daemon=True)
        helper.start()
    samples: list[tuple[int, float, float, int]] = []  # decoded, ts, cpu, rss
    ended_by_itself = True
    assert child.stdout is not None
    try:
        for line in child.stdout:
            msg = json.loads(line)
            if not msg.get("decoded"):
                continue
            got = _sample(ps)
            if got is None:
                break
            samples.append((msg["decoded"], msg["ts"], *got))
            if seconds and samples[-1][1] - samples[0][1] >= seconds:
                ended_by_itself = False
                break
    finally:
        stop.set()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        child.stdout.close()
        if helper is not None:
            helper.join(5)
    if len(samples) < 3:
        raise SystemExit(f"{cmd[:3]}...: only {len(samples)} progress lines (exit {child.returncode})")
    first = samples[0]
    last = samples[-2] if ended_by_itself else samples[-1]  # the final line may follow the end
    frames = last[0] - first[0]
    return Run(fps=frames / (last[1] - first[1]), cpu_per_frame=(last[2] - first[2]) / frames,
               frames=frames, peak_rss=max(s[3] for s in samples), extra=extra[0] if extra else 0.0)


def pyav_cmd(clip: Path, threading_: tuple[str, str], *, paced: bool, seconds: float) -> list[str]:
    return [sys.executable, "-c", _PYAV_CHILD, str(clip), threading_[0], threading_[1],
            "1" if paced else "0", f"{seconds + 2 if seconds else 0}", "0.05" if not paced else "0.25"]


def worker_cmd(clip: Path, preview: Path | None, *, paced: bool, threading_: str = "box") -> list[str]:
    from app.workerlink.launch import worker_command

    cmd = [*worker_command(), "run", "--camera-id", "1", "--source", str(clip), "--log-level", "WARNING",
           "--heartbeat-interval", "0.25" if paced else "0.05", "--decode-threading", threading_]
    if paced:
        cmd.append("--loop")
    else:
        cmd.append("--no-pace")
    if preview is not None:
        cmd += ["--preview", str(preview)]
    return cmd


def pipe_cmd(ffmpeg: str, clip: Path, *, paced: bool, seconds: float = 0.0) -> list[str]:
    size = 1280 * 720 * 3 // 2
    timing = ["-re"] if paced else []
    limit = ["-t", f"{seconds + 2:g}"] if seconds else []
    return [sys.executable, "-c", _PIPE_CHILD, str(size), "0.25" if paced else "0.05", ffmpeg,
            "-hide_banner", "-loglevel", "error", *timing, "-i", str(clip), *limit, "-an",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:"]


def tile_reader(path: Path) -> Callable[[threading.Event], float]:
    """Polls the slot like a shown wall tile (10 Hz: width request, interest, read on a new seq);
    returns the preview frames received per second."""
    from app.workerlink.preview import PreviewReader

    def run(stop: threading.Event) -> float:
        reader = PreviewReader(path)
        seen, last, t0 = 0, 0, time.monotonic()
        try:
            while not stop.wait(0.1):
                if reader.requested_width() != 320:
                    reader.request_width(320)
                reader.mark_interest()
                seq = reader.seq
                if seq != last and not seq & 1:
                    frame = reader.read()
                    if frame is not None and frame.seq != last:
                        last = frame.seq
                        seen += 1
        finally:
            reader.close()
        return seen / (time.monotonic() - t0)

    return run


def fmt(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def ratios(a: list[float], b: list[float]) -> str:
    r = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0, help="clip length (unpaced runs decode all of it)")
    parser.add_argument("--paced-seconds", type=float, default=8.0)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--slices", action="store_true", help="libx264 zerolatency: several slices a frame")
    parser.add_argument("--parts", default="sweep,throughput,cost,pairs",
                        help="which parts to run (without the sweep the baseline is FRAME:<cores>)")
    args = parser.parse_args()
    try:
        import av  # noqa: F401
    except ImportError:
        print("SKIP: PyAV is not installed")
        return 77
    from app.worker.capture import decode_threading
    from tests.support.clips import write_clip

    ffmpeg = shutil.which("ffmpeg")
    cores = os.cpu_count() or 1
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), EDGE_STATION_WORKER="1")
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        t0 = time.perf_counter()
        clip = write_clip(tmp, width=1280, height=720, seconds=args.seconds, fps=30, preset=args.preset,
                          tune="zerolatency" if args.slices else None)
        print(f"clip: 1280x720 30 fps H.264 ({args.preset}, {'slices' if args.slices else 'one slice a frame'}), "
              f"{args.seconds:g} s, {clip.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s; "
              f"{cores} CPUs, load average {os.getloadavg()[0]:.1f}; worker threading for this box: {decode_threading()}")
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tmp)
        preview = shm / f"bench-worker-{os.getpid()}.preview"

        # 1. decode threading, unpaced, interleaved rounds
        configs = {"default": ("default", "-"), "NONE": ("NONE", "1"), "SLICE:0": ("SLICE", "0"),
                   "FRAME:0": ("FRAME", "0"), "AUTO:0": ("AUTO", "0"),
                   f"SLICE:{cores}": ("SLICE", str(cores)), f"FRAME:{cores}": ("FRAME", str(cores)),
                   f"AUTO:{cores}": ("AUTO", str(cores))}
        box = str(decode_threading())  # what a worker picks here: judged against the fastest below
        box_key = next((k for k, cfg in configs.items() if box in (k, ":".join(cfg))), box)
        configs.setdefault(box_key, tuple(box.split(":", 1)) if ":" in box else (box, "0"))
        parts = set(args.parts.split(","))
        sweep: dict[str, list[Run]] = {k: [] for k in configs}
        for _ in range(args.rounds if "sweep" in parts else 0):
            for name, cfg in configs.items():
                sweep[name].append(observe(pyav_cmd(clip, cfg, paced=False, seconds=0)))
        if "sweep" in parts:
            print(f"\ndecode threading, plain PyAV loop, unpaced, {args.rounds} rounds (median (min-max)):")
        for name, runs in sweep.items() if "sweep" in parts else ():
            print(f"  {name:10} {fmt([r.fps for r in runs]):>22} frames/s   "
                  f"{fmt([r.cpu_per_frame for r in runs], 1e3, 2):>20} ms CPU/frame   "
                  f"RSS {fmt([r.peak_rss for r in runs], 2**-20)} MB")
        if "sweep" in parts:
            fastest = max(sweep, key=lambda k: statistics.median(r.fps for r in sweep[k]))
            print(f"  fastest: {fastest}")
            ratio = statistics.median(r.fps for r in sweep[box_key]) / \
                statistics.median(r.fps for r in sweep[fastest])
            print(f"  the box's choice ({box}) / the fastest: frames/s x{ratio:.3f} (target >= {DECODE_TARGET}) "
                  f"{'OK' if ratio >= DECODE_TARGET else 'BELOW TARGET'}")
        else:
            fastest = f"FRAME:{cores}"

        # 2. throughput: the worker (its own threading choice) against the fastest decode
        base: list[Run] = []
        work: list[Run] = []
        pipes: list[Run] = []
        # the worker with other threadings: PyAV's default, and AUTO at FFmpeg's count (the old choice)
        others: dict[str, list[Run]] = {"default": [], "AUTO:0": []}
        if not ffmpeg:
            print("SKIP: ffmpeg rawvideo pipe peer: no ffmpeg binary on PATH")
        try:
            for _ in range(args.rounds if "throughput" in parts else 0):
                base.append(observe(pyav_cmd(clip, configs[fastest], paced=False, seconds=0)))
                preview.unlink(missing_ok=True)
                work.append(observe(worker_cmd(clip, preview, paced=False), env=env))
                for name, runs in others.items():
                    preview.unlink(missing_ok=True)
                    runs.append(observe(worker_cmd(clip, preview, paced=False, threading_=name), env=env))
                if ffmpeg:
                    pipes.append(observe(pipe_cmd(ffmpeg, clip, paced=False)))
        finally:
            preview.unlink(missing_ok=True)
        if "throughput" not in parts:
            if "cost" in parts:
                cost(args, clip, preview, configs[fastest], fastest, ffmpeg, env)
            if "pairs" in parts:
                pairs(args, clip, shm, env)
            return 0
        print(f"\nthroughput, unpaced, {args.rounds} rounds:")
        print(f"  fastest decode ({fastest}) {fmt([r.fps for r in base]):>22} frames/s  "
              f"{fmt([r.cpu_per_frame for r in base], 1e3, 2)} ms CPU/frame")
        print(f"  worker ({decode_threading()})      {fmt([r.fps for r in work]):>22} frames/s  "
              f"{fmt([r.cpu_per_frame for r in work], 1e3, 2)} ms CPU/frame  (motion every frame, slot unread)")
        for name, runs in others.items():
            print(f"  worker ({name}){' ' * (12 - len(name))}  {fmt([r.fps for r in runs]):>22} frames/s  "
                  f"{fmt([r.cpu_per_frame for r in runs], 1e3, 2)} ms CPU/frame  "
                  f"box choice / this: frames/s {ratios([w.fps for w in work], [r.fps for r in runs])}")
        if pipes:
            print(f"  ffmpeg rawvideo pipe       {fmt([r.fps for r in pipes]):>22} frames/s  "
                  f"{fmt([r.cpu_per_frame for r in pipes], 1e3, 2)} ms CPU/frame  (ffmpeg + the reading child)")
        # The whole worker does more than decode (motion on every frame, heartbeats): what that costs.
        print(f"  worker / fastest decode: frames/s {ratios([w.fps for w in work], [b.fps for b in base])}, "
              f"CPU/frame {ratios([w.cpu_per_frame for w in work], [b.cpu_per_frame for b in base])} "
              f"(the decode's own threading is judged in the sweep)")
        if pipes:
            print(f"  worker / ffmpeg pipe: frames/s {ratios([w.fps for w in work], [p.fps for p in pipes])}, "
                  f"CPU/frame {ratios([w.cpu_per_frame for w in work], [p.cpu_per_frame for p in pipes])}")

        if "cost" in parts:
            cost(args, clip, preview, configs[fastest], fastest, ffmpeg, env)
        if "pairs" in parts:
            pairs(args, clip, shm, env)
    return 0


def pairs(args: argparse.Namespace, clip: Path, shm: Path, env: dict[str, str]) -> None:
    """4. the preview's cost, both workers at the same time: on a shared box the load of other
    processes moves both sides alike, so the ratio is steadier than across runs. Each pair runs a
    worker with a slot and a tile-like reader next to one without a slot (or with a slot and no
    reader), paced, observed the same way; the order of starting alternates."""
    secs = args.paced_seconds
    # "no slot" pairs two identical workers: what the pairing itself reads as a difference
    results: dict[str, list[float]] = {"slot + tile reader": [], "slot, no reader": [], "no slot (A/A)": []}
    for i in range(args.rounds):
        for name in results:
            a = shm / f"bench-worker-{os.getpid()}-a.preview"
            b = shm / f"bench-worker-{os.getpid()}-b.preview"
            out: dict[str, Run] = {}

            def side(key: str, cmd: list[str], during: Callable[[threading.Event], float] | None,
                     into: dict[str, Run]) -> None:
                into[key] = observe(cmd, seconds=secs, env=env, during=during)

            slot = None if name.startswith("no slot") else a if name.endswith("tile reader") else b
            jobs = [("ref", worker_cmd(clip, None, paced=True), None),
                    ("test", worker_cmd(clip, slot, paced=True),
                     tile_reader(a) if name.endswith("tile reader") else None)]
            if i % 2:
                jobs.reverse()
            threads = [threading.Thread(target=side, args=(*job, out)) for job in jobs]
            try:
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(secs + 60)
            finally:
                a.unlink(missing_ok=True)
                b.unlink(missing_ok=True)
            if set(out) != {"ref", "test"}:
                raise SystemExit("a paired worker run failed")
            results[name].append(out["test"].cpu_per_frame / out["ref"].cpu_per_frame)
    print(f"\npreview cost, paired (both workers at once, paced, {secs:g} s, {args.rounds} rounds), "
          f"CPU/frame against a worker without previews:")
    for name, r in results.items():
        print(f"  {name:20} x{statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f})")
    cost_ = statistics.median(results["slot + tile reader"])
    print(f"preview cost with a reader, paired: x{cost_:.3f} (target <= {PREVIEW_COST_TARGET}) "
          f"{'OK' if cost_ <= PREVIEW_COST_TARGET else 'ABOVE TARGET'}")


def cost(args: argparse.Namespace, clip: Path, preview: Path, best: tuple[str, str], fastest: str,
         ffmpeg: str | None, env: dict[str, str]) -> int:
    """3. cost, paced at 30 fps"""
    if True:
        sides: dict[str, Callable[[], Run]] = {}
        secs = args.paced_seconds

        def worker_side(with_slot: bool, reader: bool) -> Callable[[], Run]:
            def run() -> Run:
                preview.unlink(missing_ok=True)
                try:
                    return observe(worker_cmd(clip, preview if with_slot else None, paced=True), seconds=secs,
                                   env=env, during=tile_reader(preview) if reader else None)
                finally:
                    preview.unlink(missing_ok=True)
            return run

        sides["worker, no previews"] = worker_side(False, False)
        sides["worker, slot, no reader"] = worker_side(True, False)
        sides["worker, slot + tile reader"] = worker_side(True, True)
        sides[f"fastest decode ({fastest})"] = lambda: observe(
            pyav_cmd(clip, best, paced=True, seconds=secs), seconds=secs)
        if ffmpeg:
            sides["ffmpeg rawvideo pipe"] = lambda: observe(pipe_cmd(ffmpeg, clip, paced=True, seconds=secs),
                                                            seconds=secs)
        paced: dict[str, list[Run]] = {k: [] for k in sides}
        for _ in range(args.rounds):
            for name, side in sides.items():
                paced[name].append(side())
        print(f"\ncost, paced at 30 fps, {secs:g} s a run, {args.rounds} rounds (CPU of the process tree):")
        ref = paced["worker, no previews"]
        for name, runs in paced.items():
            line = (f"  {name:28} {fmt([r.fps for r in runs]):>18} frames/s  "
                    f"{fmt([r.cpu_per_frame for r in runs], 1e3, 2):>18} ms CPU/frame  "
                    f"x{ratios([r.cpu_per_frame for r in runs], [r.cpu_per_frame for r in ref])} of no previews  "
                    f"RSS {fmt([r.peak_rss for r in runs], 2**-20)} MB")
            if name.endswith("tile reader"):
                line += f"  previews {fmt([r.extra for r in runs])}/s"
            print(line)
        with_reader = [r.cpu_per_frame for r in paced["worker, slot + tile reader"]]
        cost = statistics.median(x / y.cpu_per_frame for x, y in zip(with_reader, ref, strict=True))
        print(f"preview cost with a reader: x{cost:.3f} (target <= {PREVIEW_COST_TARGET}) "
              f"{'OK' if cost <= PREVIEW_COST_TARGET else 'ABOVE TARGET'}")
        if ffmpeg:
            pipe = paced["ffmpeg rawvideo pipe"]
            print(f"worker with a reader / ffmpeg pipe: CPU/frame "
                  f"{ratios(with_reader, [r.cpu_per_frame for r in pipe])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
