"""Supervisor benchmark: restart latency and idle CPU, side by side with supervisord.

    .venv/bin/python tests/bench/bench_supervisor.py [--victims 6] [--chatty 12] [--workers 16] [--seconds 20]
    BENCH_QUICK=1: 3 victims, 6 chatty programs, 8 s CPU window (the restart section still waits
    for the default policy's 60 s of stable running).

1. kill -9 of a real worker -> the supervisor's new child process. Both supervisors run in
   processes of their own and supervise the same real worker command (python -m app.worker run
   on test://moving at max_fps 15, the demo camera's settings, with a preview slot and an
   evidence directory as the station passes them): ours is tests/bench/supervisor_driver.py,
   which builds the supervisor as the station does, so with the default RestartPolicy;
   supervisord has autorestart=true. Both are observed the same way, from this process: the
   time from os.kill to the first new process whose parent is that supervisor process (a /proc
   scan every 0.5 ms). The default policy restarts at once a crash of a worker that ran for
   stable_after (60 s), so every kill hits a worker older than that, on both sides; each
   side has --victims workers, and they are killed one at a time in interleaved rounds (ours
   first on even rounds, supervisord first on odd ones), each kill once the restart before it
   has settled.
   Two conditions, run one after the other with both supervisors up at once:
   - quiet: only the victims;
   - busy: plus --chatty programs per supervisor, each writing 100 log lines/s and a heartbeat
     a second (tests/reliability/fakeworkers/fakeworker.py --fake-log-every 0.01). supervisord
     acts on a dead child only from its select loop, which wakes when a pipe has output (or on
     its 1 s timeout) and then copies that output to log files; many programs writing keep the
     loop busy, so the restart queues behind that work. Ours gets the same programs (its loop
     reads and rate-limits their lines).
   Output: per side median and min-max (ms), the ratio of the medians (ours / supervisord).
2. CPU of the supervision itself: both supervisors up at once (ours in the same driver
   process), each with --workers stand-in workers at 1 heartbeat/s
   (tests/reliability/fakeworkers/fakeworker.py), the supervisor process's own CPU (psutil,
   from outside, not its children) over the same 3 windows of --seconds; medians, min-max,
   ratio. Target for ours: <= 2 % of one core.

supervisord is a bench extra (pip install -e '.[bench]'). Without it the bench prints
`SKIP: supervisord not installed` and exits 77 (there is no baseline to compare with).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.supervisor import RestartPolicy  # noqa: E402
from app.workerlink.launch import worker_command  # noqa: E402
from app.workerlink.protocol import RunArgs, run_argv  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

FAKE = REPO / "tests" / "reliability" / "fakeworkers" / "fakeworker.py"
DRIVER = REPO / "tests" / "bench" / "supervisor_driver.py"
QUICK = os.environ.get("BENCH_QUICK") == "1"
VICTIM_SOURCE = "test://moving"
VICTIM_FPS = 15.0
CHATTY_ARGS = ("--fake-log-every", "0.01")
STABLE = RestartPolicy().stable_after + 2.0  # every kill hits a worker older than the default's
POLL = 0.0005


def fake_args(camera_id: int) -> list[str]:
    return ["run", "--camera-id", str(camera_id), "--source", "test://moving", "--heartbeat-interval", "1.0"]




def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


# --------------------------------------------------------------------- observation (both sides)


def proc_pids() -> set[int]:
    return {int(n) for n in os.listdir("/proc") if n.isdigit()}


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def kill_and_time_respawn(victim: int, timeout: float = 15.0) -> tuple[float, int]:
    """SIGKILL ``victim``; seconds until a new process with the victim's parent exists, its pid.

    The victim's parent, not the side's process: ours forks its workers from the worker launcher
    (app/supervisor/launcher.py), a child of the supervisor's process, where supervisord forks
    them itself."""
    parent = parent_of(victim)
    known = proc_pids()
    t0 = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    while True:
        for pid in proc_pids() - known:
            if parent_of(pid) == parent:
                return time.perf_counter() - t0, pid
            known.add(pid)
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"no new child of {parent} within {timeout:g} s of the kill")
        time.sleep(POLL)


def settle(pid: int, timeout: float = 8.0) -> None:
    """Wait until the new worker has started up (its CPU use fell below a third of a core)."""
    deadline = time.monotonic() + timeout
    try:
        p = psutil.Process(pid)
        last = sum(p.cpu_times()[:2])
        time.sleep(0.2)
        while time.monotonic() < deadline:
            now = sum(p.cpu_times()[:2])
            if now - last < 0.2 / 3 and "app.worker" in " ".join(p.cmdline()):
                return
            last = now
            time.sleep(0.2)
    except psutil.Error:
        return


def is_worker(p: psutil.Process) -> bool:
    try:
        return "app.worker" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --------------------------------------------------------------------- the two sides


def preview_dir(tmp: Path) -> Path:
    return Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp


def victim_run_args(camera_id: int, tmp: Path) -> list[str]:
    """What ours passes a worker (app/supervisor/spawner.py), the source on the command line."""
    preview = preview_dir(tmp)
    args = RunArgs(camera_id=camera_id, max_fps=VICTIM_FPS,
                   preview=str(preview / f"bench-sd-{os.getpid()}-cam-{camera_id}.preview"),
                   heartbeat_interval=1.0, evidence_dir=str(tmp / "evidence" / str(camera_id)))
    (tmp / "evidence" / str(camera_id)).mkdir(parents=True, exist_ok=True)
    argv = run_argv(args)
    argv[argv.index("-")] = VICTIM_SOURCE
    return [*argv, "--motion-warmup", "10"]


class Side:
    name = ""
    pid = 0

    def victims(self) -> list[psutil.Process]:
        try:
            return sorted((c for c in psutil.Process(self.pid).children(recursive=True) if is_worker(c)),
                          key=lambda c: c.pid)
        except psutil.Error:
            return []

    def close(self) -> None:
        raise NotImplementedError


def _end(proc: subprocess.Popen[bytes], kids: list[psutil.Process], stop: Callable[[], None]) -> None:
    stop()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    for k in kids:
        try:
            k.kill()
        except psutil.Error:
            pass


class Ours(Side):
    name = "edge-station"

    def __init__(self, tmp: Path, victims: int, chatty: int,
                 chatty_args: tuple[str, ...] = CHATTY_ARGS) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        specs: list[dict[str, object]] = [
            dict(camera_id=i, name=f"cam{i}", source=VICTIM_SOURCE, max_fps=VICTIM_FPS,
                 extra_args=["--motion-warmup", "10"])
            for i in range(1, victims + 1)]
        specs += [dict(camera_id=100 + i, name=f"chatty{i}", source="test://moving",
                       command=[sys.executable, str(FAKE)], extra_args=list(chatty_args))
                  for i in range(1, chatty + 1)]
        (tmp / "specs.json").write_text(json.dumps(specs))
        self.err = open(tmp / "driver.err", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(tmp / "run"), str(tmp / "logs"), str(tmp / "specs.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=child_env())
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the supervisor driver did not start: see {tmp / 'driver.err'}")

    def close(self) -> None:
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            kids = []

        def stop() -> None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()

        _end(self.proc, kids, stop)
        self.err.close()


def supervisord_exe() -> str | None:
    cand = Path(sys.executable).parent / "supervisord"
    return str(cand) if cand.exists() else shutil.which("supervisord")


def _supervisord_conf(tmp: Path, programs: list[tuple[str, list[str]]], startsecs: int) -> Path:
    conf = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={tmp}/supervisord.log",
        f"pidfile={tmp}/supervisord.pid",
        f"childlogdir={tmp}",
        "loglevel=warn",
    ]
    for name, argv in programs:
        conf += [
            f"[program:{name}]",
            "command=" + " ".join(argv),
            "autorestart=true",
            f"startsecs={startsecs}",
            "startretries=1000",
            "stopwaitsecs=2",
            f"stdout_logfile={tmp}/{name}.out",
            f"stderr_logfile={tmp}/{name}.err",
        ]
    (tmp / "supervisord.conf").write_text("\n".join(conf) + "\n")
    return tmp / "supervisord.conf"


class Theirs(Side):
    name = "supervisord"

    def __init__(self, exe: str, tmp: Path, victims: int, chatty: int,
                 chatty_args: tuple[str, ...] = CHATTY_ARGS) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        programs = [(f"cam{i}", [*worker_command(), *victim_run_args(i, tmp)]) for i in range(1, victims + 1)]
        programs += [(f"chatty{i}", [sys.executable, str(FAKE), *fake_args(100 + i), *chatty_args])
                     for i in range(1, chatty + 1)]
        conf = _supervisord_conf(tmp, programs, startsecs=1)
        self.proc = subprocess.Popen([exe, "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=child_env())
        self.pid = self.proc.pid
        self.preview_dir = preview_dir(tmp)

    def close(self) -> None:
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        _end(self.proc, kids, lambda: self.proc.send_signal(signal.SIGTERM))
        for slot in self.preview_dir.glob(f"bench-sd-{os.getpid()}-cam-*.preview"):
            slot.unlink(missing_ok=True)


def restart_condition(exe: str, tmp: Path, victims: int, chatty: int) -> dict[str, list[float]]:
    """Both sides up at once; each victim of each side killed once, in interleaved rounds."""
    out: dict[str, list[float]] = {"edge-station": [], "supervisord": []}
    sides: list[Side] = []
    try:
        sides.append(Ours(tmp / "ours", victims, chatty))
        sides.append(Theirs(exe, tmp / "sd", victims, chatty))
        for side in sides:
            wait_for(lambda s=side: len(s.victims()) == victims, 60, f"{side.name}'s workers")  # type: ignore[misc]
        for side in sides:
            oldest_young = max(v.create_time() for v in side.victims())
            wait_for(lambda t=oldest_young: time.time() - t >= STABLE, STABLE + 30,  # type: ignore[misc]
                       f"{side.name}'s workers to run {STABLE:g} s")
        targets = {s.name: [v.pid for v in s.victims()] for s in sides}
        for r in range(victims):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                dt, new = kill_and_time_respawn(targets[side.name][r])
                out[side.name].append(dt)
                settle(new)
    finally:
        for side in sides:
            side.close()
    return out


# --------------------------------------------------------------------- CPU (stand-in workers)


def cpu_condition(exe: str, tmp: Path, workers: int, seconds: float, windows: int) -> dict[str, list[float]]:
    """Both supervisors up at once with ``workers`` stand-ins each; their own process's CPU % of a
    core (psutil, from outside, the children not counted) over the same windows."""
    out: dict[str, list[float]] = {"edge-station": [], "supervisord": []}
    sides: list[Side] = []
    try:
        sides.append(Ours(tmp / "ours", 0, workers, chatty_args=()))
        sides.append(Theirs(exe, tmp / "sd", 0, workers, chatty_args=()))
        for side in sides:
            wait_for(lambda s=side: len(psutil.Process(s.pid).children()) == workers, 60,  # type: ignore[misc]
                       f"{side.name}'s stand-ins")
        time.sleep(3.0)  # past start-up
        procs = {s.name: psutil.Process(s.pid) for s in sides}
        for _ in range(windows):
            c0 = {n: sum(p.cpu_times()[:2]) for n, p in procs.items()}
            w0 = time.monotonic()
            time.sleep(seconds)  # the measured window
            wall = time.monotonic() - w0
            for n, p in procs.items():
                out[n].append(100.0 * (sum(p.cpu_times()[:2]) - c0[n]) / wall)
    finally:
        for side in sides:
            side.close()
    return out


# --------------------------------------------------------------------- main


def ms(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000.0
    return f"median {np.median(a):8.2f} ms  min-max {a.min():7.2f}-{a.max():8.2f} ms  (n={len(a)})"


def pcts(xs: list[float]) -> str:
    return f"median {np.median(xs):6.3f} %  min-max {min(xs):6.3f}-{max(xs):6.3f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victims", type=int, default=3 if QUICK else 6,
                    help="real workers per supervisor, each killed once per condition")
    ap.add_argument("--chatty", type=int, default=6 if QUICK else 12,
                    help="programs writing 100 lines/s per supervisor in the busy condition")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0 if QUICK else 20.0)
    ap.add_argument("--skip-cpu", action="store_true", help="only the restart section")
    ap.add_argument("--skip-restart", action="store_true", help="only the CPU section")
    args = ap.parse_args()
    exe = supervisord_exe()
    if exe is None:
        print("SKIP: supervisord not installed (pip install -e '.[bench]'): no restart baseline")
        return 77
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, supervisord: {exe}")
    policy = RestartPolicy()
    print(f"\n1) {'(skipped) ' if args.skip_restart else ''}kill -9 of a real worker ({VICTIM_SOURCE}, max_fps {VICTIM_FPS:g}) -> the supervisor's new "
          f"child process\n   ours: the station's default RestartPolicy (stable_after {policy.stable_after:g} s, "
          f"{policy.rate_limit_starts} starts / {policy.rate_limit_window:g} s), in its own process; "
          f"supervisord: autorestart=true, startsecs=1\n   every kill hits a worker running >= {STABLE:g} s; "
          f"{args.victims} kills per side per condition, interleaved")
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as d:
        tmp = Path(d)
        for cond, chatty in (() if args.skip_restart else (("quiet", 0), ("busy", args.chatty))):
            what = "only the victims" if not chatty else f"+ {chatty} programs x 100 lines/s each"
            print(f"\n   {cond} ({what}):", flush=True)
            res = restart_condition(exe, tmp / cond, args.victims, chatty)
            ours, theirs = res["edge-station"], res["supervisord"]
            print(f"     edge-station supervisor : {ms(ours)}")
            print(f"     supervisord (baseline)  : {ms(theirs)}")
            print(f"     ratio of medians ours/supervisord: {np.median(ours) / np.median(theirs):6.3f}", flush=True)
        if args.skip_cpu:
            return 0
        windows = 3
        print(f"\n2) supervision CPU, {args.workers} stand-in workers at 1 heartbeat/s per supervisor, both up at "
              f"once, {windows} windows of {args.seconds:g} s: the supervisor process alone (% of one core, psutil)")
        cpu = cpu_condition(exe, tmp / "cpu", args.workers, args.seconds, windows)
        ours, theirs = cpu["edge-station"], cpu["supervisord"]
        verdict = "OK" if np.median(ours) <= 2.0 else "OVER TARGET"
        print(f"   edge-station supervisor process : {pcts(ours)}  (target <= 2 %: {verdict})")
        print(f"   supervisord process (baseline)  : {pcts(theirs)}")
        if np.median(theirs) > 0:
            print(f"   ratio of medians ours/supervisord: {np.median(ours) / np.median(theirs):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
