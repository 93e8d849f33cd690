"""Supervisor benchmark: restart latency and idle CPU, side by side with supervisord.

    .venv/bin/python tests/bench/bench_supervisor.py [--kills 20] [--workers 16] [--seconds 20]

1. kill -9 -> new worker spawned, p50/p95 over --kills kills of a worker that has run
   stably (our policy restarts such a crash at once; supervisord with autorestart and
   startsecs=1 restarts a RUNNING program at once too). Both supervise the same
   stand-in program (tests/reliability/fakeworkers/fakeworker.py). Our latency is
   the time from os.kill to the supervisor's "starting" event (emitted once Popen has
   returned, so the new process exists); supervisord's is the time until a new child
   pid shows up under it (psutil polled every 0.5 ms, so it includes up to 0.5 ms of
   polling granularity).
2. CPU of the supervision itself with --workers workers at 1 heartbeat/s over
   --seconds: our supervisor *thread* (per-thread CPU times from psutil) against the
   whole supervisord process doing the same job (reading their stdout into logs).
   Target for ours: <= 2 % of one core.

supervisord is a bench-only dependency: `.venv/bin/pip install supervisor`. Without it
the side-by-side columns are skipped (and say so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent, WorkerSpec, WorkerState  # noqa: E402

FAKE = REPO / "tests" / "reliability" / "fakeworkers" / "fakeworker.py"
STABLE = 1.2  # every kill hits a worker that has run this long


def fake_args(camera_id: int) -> list[str]:
    return ["run", "--camera-id", str(camera_id), "--source", "test://moving", "--heartbeat-interval", "1.0"]


def wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


# --------------------------------------------------------------------- ours


def ours_restart_latency(kills: int, tmp: Path) -> list[float]:
    policy = RestartPolicy(stable_after=1.0, crash_restart_immediately_if_stable=True,
                           rate_limit_starts=10_000, heartbeat_interval=1.0)
    sup = Supervisor(tmp / "run", tmp / "logs", policy=policy, owner=f"bench{os.getpid()}")
    spawned: dict[int, float] = {}
    lock = threading.Lock()

    def on_event(ev: SupervisorEvent) -> None:
        if ev.kind == "state" and ev.detail.get("to") == "starting":
            with lock:
                spawned[len(spawned)] = ev.ts  # stamped right after Popen returned

    sup.subscribe(on_event)
    sup.start()
    out = []
    try:
        sup.start_worker(WorkerSpec(1, "bench", "test://moving", command=(sys.executable, str(FAKE))))
        for _ in range(kills):
            wait_until(lambda: sup.status(1).state == WorkerState.RUNNING, 10, "running")
            st = sup.status(1)
            time.sleep(max(0.0, STABLE - (st.uptime or 0.0)))
            with lock:
                before = len(spawned)
            assert st.pid is not None
            t0 = time.time()
            os.kill(st.pid, signal.SIGKILL)
            wait_until(lambda: len(spawned) > before, 10, "respawn")  # noqa: B023
            with lock:
                out.append(spawned[before] - t0)
    finally:
        sup.shutdown()
    return out


def ours_cpu(workers: int, seconds: float, tmp: Path) -> tuple[float, float]:
    """(supervisor thread CPU %, whole bench process CPU %) of one core."""
    policy = RestartPolicy(heartbeat_interval=1.0)
    sup = Supervisor(tmp / "run-cpu", tmp / "logs-cpu", policy=policy, owner=f"benchcpu{os.getpid()}")
    sup.start()
    try:
        for cid in range(1, workers + 1):
            sup.start_worker(WorkerSpec(cid, f"c{cid}", "test://moving", command=(sys.executable, str(FAKE))))
        wait_until(lambda: all(s.state == WorkerState.RUNNING for s in sup.statuses().values()), 30, "all running")
        time.sleep(1.5)  # past start-up
        thread = sup._thread  # noqa: SLF001 - the bench measures this very thread
        assert thread is not None and thread.native_id is not None
        me = psutil.Process()

        def thread_cpu() -> float:
            for t in me.threads():
                if t.id == thread.native_id:
                    return t.user_time + t.system_time
            raise RuntimeError("supervisor thread not found")

        c0, p0, w0 = thread_cpu(), me.cpu_times(), time.monotonic()
        time.sleep(seconds)
        c1, p1, w1 = thread_cpu(), me.cpu_times(), time.monotonic()
        wall = w1 - w0
        proc = (p1.user + p1.system) - (p0.user + p0.system)
        return 100.0 * (c1 - c0) / wall, 100.0 * proc / wall
    finally:
        sup.shutdown()


# --------------------------------------------------------------------- supervisord


def supervisord_exe() -> str | None:
    cand = Path(sys.executable).parent / "supervisord"
    return str(cand) if cand.exists() else shutil.which("supervisord")


class Supervisord:
    def __init__(self, exe: str, tmp: Path, programs: int) -> None:
        self.tmp = tmp
        conf = [
            "[supervisord]",
            "nodaemon=true",
            f"logfile={tmp}/supervisord.log",
            f"pidfile={tmp}/supervisord.pid",
            f"childlogdir={tmp}",
            "loglevel=warn",
        ]
        for cid in range(1, programs + 1):
            conf += [
                f"[program:cam{cid}]",
                "command=" + " ".join([sys.executable, str(FAKE), *fake_args(cid)]),
                "autorestart=true",
                "startsecs=0",  # RUNNING at once: a kill is always an unexpected exit
                "startretries=1000",
                "stopwaitsecs=2",
                f"stdout_logfile={tmp}/cam{cid}.out",
                f"stderr_logfile={tmp}/cam{cid}.err",
            ]
        (tmp / "supervisord.conf").write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([exe, "-n", "-c", str(tmp / "supervisord.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        wait_until(lambda: len(self.children()) == programs, 30, "supervisord children")

    def children(self) -> list[psutil.Process]:
        try:
            return [c for c in self.ps.children() if c.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            return []

    def close(self) -> None:
        kids = self.ps.children(recursive=True)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for k in kids:
            try:
                k.kill()
            except psutil.Error:
                pass


def supervisord_restart_latency(exe: str, kills: int, tmp: Path) -> list[float]:
    sd = Supervisord(exe, tmp, 1)
    out = []
    try:
        for _ in range(kills):
            wait_until(lambda: len(sd.children()) == 1, 10, "child")
            child = sd.children()[0]
            time.sleep(max(0.0, STABLE - (time.time() - child.create_time())))
            t0 = time.perf_counter()
            child.kill()
            while True:
                kids = [c for c in sd.children() if c.pid != child.pid]
                if kids:
                    out.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError("supervisord did not restart the program")
                time.sleep(0.0005)
    finally:
        sd.close()
    return out


def supervisord_cpu(exe: str, workers: int, seconds: float, tmp: Path) -> float:
    sd = Supervisord(exe, tmp, workers)
    try:
        time.sleep(2.5)
        c0, w0 = sd.ps.cpu_times(), time.monotonic()
        time.sleep(seconds)
        c1, w1 = sd.ps.cpu_times(), time.monotonic()
        return 100.0 * ((c1.user + c1.system) - (c0.user + c0.system)) / (w1 - w0)
    finally:
        sd.close()


# --------------------------------------------------------------------- main


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    exe = supervisord_exe()
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as d:
        tmp = Path(d)
        print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
              f"supervisord: {exe or 'not installed (pip install supervisor)'}")
        print(f"\n1) kill -9 -> new worker spawned, {args.kills} kills of a worker running >= {STABLE} s")
        ours = ours_restart_latency(args.kills, tmp / "ours")
        print(f"   edge-station supervisor : p50 {pct(ours, 50):7.2f} ms   p95 {pct(ours, 95):7.2f} ms"
              f"   max {max(ours) * 1000:7.2f} ms")
        if exe:
            (tmp / "sd").mkdir()
            theirs = supervisord_restart_latency(exe, args.kills, tmp / "sd")
            print(f"   supervisord (baseline)  : p50 {pct(theirs, 50):7.2f} ms   p95 {pct(theirs, 95):7.2f} ms"
                  f"   max {max(theirs) * 1000:7.2f} ms")
            print(f"   ratio ours/supervisord  : p50 {pct(ours, 50) / pct(theirs, 50):6.3f}   "
                  f"p95 {pct(ours, 95) / pct(theirs, 95):6.3f}")
        print(f"\n2) supervision CPU, {args.workers} workers at 1 heartbeat/s over {args.seconds:g} s "
              "(% of one core)")
        thread_pct, proc_pct = ours_cpu(args.workers, args.seconds, tmp / "ours")
        verdict = "OK" if thread_pct <= 2.0 else "OVER TARGET"
        print(f"   edge-station supervisor thread : {thread_pct:6.3f} %  (target <= 2 %: {verdict})")
        print(f"   whole bench process            : {proc_pct:6.3f} %")
        if exe:
            (tmp / "sd-cpu").mkdir()
            sd_pct = supervisord_cpu(exe, args.workers, args.seconds, tmp / "sd-cpu")
            print(f"   supervisord process (baseline) : {sd_pct:6.3f} %")
            if sd_pct > 0:
                print(f"   ratio ours(thread)/supervisord : {thread_pct / sd_pct:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
