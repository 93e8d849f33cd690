"""Hardening benchmark: descriptors held vs supervision latency, station RSS over a soak, alias refusal.

    .venv/bin/python tests/bench/bench_hardening.py [--part fds|flood|soak|alias|all]
        [--kills 10] [--soak-seconds 300] [--cameras 16]

1. fds: idle TCP connections held by the station process (both ends are real sockets
   on 127.0.0.1, as an API flood holds them) against the kill -9 -> "starting" latency
   of a supervised worker. The soft open-files limit starts at 1,024 (systemd's default
   for services); the supervisor raises it at start. The last row fills the whole
   table first (the descriptor reserve is all that is left). Ratio: p50 / p50 with 0 held.
2. flood: a real station with its API (the default connection cap) and a demo camera
   running; a client in another process holds 0, 100, 1,100 and 5,000 connections to the
   API (idle ones reconnected as the server closes them, 20 sending one byte at a time),
   and the camera's worker is killed --kills times under each (each time once it has run
   stably, so it is restarted at once). Figures: the station's open descriptors, kill -9 ->
   running again with a new pid, whether the flood was still on at the end. Ratio: p50 /
   p50 with no flood.
3. soak: --cameras real workers (FFmpeg test pattern, 160x90 at 5 fps) for
   --soak-seconds with the heartbeat history attached; the station process's RSS
   (workers not included) every 15 s. Ratio: RSS at the end / RSS after the first minute.
4. alias: time to refuse a 9-level alias chain (a 490-byte cameras.yaml) against the
   time to read the shipped example config/cameras.yaml.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
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

from app.services.ports import HeartbeatHistory  # noqa: E402
from app.store.yaml_io import ConfigFileError, parse_cameras_file  # noqa: E402
from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent, WorkerSpec, WorkerState  # noqa: E402
from tests.support.flood import FLOOD  # noqa: E402

FAKE = (sys.executable, str(REPO / "tests" / "reliability" / "fakeworkers" / "fakeworker.py"))


def wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def hold_connections(n: int) -> tuple[socket.socket, list[socket.socket]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    held: list[socket.socket] = []
    for _ in range(n):
        c = socket.create_connection(srv.getsockname())
        s, _ = srv.accept()
        held += [c, s]
    return srv, held


def bench_fds(kills: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-hardening-"))
    policy = RestartPolicy(heartbeat_interval=0.2, stable_after=0.3, backoff_initial=0.1, rate_limit_starts=1000)
    sup = Supervisor(tmp / "run", tmp / "logs", policy=policy)
    starting = threading.Event()

    def on_event(ev: SupervisorEvent) -> None:
        if ev.kind == "state" and ev.detail.get("to") == "starting":
            starting.set()

    sup.subscribe(on_event)
    sup.start()
    print(f"soft open-files limit: 1024 before start, {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} after")
    sup.start_worker(WorkerSpec(camera_id=1, name="c1", source="test://moving", command=FAKE))
    rows = []
    base = None
    try:
        for n in (0, 500, 1000, 5000, "full"):
            srv, held = hold_connections(0 if n == "full" else int(n))
            filler: list[int] = []
            lat = []
            for _ in range(kills):
                wait_until(lambda: sup.status(1).state == WorkerState.RUNNING and (sup.status(1).uptime or 0) > 0.35,
                           20, "worker running")
                if n == "full":
                    while True:
                        try:
                            filler.append(os.open(os.devnull, os.O_RDONLY))
                        except OSError:
                            break
                starting.clear()
                pid = sup.status(1).pid
                t0 = time.perf_counter()
                os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
                ok = starting.wait(20)
                lat.append((time.perf_counter() - t0) * 1000 if ok else float("nan"))
                for fd in filler:
                    os.close(fd)
                filler = []
            p50 = float(np.nanmedian(lat))
            base = base or p50
            open_fds = len(os.listdir("/proc/self/fd"))
            rows.append((str(n), open_fds, p50, float(np.nanpercentile(lat, 95)), p50 / base,
                         sum(1 for x in lat if x != x)))
            for s in held:
                s.close()
            srv.close()
    finally:
        sup.shutdown()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(f"{'connections':>12} {'fds open':>9} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>6} {'no respawn':>10}")
    for n, fds, p50, p95, ratio, lost in rows:
        print(f"{n:>12} {fds:>9} {p50:8.1f} {p95:8.1f} {ratio:6.2f} {lost:>10}")


def bench_flood(kills: int) -> None:
    from app.api import ApiServer
    from app.domain.operations import CameraRef
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    tmp = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    # A worker that ran 1 s is stable, so its crash is restarted at once (the policy's own
    # rule): the figure is supervision and spawning, not the backoff's doubling.
    policy = RestartPolicy(stable_after=1.0, rate_limit_starts=1000)
    st = Station(StationOptions(paths=resolve_paths(tmp / "data"), seed_demo=True, autostart=False,
                                policy=policy)).open()
    api = ApiServer(st, port=0).start()
    me = psutil.Process()
    cam = next(c.id for c in st.cameras() if c.name == "Lobby")
    rows = []
    base = None

    def stable_pid() -> int | None:
        s = st.parts().supervisor.status(cam)
        return s.pid if s.state == WorkerState.RUNNING and (s.uptime or 0) > policy.stable_after + 0.2 else None

    def respawned(old: int) -> bool:
        s = st.parts().supervisor.status(cam)
        return s.state == WorkerState.RUNNING and s.pid not in (None, old)

    try:
        st.call("start_camera", CameraRef(cam), force="domain")
        for n in (0, 100, 1100, 5000):
            flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(api.port), str(n), "86400"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            try:
                ready = flood.stdout.readline().split()  # type: ignore[union-attr]
                held = int(ready[1]) if len(ready) == 2 else -1
                lat, fds = [], []
                for _ in range(kills):
                    wait_until(lambda: stable_pid() is not None, 60, "the camera running stably")
                    pid = stable_pid()
                    fds.append(me.num_fds())
                    t0 = time.perf_counter()
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
                    try:
                        wait_until(lambda p=pid: respawned(p), 30, "the worker respawned")  # type: ignore[misc]
                        lat.append((time.perf_counter() - t0) * 1000)
                    except RuntimeError:
                        lat.append(float("nan"))
                p50 = float(np.nanmedian(lat))
                base = base or p50
                rows.append((n, held, max(fds), p50, float(np.nanpercentile(lat, 95)), p50 / base,
                             sum(1 for x in lat if x != x), "yes" if flood.poll() is None else "NO"))
            finally:
                flood.stdin.close()  # type: ignore[union-attr]
                flood.kill()
                flood.wait(10)
                flood.stdout.close()  # type: ignore[union-attr]
    finally:
        api.stop()
        st.close()
    print(f"API connection cap {api.max_connections}, request deadline {api.request_timeout:g} s")
    print(f"{'asked':>6} {'held':>6} {'station fds':>11} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>6} {'no respawn':>10} "
          f"{'flood on':>8}")
    for n, held, fds_max, p50, p95, ratio, lost, alive in rows:
        print(f"{n:>6} {held:>6} {fds_max:>11} {p50:8.1f} {p95:8.1f} {ratio:6.2f} {lost:>10} {alive:>8}")

def bench_soak(seconds: float, cameras: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    sup = Supervisor(tmp / "run", tmp / "logs", policy=RestartPolicy(heartbeat_interval=1.0))
    history = HeartbeatHistory()
    sup.start()
    history.attach(sup)
    me = psutil.Process()
    try:
        for cid in range(1, cameras + 1):
            sup.start_worker(WorkerSpec(camera_id=cid, name=f"c{cid}", source="test://moving?size=160x90&rate=5"))
        wait_until(lambda: all(s.state == WorkerState.RUNNING for s in sup.statuses().values()), 120, "all running")
        t0 = time.monotonic()
        samples: list[tuple[float, float]] = []
        while True:
            el = time.monotonic() - t0
            samples.append((el, me.memory_info().rss / 2**20))
            if el >= seconds:
                break
            time.sleep(min(15.0, seconds - el))
        restarts = sum(s.restarts for s in sup.statuses().values())
    finally:
        history.detach()
        sup.shutdown()
    after_minute = next((r for t, r in samples if t >= 60), samples[0][1])
    end = samples[-1][1]
    later = [(t, r) for t, r in samples if t >= 60]
    slope = np.polyfit([t for t, _ in later], [r for _, r in later], 1)[0] * 3600 if len(later) >= 3 else float("nan")
    print(f"soak: {cameras} cameras, {seconds:.0f} s, restarts {restarts}")
    print("  t (s)  RSS (MiB)")
    for t, r in samples:
        print(f"  {t:5.0f}  {r:8.1f}")
    print(f"RSS after 1 min {after_minute:.1f} MiB, at the end {end:.1f} MiB, ratio {end / after_minute:.3f}, "
          f"slope after 1 min {slope:+.2f} MiB/h")


def bench_alias() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-alias-"))
    bomb = tmp / "bomb.yaml"
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb.write_text("\n".join(lines) + "\ncameras: []\n")
    example = REPO / "config" / "cameras.yaml"

    def timed(fn, runs: int = 20) -> float:  # type: ignore[no-untyped-def]
        out = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return float(np.median(out)) * 1000

    def refuse() -> None:
        try:
            parse_cameras_file(bomb)
        except ConfigFileError:
            return
        raise AssertionError("the alias chain was accepted")

    base = timed(lambda: parse_cameras_file(example))
    bomb_ms = timed(refuse)
    print(f"alias chain ({bomb.stat().st_size} bytes, 9 levels): refused in {bomb_ms:.2f} ms; "
          f"the example config ({example.stat().st_size} bytes) reads in {base:.2f} ms; ratio {bomb_ms / base:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["fds", "flood", "soak", "alias", "all"], default="all")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--soak-seconds", type=float, default=300.0)
    ap.add_argument("--cameras", type=int, default=16)
    a = ap.parse_args()
    if a.part in ("alias", "all"):
        bench_alias()
    if a.part in ("fds", "all"):
        bench_fds(a.kills)
    if a.part in ("flood", "all"):
        bench_flood(a.kills)
    if a.part in ("soak", "all"):
        bench_soak(a.soak_seconds, a.cameras)
    return 0


if __name__ == "__main__":
    sys.exit(main())
