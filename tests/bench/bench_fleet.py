"""What one station adds to its PostgreSQL database, and how ``fleet status`` scales with 100 stations.

Run: ``EDGE_STATION_TEST_PG_URL=postgresql+psycopg://... python tests/bench/bench_fleet.py
[--window 20] [--rounds 3] [--status-rounds 15]``

1. Load: a real headless station (one ``test://moving`` camera, 160x90 at 5 fps) on a database
   of its own, in interleaved rounds of three sides, each observed the same way over
   ``--window`` seconds once the station has heartbeated: an idle database (baseline: what
   the sampling itself costs), the station with its fleet heartbeat every 5 s, and the same
   station with the heartbeat effectively off (``EDGE_STATION_HEARTBEAT_INTERVAL=1e6``: it
   registers once and never beats). Measured from ``pg_stat_database`` (``xact_commit`` and
   ``xact_rollback`` deltas of that database: SQLAlchemy ends every read with a rollback, so
   both are transactions the station caused) and ``pg_stat_activity`` (connections to that
   database, sampled every 0.5 s, max). ``pg_stat_statements`` is used when it is loaded
   (calls delta); it is not on the CI server, whose preload list is empty.
2. ``fleet status``: the registry read and the text it prints, in-process (``registry.all()``
   + ``format_status``), on a database holding 1 station and on one holding 100, interleaved,
   ``--status-rounds`` rounds each; and the command as a user runs it (a subprocess), 1 vs 100.

Prints medians with min-max and the ratios against the baseline of the same run. A run
without a PostgreSQL server prints ``SKIP: <reason>`` and exits 77.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.waiting import wait_for  # noqa: E402

ENV_URL = "EDGE_STATION_TEST_PG_URL"


def skip(reason: str) -> None:
    print(f"SKIP: {reason}")
    sys.exit(77)


def admin(url: str):
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password or None,
                           dbname=u.database or "postgres", autocommit=True)


def new_db(server: str, label: str) -> str:
    from sqlalchemy.engine import make_url

    name = f"edge_bench_{label}_{uuid.uuid4().hex[:8]}"
    with admin(server) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_db(server: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    with admin(server) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g} ({min(xs):.3g}-{max(xs):.3g})"


# ---------------------------------------------------------------- 1. load of one station


def counters(server: str, db: str) -> tuple[int, int, int | None]:
    with admin(server) as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        commit, rollback = c.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
                                     (db,)).fetchone()
        calls = None
        try:
            calls = c.execute("SELECT sum(s.calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                              "WHERE d.datname = %s", (db,)).fetchone()[0]
        except Exception:
            calls = None
    return int(commit), int(rollback), (int(calls) if calls is not None else None)


def connections(server: str, db: str) -> int:
    with admin(server) as c:
        return int(c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)).fetchone()[0])


def observe(server: str, url: str, window: float, proc: subprocess.Popen | None = None) -> dict[str, float]:
    """The database's transaction rate over ``window`` s, and its connections at both ends.

    PostgreSQL flushes a backend's counters at most once a second, at both ends of the window
    alike, so the rate over a window of many seconds is right without waiting for a flush. The
    window is spent waiting on the station (``proc``): it must not exit meanwhile.
    """
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    c0, r0, s0 = counters(server, db)
    t0 = time.monotonic()
    conns = [connections(server, db)]
    if proc is None:
        threading.Event().wait(window)
    else:
        try:
            code = proc.wait(timeout=window)
        except subprocess.TimeoutExpired:
            pass
        else:
            raise RuntimeError(f"the station exited with {code} during the measured window")
    conns.append(connections(server, db))
    c1, r1, s1 = counters(server, db)
    dt = time.monotonic() - t0
    out = {"commits_s": (c1 - c0) / dt, "rollbacks_s": (r1 - r0) / dt, "xacts_s": (c1 - c0 + r1 - r0) / dt,
           "conns_max": float(max(conns)), "conns_median": float(statistics.median(conns))}
    if s0 is not None and s1 is not None:
        out["statements_s"] = (s1 - s0) / dt
    return out


def start_station(url: str, data_dir: Path, name: str, interval: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), EDGE_STATION_HEARTBEAT_INTERVAL=interval)
    env.pop("EDGE_STATION_DB", None)
    return subprocess.Popen([sys.executable, "-m", "app", "headless", "--db", url, "--data-dir", str(data_dir),
                             "--station", name, "--no-demo", "--api-port", "0", "--status-interval", "0"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_running(url: str, name: str, data_dir: Path, timeout: float = 60.0) -> None:
    """Until the station has registered and its camera runs (asked through its own API), so that the
    open's own writes (the seeding, the first start) are over."""
    from app.api.client import ApiClient, ClientError
    from app.store.db import make_engine
    from app.store.stations import StationRegistry
    from app.store.uow import Store

    engine = make_engine(url)
    try:
        reg = StationRegistry(Store(engine))
        wait_for(lambda: any(r.name == name and r.state.value == "running" for r in reg.all()[1]), timeout,
                 f"station {name} registered", interval=0.2)
    finally:
        engine.dispose()

    def camera_running() -> bool:
        try:
            client = ApiClient.for_data_dir(data_dir)
        except (ClientError, OSError):
            return False  # its API is not up yet
        try:
            items = client.request("GET", "/api/v1/cameras").json["data"]["items"]
        except (ClientError, OSError, KeyError, TypeError):
            return False
        finally:
            client.close()
        return bool(items) and all(i["state"] == "running" for i in items)

    wait_for(camera_running, timeout, f"station {name}'s camera running", interval=0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def bench_load(server: str, window: float, rounds: int) -> None:
    from app.domain import Camera
    from app.store import open_store

    url = new_db(server, "load")
    try:
        store = open_store(url)
        with store.uow() as uow:
            uow.cameras.add(Camera(name="Bench", source="test://moving?size=160x90&rate=5"))
            uow.commit()
        store.dispose()
        sides: dict[str, list[dict[str, float]]] = {"idle database": [], "station, heartbeat 5 s": [],
                                                      "station, no heartbeat": []}
        with tempfile.TemporaryDirectory(prefix="edge-bench-fleet-") as tmp:
            for r in range(rounds):
                order = list(sides) if r % 2 == 0 else list(reversed(sides))
                for side in order:
                    if side == "idle database":
                        sides[side].append(observe(server, url, window))
                        continue
                    interval = "5" if "5 s" in side else "1e6"
                    name = f"bench-{r}-{interval}"
                    proc = start_station(url, Path(tmp) / name, name, interval)
                    try:
                        wait_running(url, name, Path(tmp) / name)
                        sides[side].append(observe(server, url, window, proc))
                    finally:
                        stop(proc)
                print(f"  round {r + 1}/{rounds} done", flush=True)
    finally:
        drop_db(server, url)
    print(f"\n1. PostgreSQL load of one headless station (1 camera), {rounds} interleaved rounds of {window:g} s, "
          "median (min-max)")
    keys = ["xacts_s", "commits_s", "rollbacks_s", "conns_max", "conns_median"]
    if all("statements_s" in o for obs in sides.values() for o in obs):
        keys.append("statements_s")
    print(f"   {'side':<26}" + "".join(f"{k:>22}" for k in keys))
    for side, obs in sides.items():
        print(f"   {side:<26}" + "".join(f"{med([o[k] for o in obs]):>22}" for k in keys))
    base = statistics.median(o["xacts_s"] for o in sides["idle database"])
    on = statistics.median(o["xacts_s"] for o in sides["station, heartbeat 5 s"])
    off = statistics.median(o["xacts_s"] for o in sides["station, no heartbeat"])
    print(f"   the station adds {on - base:.2f} transactions/s over the idle database ({on / max(base, 1e-9):.1f}x "
          f"its baseline); of that the heartbeat {on - off:+.2f}/s (expected 0.4/s: every 5 s one UPDATE's commit and "
          "the pool's pre-ping on checkout, which PostgreSQL counts as a transaction too)")


# ---------------------------------------------------------------- 2. fleet status, 1 vs 100 stations


def fill(url: str, n: int) -> None:
    from app.domain.fleet import StationReport
    from app.store import open_store
    from app.store.stations import StationRegistry

    store = open_store(url)
    try:
        reg = StationRegistry(store)
        for i in range(n):
            sid = str(uuid.uuid4())
            reg.claim(sid, f"station-{i:03d}", version="0.1.0", host=f"box-{i:03d}", pid=1000 + i, gone_after=20.0,
                      report=StationReport(cameras_up=3, cameras_total=4, health="ok" if i % 10 else "degraded",
                                           stages={"rules": {"stage": i % 4, "percent": 10, "use_domain": True,
                                                             "latched": False},
                                                   "cameras": {"stage": 0, "percent": 0, "use_domain": False,
                                                               "latched": False}},
                                           problems=() if i % 10 else ("Gate: stream stalled",)))
            if i % 7 == 3:
                reg.mark_stopped(sid)
    finally:
        store.dispose()


def bench_status(server: str, rounds: int) -> None:
    from app.fleet.cli import format_status
    from app.store.db import make_engine
    from app.store.stations import StationRegistry
    from app.store.uow import Store

    urls = {1: new_db(server, "one"), 100: new_db(server, "hundred")}
    try:
        for n, url in urls.items():
            fill(url, n)
        engines = {n: make_engine(url) for n, url in urls.items()}
        regs = {n: StationRegistry(Store(e)) for n, e in engines.items()}
        inproc: dict[int, list[float]] = {1: [], 100: []}
        for n in (1, 100):  # warm the pools and the imports
            regs[n].all()
        for r in range(rounds):
            for n in ((1, 100) if r % 2 == 0 else (100, 1)):
                t0 = time.perf_counter()
                now, rows = regs[n].all()
                gone = regs[n].timing()[1]
                lines = format_status(now, rows, gone, "bench")
                inproc[n].append((time.perf_counter() - t0) * 1000)
                assert len(rows) == n and lines
        for e in engines.values():
            e.dispose()
        cli: dict[int, list[float]] = {1: [], 100: []}
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        for r in range(max(3, rounds // 3)):
            for n in ((1, 100) if r % 2 == 0 else (100, 1)):
                t0 = time.perf_counter()
                p = subprocess.run([sys.executable, "-m", "app", "fleet", "status", "--db", urls[n]], cwd=REPO_ROOT,
                                   env=env, capture_output=True, text=True, timeout=60)
                cli[n].append((time.perf_counter() - t0) * 1000)
                assert p.returncode == 0, p.stderr
        print("\n2. fleet status: 1 vs 100 registered stations, interleaved, median (min-max) ms")
        print(f"   in-process (registry read + text), {rounds} rounds: 1 station {med(inproc[1])}, "
              f"100 stations {med(inproc[100])}, ratio {statistics.median(inproc[100]) / statistics.median(inproc[1]):.2f}")
        print(f"   the command (a subprocess), {len(cli[1])} rounds: 1 station {med(cli[1])}, 100 stations "
              f"{med(cli[100])}, ratio {statistics.median(cli[100]) / statistics.median(cli[1]):.2f}")
    finally:
        for url in urls.values():
            drop_db(server, url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=20.0, help="seconds each side is observed per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--status-rounds", type=int, default=15)
    ap.add_argument("--only", choices=("load", "status"), default=None)
    args = ap.parse_args()
    server = os.environ.get(ENV_URL)
    if not server:
        skip(f"{ENV_URL} is not set (export it from scripts/ci_postgres.sh)")
    try:
        admin(server).close()
    except Exception as e:
        skip(f"the PostgreSQL server of {ENV_URL} does not answer: {e}")
    if args.only in (None, "status"):
        bench_status(server, args.status_rounds)
    if args.only in (None, "load"):
        bench_load(server, args.window, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
