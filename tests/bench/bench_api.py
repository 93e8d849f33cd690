"""API benchmark: what the HTTP layer costs over a direct facade call, and throughput with 16 clients.

    .venv/bin/python tests/bench/bench_api.py [--calls 2000] [--clients 16] [--seconds 5]

One station (temp data dir, demo cameras, one worker running so ``camera_status`` reads a
live process), its API on an ephemeral port, in this process:

1. ``camera_status`` of a running camera, forced to the legacy path, ``--calls`` times each:
   directly through ``Station.call`` (the baseline) and through the API with one keep-alive
   client (JSON, token check, routing, serialisation, HTTP on 127.0.0.1). p50 / p99 of
   both and their ratio; the difference is the API's own cost.
2. Requests per second with ``--clients`` threads, each with its own keep-alive connection,
   for ``--seconds``: ``camera_status`` (a read) and ``list_status`` (every camera), against the
   same number of direct calls from as many threads (the facade's own ceiling, same run).

Client and server share this process (and its GIL): the figures are a floor for the API.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.api import ApiClient, ApiServer  # noqa: E402
from app.domain.operations import CameraRef, ListStatus  # noqa: E402
from app.paths import resolve_paths  # noqa: E402
from app.station import Station, StationOptions  # noqa: E402


def timed(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return out / 1e6  # ms


def throughput(make_call, clients: int, seconds: float) -> tuple[float, int]:
    stop = threading.Event()
    counts = [0] * clients
    errors = [0] * clients

    def run(i: int) -> None:
        call = make_call()
        while not stop.is_set():
            if not call():
                errors[i] += 1
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0), sum(errors)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        station = Station(StationOptions(paths=resolve_paths(tmp), seed_demo=True, autostart=False)).open()
        api = ApiServer(station, port=0).start()
        try:
            cam = next(c.id for c in station.cameras() if c.active)
            station.call("start_camera", CameraRef(cam))
            deadline = time.monotonic() + 20
            while station.call("camera_status", CameraRef(cam)).state.value != "running":
                if time.monotonic() > deadline:
                    raise SystemExit("the camera did not start")
                time.sleep(0.1)
            client = ApiClient(api.url, api.token)

            def direct() -> bool:
                station.call("camera_status", CameraRef(cam), force="legacy", actor="bench")
                return True

            def over_http() -> bool:
                return client.camera("status", cam, force="legacy").status == 200

            for fn in (direct, over_http):  # warm up
                timed(fn, 100)
            d = timed(direct, args.calls)
            h = timed(over_http, args.calls)
            print(f"1. camera_status round trip, {args.calls} calls each (forced legacy, one running worker)")
            print(f"   {'':<18}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
            for name, a in (("direct facade", d), ("API (HTTP+JSON)", h)):
                print(f"   {name:<18}{np.percentile(a, 50):>10.3f}{np.percentile(a, 99):>10.3f}{a.mean():>10.3f}")
            print(f"   ratio API/direct: p50 x{np.percentile(h, 50) / np.percentile(d, 50):.1f}, "
                  f"p99 x{np.percentile(h, 99) / np.percentile(d, 99):.1f}; "
                  f"API overhead p50 {np.percentile(h, 50) - np.percentile(d, 50):.3f} ms")

            print(f"\n2. requests per second, {args.clients} clients, {args.seconds:g} s each")

            def api_caller(path_fn):
                def make():
                    c = ApiClient(api.url, api.token)
                    return lambda: path_fn(c)
                return make

            def direct_caller(op, req):
                def make():
                    return lambda: station.call(op, req, force="legacy", actor="bench") is not None
                return make

            rows = [
                ("camera_status", api_caller(lambda c: c.camera("status", cam, force="legacy").status == 200),
                 direct_caller("camera_status", CameraRef(cam))),
                ("list_status", api_caller(lambda c: c.cameras(force="legacy").status == 200),
                 direct_caller("list_status", ListStatus())),
            ]
            print(f"   {'operation':<16}{'API req/s':>12}{'direct call/s':>15}{'ratio':>8}{'API errors':>12}")
            for name, api_make, direct_make in rows:
                api_rps, errs = throughput(api_make, args.clients, args.seconds)
                direct_rps, _ = throughput(direct_make, args.clients, args.seconds)
                print(f"   {name:<16}{api_rps:>12.0f}{direct_rps:>15.0f}{api_rps / direct_rps:>8.2f}{errs:>12}")
            client.close()
        finally:
            api.stop()
            station.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
