"""API benchmark: ``GET /api/v1/cameras`` (list_status) against the direct facade call, in one run.

    .venv/bin/python tests/bench/bench_api.py [--clients 16] [--seconds 4] [--rounds 3]

One station (temp data dir, the 4 demo cameras, not started) with its API on an ephemeral port in
this process. The HTTP clients run in **another process** (``--clients`` connections, each its own
keep-alive connection, all on one asyncio loop: a cheap client), so client work does not share the
station's interpreter. Phases are
interleaved (direct, API, direct, API, ...) so both see the same machine; the figures are the
median of the rounds:

1. throughput with ``--clients`` concurrent callers: ``Station.call("list_status")`` from as many
   threads in the station's process (the baseline) vs ``GET /api/v1/cameras``; p50/p99 of each;
2. one caller: the round trip p50/p99 of both;
3. where the time of ``list_status`` goes: the call itself, and what opening a fresh SQLite
   connection (with the station's pragmas) costs, which every call paid before the engine pooled;
4. where the API's own time goes: answers/s of the guard alone (a refused token) and of the guard
   plus FastAPI's routing (an unknown path), against the whole ``GET /api/v1/cameras``;
5. peers, each a server in a process of its own on the same uvicorn (httptools, one loop), answering
   the same bytes the station answered to the same client: a bare ASGI function (the floor of any
   Python ASGI server here) and a one-route FastAPI application. They say how far any API on this
   stack could go against the direct call;
6. inside the station's process: the station's own API server (its thread, loop, protocol and
   limits, with the station's threads running) answering with a bare ASGI function, then with the
   guard in front of it: what the endpoint costs beyond serving HTTP from this process.

Ratios are API / direct (throughput: higher is better; latency: lower is better).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.api import ApiServer  # noqa: E402
from app.domain.operations import ListStatus  # noqa: E402
from app.platform.paths import resolve_paths  # noqa: E402
from app.station import Station, StationOptions  # noqa: E402

CLIENT = textwrap.dedent("""
    # N keep-alive connections on one asyncio loop: cheap per request, so the client is not the limit
    import asyncio, json, sys, time
    host, port, token, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    request = (f"GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\nAuthorization: Bearer {token}\\r\\n"
               "Accept: application/json\\r\\n\\r\\n").encode()

    async def client(stop, lat, errors):
        reader, writer = await asyncio.open_connection(host, port)
        while not stop.is_set():
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
        writer.close()

    async def phase(clients, seconds):
        stop, lat, errors = asyncio.Event(), [], []
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(client(stop, lat, errors)) for _ in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        flat = sorted(lat)
        return {"count": len(flat), "elapsed": elapsed, "errors": len(errors),
                "p50": flat[len(flat) // 2] * 1e3, "p99": flat[int(len(flat) * 0.99)] * 1e3}

    for line in sys.stdin:
        clients, seconds = line.split()
        print(json.dumps(asyncio.run(phase(int(clients), float(seconds)))), flush=True)
""")



PEER = textwrap.dedent("""
    # a peer server: the same uvicorn as the station's API, answering fixed bytes
    import sys, uvicorn
    kind, body_file = sys.argv[1], sys.argv[2]
    body = open(body_file, "rb").read()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def bare(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app = bare
    if kind == "fastapi":
        from fastapi import FastAPI, Response
        app = FastAPI()

        @app.get("/api/v1/cameras")
        async def cameras() -> Response:
            return Response(body, media_type="application/json")

    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, http="httptools", loop="uvloop", ws="none", lifespan="off",
                            log_level="error", access_log=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])
""")


def peer_phases(kind: str, body: bytes, token: str, clients: int, seconds: float, rounds: int) -> dict:
    """Answers/s and latency of a peer server in its own process, through the same client."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        srv = subprocess.Popen([sys.executable, "-c", PEER, kind, f.name], stdout=subprocess.PIPE, text=True)
        try:
            port = int(srv.stdout.readline())
            cl = subprocess.Popen([sys.executable, "-c", CLIENT, "127.0.0.1", str(port), token, "/api/v1/cameras"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                api_phase(cl, clients, 0.5)  # warm-up
                return median([api_phase(cl, clients, seconds) for _ in range(rounds)])
            finally:
                cl.stdin.close()
                cl.wait(30)
                cl.stdout.close()
        finally:
            srv.terminate()
            srv.wait(30)
            srv.stdout.close()


def direct_phase(station: Station, clients: int, seconds: float) -> dict:
    stop = threading.Event()
    lat: list[list[float]] = [[] for _ in range(clients)]

    def run(i: int) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            station.call("list_status", ListStatus(), actor="bench")
            lat[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = np.array([x for v in lat for x in v])
    return {"count": len(flat), "elapsed": elapsed, "errors": 0,
            "p50": float(np.percentile(flat, 50)) * 1e3, "p99": float(np.percentile(flat, 99)) * 1e3}


def api_phase(proc: subprocess.Popen, clients: int, seconds: float) -> dict:
    proc.stdin.write(f"{clients} {seconds}\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def connect_cost(station: Station, n: int = 500) -> tuple[float, float]:
    """ms to open a fresh SQLite connection with the station's pragmas, and to take one from the pool."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    from app.store.db import _sqlite_pragmas

    fresh = create_engine(str(station.parts().store.engine.url), poolclass=NullPool)
    event.listen(fresh, "connect", _sqlite_pragmas)
    out = []
    for engine in (fresh, station.parts().store.engine):
        with engine.connect():
            pass
        t0 = time.perf_counter()
        for _ in range(n):
            with engine.connect():
                pass
        out.append((time.perf_counter() - t0) / n * 1e3)
    fresh.dispose()
    return out[0], out[1]


def row(name: str, d: dict) -> str:
    rps = d["count"] / d["elapsed"]
    return f"   {name:<22}{rps:>10.0f}{d['p50']:>10.3f}{d['p99']:>10.3f}{d['errors']:>8}"


def median(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in ("count", "elapsed", "errors", "p50", "p99")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        station = Station(StationOptions(paths=resolve_paths(tmp), seed_demo=True, autostart=False)).open()
        api = ApiServer(station, port=0, max_connections=64, discovery=False).start()
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, "127.0.0.1", str(api.port), api.token, "/api/v1/cameras"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            direct_phase(station, args.clients, 1.0)  # warm up both
            api_phase(proc, args.clients, 1.0)
            many = {"direct": [], "api": []}
            one = {"direct": [], "api": []}
            for _ in range(args.rounds):
                many["direct"].append(direct_phase(station, args.clients, args.seconds))
                many["api"].append(api_phase(proc, args.clients, args.seconds))
            for _ in range(args.rounds):
                one["direct"].append(direct_phase(station, 1, args.seconds / 2))
                one["api"].append(api_phase(proc, 1, args.seconds / 2))
            fresh_ms, pooled_ms = connect_cost(station)
            floor = in_station_floor(station, args.clients, args.seconds)
            import urllib.request
            req = urllib.request.Request(f"http://127.0.0.1:{api.port}/api/v1/cameras",
                                         headers={"Authorization": f"Bearer {api.token}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read()  # the station's own answer: the peers answer these bytes
            call_ms = median(one["direct"])["p50"]
            # the API's own layers: refused by the guard (no token), and routed by FastAPI to no endpoint
            layers = {}
            for name, path, token in (("guard only (401)", "/api/v1/cameras", "not-the-token-" + "x" * 20),
                                      ("guard + FastAPI routing (404)", "/api/v1/no-such-endpoint", api.token)):
                p2 = subprocess.Popen([sys.executable, "-c", CLIENT, "127.0.0.1", str(api.port), token, path],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                try:
                    layers[name] = api_phase(p2, args.clients, args.seconds)
                finally:
                    p2.stdin.close()
                    p2.wait(30)
                    p2.stdout.close()
        finally:
            proc.stdin.close()
            proc.wait(30)
            proc.stdout.close()
            api.stop()
            station.close()
        peers = {label: peer_phases(kind, body, "peer", args.clients, args.seconds, args.rounds)
                 for label, kind in (("bare ASGI on uvicorn", "bare"), ("one-route FastAPI", "fastapi"))}

    head = f"   {'':<22}{'calls/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
    for title, res, n in ((f"1. {args.clients} concurrent callers", many, args.clients), ("2. one caller", one, 1)):
        d, a = median(res["direct"]), median(res["api"])
        print(f"{title}, list_status of 4 cameras, median of {args.rounds} interleaved rounds of "
              f"{args.seconds if n > 1 else args.seconds / 2:g} s")
        print(head)
        print(row("direct Station.call", d))
        print(row("GET /api/v1/cameras", a))
        print(f"   ratio API/direct: throughput x{(a['count'] / a['elapsed']) / (d['count'] / d['elapsed']):.2f}, "
              f"p50 x{a['p50'] / d['p50']:.2f}, p99 x{a['p99'] / d['p99']:.2f}\n")
    print("3. where list_status's time goes (one caller)")
    print(f"   the call itself (p50)                 {call_ms:.3f} ms")
    print(f"   a fresh SQLite connection + pragmas   {fresh_ms:.3f} ms  (every call paid this with NullPool)")
    print(f"   a pooled connection                   {pooled_ms:.3f} ms")
    print(f"\n4. where the API's time goes: {args.clients} clients on cheaper paths (answers/s)")
    for name, d in layers.items():
        print(f"   {name:<32}{d['count'] / d['elapsed']:>10.0f}   p50 {d['p50']:.3f} ms")
    a = median(many["api"])
    print(f"   {'GET /api/v1/cameras (the whole)':<32}{a['count'] / a['elapsed']:>10.0f}   p50 {a['p50']:.3f} ms")
    d = median(many["direct"])
    d_rps = d["count"] / d["elapsed"]
    print(f"\n5. peers in processes of their own, {args.clients} clients, the same {len(body)} bytes "
          f"(median of {args.rounds} rounds); ratio to the direct call ({d_rps:.0f}/s)")
    for name, p in peers.items():
        rps = p["count"] / p["elapsed"]
        print(f"   {name:<32}{rps:>10.0f}   p50 {p['p50']:.3f} ms  p99 {p['p99']:.3f} ms   x{rps / d_rps:.2f}")
    print(f"   {'the station (GET /api/v1/cameras)':<32}{a['count'] / a['elapsed']:>10.0f}   p50 {a['p50']:.3f} ms  "
          f"p99 {a['p99']:.3f} ms   x{(a['count'] / a['elapsed']) / d_rps:.2f}")
    print(f"\n6. inside the station's process: its API server (thread, loop, protocol, limits) answering "
          f"{args.clients} clients with less than the endpoint; ratio to the direct call")
    for name, p in floor.items():
        rps = p["count"] / p["elapsed"]
        print(f"   {name:<32}{rps:>10.0f}   p50 {p['p50']:.3f} ms  p99 {p['p99']:.3f} ms   x{rps / d_rps:.2f}")
    return 0


def in_station_floor(station: Station, clients: int, seconds: float) -> dict:
    """The station's own API server with its application replaced: a bare ASGI function answering
    fixed bytes (the floor of any API inside this process), then the guard in front of it."""
    from unittest import mock

    import app.api.inline as inline_mod
    import app.api.middleware as middleware_mod

    body = b"x" * 1243
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def bare(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    out = {}
    for name, target, replacement in (
            ("bare ASGI, the station's server", middleware_mod, lambda app, server: bare),
            ("guard + bare ASGI", inline_mod, lambda app, server, enabled=True: bare)):
        attr = "Guard" if target is middleware_mod else "InlineReads"
        with mock.patch.object(target, attr, replacement):
            api = ApiServer(station, port=0, max_connections=64, discovery=False).start()
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, "127.0.0.1", str(api.port), api.token,
                                 "/api/v1/cameras"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            api_phase(proc, clients, 1.0)
            out[name] = api_phase(proc, clients, seconds)
        finally:
            proc.stdin.close()
            proc.wait(30)
            proc.stdout.close()
            api.stop()
    return out


if __name__ == "__main__":
    sys.exit(main())
