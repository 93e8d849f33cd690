"""Fleet start: how long until N cameras run, and what one worker start costs.

    .venv/bin/python tests/bench/bench_fleetstart.py [--cameras 16,48,80] [--rounds 3]
        [--launchers spawn,zygote] [--source test://moving?size=320x180&rate=10]

For every N and every launcher (``spawn``: one ``python -m app.worker`` exec per camera;
``zygote``: a fork of the pre-imported worker launcher, see docs/architecture.md), in
interleaved rounds (the launchers alternate, their order flips every round):

* **to RUNNING** -- from just before ``Supervisor.start()`` to the moment the last of the N
  cameras sent its first heartbeat with decoded frames (``decoded > 0``), seen by a
  subscriber on the supervisor thread (``time.monotonic`` on both sides). The cameras are
  started one ``start_worker`` call after the other, as the station's autostart does.
  ``issued`` is when the last ``start_worker`` call returned.
* **CPU per worker start** -- user + system CPU seconds of each worker process at its first
  frames heartbeat (psutil, read on the supervisor thread when that heartbeat arrives):
  imports, argument parsing, opening the source, the first decodes. The median over the
  round's workers. For ``zygote`` the launcher's own CPU (its imports, paid once) is given
  separately.
* **supervisor CPU** -- this process's CPU seconds (getrusage) from start to the last
  camera running.
* **worker PSS** -- the median proportional set size of the round's workers once all run
  (psutil ``memory_full_info``, read after the timing): forked workers share the launcher's
  pages.

Also printed once: ``-X importtime``-free wall and CPU of the worker's imports in a fresh
interpreter (``python -c 'import app.worker...'``) against ``python -c pass``.

``--station``: the same for a whole station (``Station.open()`` on a SQLite data dir holding N
active cameras: store, supervisor, autostart through the router) to every camera RUNNING with
frames, polled every 20 ms; the launcher is chosen by ``EDGE_STATION_WORKER_LAUNCHER``. The
station's heartbeat interval is its default (1 s), so the figure includes up to 1 s of waiting
for the heartbeat that carries the first frames.

Each round's supervisor is shut down and every process it started is waited for (psutil, by
the owner token in their environment) before the next round begins.
Results: medians with min-max per (N, launcher), and the zygote/spawn ratio.
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent, WorkerSpec  # noqa: E402
from app.supervisor.proctree import OWNER_ENV, find_by_env  # noqa: E402

WORKER_IMPORTS = ("import app.worker.cli, app.worker.heartbeat, app.worker.motion, app.worker.preview, "
                  "app.worker.sources, app.worker.capture, app.worker.evidence")


def _cpu(p: psutil.Process) -> float | None:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def has_launchers() -> bool:
    return "launcher" in inspect.signature(Supervisor.__init__).parameters


def one_round(n: int, launcher: str, source: str, hb: float, timeout: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="fleetstart-"))
    owner = f"bench{secrets.token_hex(5)}"
    policy = RestartPolicy(heartbeat_interval=hb, heartbeat_timeout=max(30.0, 4 * hb),
                           start_timeout=max(60.0, timeout), stable_after=600.0)
    kw: dict[str, Any] = {"launcher": launcher} if has_launchers() else {}
    sup = Supervisor(tmp / "run", tmp / "logs", policy=policy, owner=owner,
                     preview_root=tmp / "preview", **kw)
    frames_at: dict[int, float] = {}
    worker_cpu: dict[int, float] = {}
    done = threading.Event()

    def on_event(ev: SupervisorEvent) -> None:
        if ev.kind != "heartbeat" or ev.camera_id in frames_at:
            return
        if int(ev.detail.get("decoded") or 0) <= 0:
            return
        frames_at[ev.camera_id] = time.monotonic()
        st = sup.status(ev.camera_id)
        if st.pid is not None:
            with_cpu = None
            try:
                with_cpu = _cpu(psutil.Process(st.pid))
            except psutil.Error:
                pass
            if with_cpu is not None:
                worker_cpu[ev.camera_id] = with_cpu
        if len(frames_at) >= n:
            done.set()

    sup.subscribe(on_event)
    cpu0 = _self_cpu()
    t0 = time.monotonic()
    sup.start()
    try:
        for cid in range(1, n + 1):
            sup.start_worker(WorkerSpec(camera_id=cid, name=f"cam{cid}", source=source))
        issued = time.monotonic() - t0
        ok = done.wait(timeout)
        total = (max(frames_at.values()) - t0) if ok else float("nan")
        sup_cpu = _self_cpu() - cpu0
        pss: list[float] = []
        for cid in range(1, n + 1):  # after the timing: smaps reads are not free
            pid = sup.status(cid).pid
            if pid is not None:
                try:
                    pss.append(psutil.Process(pid).memory_full_info().pss / 2**20)
                except (psutil.Error, AttributeError):
                    pass
        launcher_cpu = None
        zyg = getattr(sup, "launcher_pid", None)
        if callable(zyg):
            zpid = zyg()
            if zpid:
                try:
                    launcher_cpu = _cpu(psutil.Process(zpid))
                except psutil.Error:
                    launcher_cpu = None
    finally:
        sup.shutdown(timeout=5.0)
        deadline = time.monotonic() + 15.0
        left = find_by_env(OWNER_ENV, owner)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = find_by_env(OWNER_ENV, owner)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
    return {"n": n, "launcher": launcher, "ok": ok, "total": total, "issued": issued,
            "running": len(frames_at), "worker_cpu": statistics.median(worker_cpu.values()) if worker_cpu else None,
            "sup_cpu": sup_cpu, "launcher_cpu": launcher_cpu,
            "pss": statistics.median(pss) if pss else None}


def prepare_station(n: int, source: str) -> Path:
    """A data dir with ``n`` active cameras (made once per N, reused by every round)."""
    from app.domain.camera import Camera
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    data = Path(tempfile.mkdtemp(prefix=f"fleetstart-station-{n}-"))
    st = Station(StationOptions(paths=resolve_paths(data), seed_demo=False, autostart=False)).open()
    try:
        for i in range(n):
            st.add_camera(Camera(name=f"cam {i + 1}", source=source))
    finally:
        st.close()
    return data


def station_round(data: Path, n: int, launcher: str, timeout: float) -> dict[str, Any]:
    """A real station on ``data``: from ``Station.open()`` (store, supervisor, autostart through the
    router) to every camera RUNNING with decoded frames (the supervisor's statuses, polled every 20 ms)."""
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    owner = f"bench{secrets.token_hex(5)}"
    os.environ["EDGE_STATION_WORKER_LAUNCHER"] = launcher
    cpu0 = _self_cpu()
    t0 = time.monotonic()
    st = Station(StationOptions(paths=resolve_paths(data), seed_demo=False, autostart=True, owner=owner))
    total = float("nan")
    opened = float("nan")
    running = 0
    try:
        st.open()
        opened = time.monotonic() - t0
        sup = st.parts().supervisor
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            statuses = sup.statuses().values()
            running = sum(1 for w in statuses if w.state.value == "running" and (w.decoded or 0) > 0)
            if running >= n:
                total = time.monotonic() - t0
                break
            time.sleep(0.02)
        sup_cpu = _self_cpu() - cpu0
    finally:
        st.close()
        os.environ.pop("EDGE_STATION_WORKER_LAUNCHER", None)
        deadline = time.monotonic() + 15.0
        while find_by_env(OWNER_ENV, owner) and time.monotonic() < deadline:
            time.sleep(0.1)
    return {"n": n, "launcher": launcher, "ok": total == total, "total": total, "issued": opened,
            "running": running, "worker_cpu": None, "sup_cpu": sup_cpu, "launcher_cpu": None, "pss": None}


def import_cost(rounds: int = 5) -> None:
    def run(code: str) -> tuple[float, float]:
        t = time.monotonic()
        p = psutil.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)})
        p.wait()
        wall = time.monotonic() - t
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, r.ru_utime + r.ru_stime

    walls: dict[str, list[float]] = {"pass": [], "imports": []}
    cpus: dict[str, list[float]] = {"pass": [], "imports": []}
    for _ in range(rounds):
        for name, code in (("pass", "pass"), ("imports", WORKER_IMPORTS)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, _ = run(code)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            walls[name].append(wall)
            cpus[name].append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    for name in ("pass", "imports"):
        print(f"  fresh interpreter, {name:8s}: wall {_mm(walls[name], 's')}, CPU {_mm(cpus[name], 's')}")
    top = subprocess.run([sys.executable, "-X", "importtime", "-c", WORKER_IMPORTS], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False).stderr
    rows = []
    for line in top.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    print("  -X importtime, largest cumulative (us):")
    for us, name in sorted(rows, reverse=True)[:8]:
        print(f"    {us:8d} {name}")


def _mm(values: list[float], unit: str) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "n/a"
    return f"{statistics.median(vals):.3f} {unit} ({min(vals):.3f}-{max(vals):.3f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", default="16,48,80")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--launchers", default="spawn,zygote")
    ap.add_argument("--source", default="test://moving?size=320x180&rate=10")
    ap.add_argument("--heartbeat-interval", type=float, default=0.25)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--no-imports", action="store_true", help="skip the import-cost lines")
    ap.add_argument("--station", action="store_true",
                    help="time a whole station (Station.open with autostart of N cameras in SQLite) "
                         "instead of a bare Supervisor")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        print("SKIP: the fleet start bench needs Linux (pidfd, /proc)")
        return 77
    try:
        import av  # noqa: F401
    except ImportError:
        print("SKIP: PyAV is not installed")
        return 77
    launchers = [x for x in args.launchers.split(",") if x]
    if not has_launchers():
        launchers = ["spawn"]
    counts = [int(x) for x in args.cameras.split(",") if x]
    print(f"fleet start: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, source {args.source}, "
          f"heartbeat every {args.heartbeat_interval:g} s")
    if not args.no_imports:
        print("worker imports:")
        import_cost()
    results: list[dict[str, Any]] = []
    if args.station:
        print("mode: whole station (Station.open -> autostart -> every camera running with frames; "
              "'issued' = open() returned)")
    for n in counts:
        data = prepare_station(n, args.source) if args.station else None
        for r in range(args.rounds):
            order = launchers if r % 2 == 0 else launchers[::-1]
            for launcher in order:
                if data is not None:
                    res = station_round(data, n, launcher, args.timeout)
                else:
                    res = one_round(n, launcher, args.source, args.heartbeat_interval, args.timeout)
                results.append(res)
                wc = res["worker_cpu"]
                print(f"  N={n:3d} {launcher:6s} round {r + 1}: all running {res['total']:.2f} s "
                      f"({res['running']}/{n}; starts issued by {res['issued']:.2f} s), worker CPU at first frames "
                      f"{'n/a' if wc is None else f'{wc:.3f} s'}, supervisor CPU {res['sup_cpu']:.2f} s"
                      + ("" if res["launcher_cpu"] is None else f", launcher CPU {res['launcher_cpu']:.2f} s")
                      + ("" if res["pss"] is None else f", worker PSS {res['pss']:.1f} MiB"),
                      flush=True)
    print("summary (median, min-max):")
    for n in counts:
        base = None
        for launcher in launchers:
            rows = [x for x in results if x["n"] == n and x["launcher"] == launcher]
            totals = [x["total"] for x in rows]
            med = statistics.median([t for t in totals if t == t]) if any(t == t for t in totals) else None
            ratio = ""
            if launcher == launchers[0]:
                base = med
            elif base and med:
                ratio = f"  ratio {med / base:.2f}x of {launchers[0]}"
            print(f"  N={n:3d} {launcher:6s}: to all RUNNING with frames {_mm(totals, 's')}; "
                  f"worker start CPU {_mm([x['worker_cpu'] for x in rows if x['worker_cpu'] is not None], 's')}; "
                  f"supervisor CPU {_mm([x['sup_cpu'] for x in rows], 's')}; "
                  f"worker PSS {_mm([x['pss'] for x in rows if x['pss'] is not None], 'MiB')}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
