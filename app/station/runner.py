"""``edge-station headless``: run a station without a window until TERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from app.station.facade import Station
from app.station.port import StationPort


def status_line(station: StationPort) -> str:
    """Every camera's state on one line (the headless runner prints it every few seconds)."""
    parts = []
    for st in station.live_status():
        fps = f" {st.fps:.1f} fps" if st.fps is not None and st.state.value == "running" else ""
        src = f" source {st.source}" if st.source and st.source != "up" else ""
        parts.append(f"{st.name}: {st.state.value}{fps}{src}")
    return "; ".join(parts) or "no cameras"


def run_headless(station: Station, duration: float | None = None, status_interval: float = 10.0) -> int:
    """Run until SIGTERM/SIGINT (or ``duration`` seconds); stop every worker before returning.

    Prints a status line every ``status_interval`` seconds (0 = never).
    """
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        station.open()  # cleans up after itself when it fails
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        raise
    try:
        active = [c.name for c in station.cameras() if c.active]
        print(f"edge-station headless: {len(station.cameras())} cameras ({len(active)} active); "
              f"data dir {station.paths.data_dir}. Stop with Ctrl-C.", flush=True)
        if station.api is not None:
            print(f"control API on {station.api.url} (token in {station.api.token_path})", flush=True)
        member = station.fleet
        if member is not None and member.claim is not None:
            if not station.paths.db_url.startswith("sqlite"):  # a SQLite station is a fleet of one: no news
                print(f"fleet: station {member.name!r} ({member.station_id}), heartbeat every "
                      f"{member.interval:g} s", flush=True)
            # a takeover or a rename is logged as a warning (on stderr too) by the member
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            wait = status_interval if status_interval > 0 else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = left if wait is None else min(wait, left)
            if not stop.wait(wait) and status_interval > 0:
                print(f"status: {status_line(station)}", flush=True)
    finally:
        print("edge-station headless: stopping all workers", flush=True)
        station.close()
        for s, h in old.items():
            signal.signal(s, h)
    print("edge-station headless: all workers stopped", flush=True)
    return 0
