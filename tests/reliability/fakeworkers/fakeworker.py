"""Worker stand-in for fault injection: a real process that speaks the worker contract.

It accepts the `run` arguments of the real worker (see contract-worker.md) and prints
heartbeats on stdout; the --fake-* options make it misbehave on purpose (crash, exit
with a code, signal itself, ignore TERM, spawn a setsid grandchild, flood stderr,
stop heartbeating, report a stale frame or a source that goes down and comes back).

Every start (and orderly exit) is appended to --fake-journal as one JSON line so the
tests can count spawns and measure timing from the outside.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="fakeworker")
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--camera-id", type=int, required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--loop", action="store_true")
    ap.add_argument("--max-fps", type=float)
    ap.add_argument("--preview")
    ap.add_argument("--evidence-dir")
    ap.add_argument("--preroll", type=float, default=10.0)
    ap.add_argument("--motion-threshold", type=float, default=0.02)
    ap.add_argument("--stall-timeout", type=float, default=10.0)
    ap.add_argument("--heartbeat-interval", type=float, default=1.0)
    ap.add_argument("--fake-journal")
    ap.add_argument("--fake-faulty-runs", type=int, default=-1,
                    help="apply the faults only to the first N runs (by journal count)")
    ap.add_argument("--fake-exit-after", type=float)
    ap.add_argument("--fake-exit-code", type=int, default=1)
    ap.add_argument("--fake-exit-schedule",
                    help="per-run exit-after seconds, comma separated ('-' = run normally), "
                         "e.g. '0,0,1.0': runs 1-2 fail at once, run 3 after 1 s, later runs live")
    ap.add_argument("--fake-signal-after", type=float)
    ap.add_argument("--fake-signal", default="SIGSEGV")
    ap.add_argument("--fake-ignore-term", action="store_true")
    ap.add_argument("--fake-grandchild", help="spawn a setsid grandchild, write its pid here")
    ap.add_argument("--fake-grandchild-after", type=float, default=0.0)
    ap.add_argument("--fake-flood-stderr", action="store_true")
    ap.add_argument("--fake-hb-stop-after", type=float)
    ap.add_argument("--fake-stale-after", type=float)
    ap.add_argument("--fake-source-down", help="A:B seconds after start the source is down")
    ap.add_argument("--fake-first-hb-delay", type=float, default=0.0)
    ap.add_argument("--fake-no-pdeathsig", action="store_true")
    ap.add_argument("--fake-log-every", type=float, default=0.0, help="an INFO line every N s")
    ap.add_argument("--fake-garbage", action="store_true", help="odd lines on stdout after each heartbeat")
    return ap.parse_args(argv)


def journal(path: str | None, **entry: object) -> None:
    if not path:
        return
    entry.setdefault("pid", os.getpid())
    entry.setdefault("ts", time.time())
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def previous_runs(path: str | None) -> int:
    if not path or not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if '"start"' in line)


def die_with_parent(expected_parent: int | None) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            ppid = os.getppid()
            if ppid == 1 or (expected_parent is not None and ppid != expected_parent):
                os._exit(0)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.source == "-":  # the supervisor passes the source on stdin, like to the real worker
        a.source = sys.stdin.readline().rstrip("\n")
    journal_source = a.source
    run_no = previous_runs(a.fake_journal)
    faulty = a.fake_faulty_runs < 0 or run_no < a.fake_faulty_runs
    if a.fake_exit_schedule is not None:
        plan = a.fake_exit_schedule.split(",")
        step = plan[run_no] if run_no < len(plan) else "-"
        a.fake_exit_after = None if step.strip() == "-" else float(step)
    journal(a.fake_journal, event="start", run=run_no, faulty=faulty, source=journal_source)
    if not a.fake_no_pdeathsig:
        parent = os.environ.get("EDGE_STATION_SUPERVISOR_PID")
        die_with_parent(int(parent) if parent else None)

    stop = threading.Event()
    if faulty and a.fake_ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    if a.preview:
        with open(a.preview, "wb") as f:
            f.write(b"ESPV" + b"\0" * 28)

    out_lock = threading.Lock()

    # An "immortal" stand-in (no parent-death handling) also survives its pipes closing,
    # like a worker stuck somewhere that never writes again: only reaping can end it.
    immortal = a.fake_no_pdeathsig

    def emit(obj: dict[str, object]) -> None:
        with out_lock:
            try:
                sys.stdout.write(json.dumps(obj) + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                if not immortal:
                    raise

    def err(line: str) -> None:
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            if not immortal:
                raise

    err(f"INFO fake worker {os.getpid()} camera {a.camera_id} source {a.source} run {run_no}")
    t0 = time.monotonic()
    down_a = down_b = None
    if faulty and a.fake_source_down:
        x, y = a.fake_source_down.split(":")
        down_a, down_b = float(x), float(y)

    if faulty and a.fake_flood_stderr:
        def flood() -> None:
            line = ("WARNING flood " + "x" * 1000 + "\n").encode()
            chunk = line * 16
            while True:
                try:
                    os.write(2, chunk)
                except OSError:
                    return
        threading.Thread(target=flood, daemon=True).start()

    grandchild_done = False
    next_hb = t0 + (a.fake_first_hb_delay if faulty else 0.0)
    next_log = t0 + a.fake_log_every if a.fake_log_every else None
    decoded = 0
    last_frame_mono = t0
    while not stop.is_set():
        now = time.monotonic()
        up = now - t0
        if faulty and a.fake_grandchild and not grandchild_done and up >= a.fake_grandchild_after:
            grandchild_done = True
            # The grandchild reports its own pid once it ignores TERM (no start-up race).
            code = (
                "import os, signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "tmp = sys.argv[1] + '.tmp'\n"
                "with open(tmp, 'w') as f:\n"
                "    f.write(str(os.getpid()))\n"
                "os.replace(tmp, sys.argv[1])\n"
                "time.sleep(3600)\n"
            )
            gc = subprocess.Popen([sys.executable, "-c", code, a.fake_grandchild], start_new_session=True)
            journal(a.fake_journal, event="grandchild", grandchild=gc.pid)
        if faulty and a.fake_exit_after is not None and up >= a.fake_exit_after:
            err(f"ERROR fake worker exiting with code {a.fake_exit_code} on purpose")
            journal(a.fake_journal, event="exit", code=a.fake_exit_code)
            sys.stdout.flush()
            os._exit(a.fake_exit_code)
        if faulty and a.fake_signal_after is not None and up >= a.fake_signal_after:
            sig = getattr(signal, a.fake_signal)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            time.sleep(1)
        if next_log is not None and now >= next_log:
            next_log += a.fake_log_every
            err(f"INFO tick {decoded}")
        if now >= next_hb:
            next_hb += a.heartbeat_interval
            hb_stopped = faulty and a.fake_hb_stop_after is not None and up >= a.fake_hb_stop_after
            stale = faulty and a.fake_stale_after is not None and up >= a.fake_stale_after
            down = down_a is not None and down_b is not None and down_a <= up < down_b
            if not stale and not down:
                decoded += max(1, round(15 * a.heartbeat_interval))
                last_frame_mono = now
            if not hb_stopped:
                emit({
                    "type": "heartbeat", "ts": time.time(), "camera_id": a.camera_id,
                    "fps": 0.0 if (stale or down) else 15.0, "decoded": decoded, "dropped": 0,
                    "motion": 0.1, "motion_active": True,
                    "source": "down" if down else "up",
                    "last_frame_age": round(now - last_frame_mono, 3),
                    "width": 640, "height": 360, "codec": "rawvideo", "preview_seq": decoded * 2,
                    "reconnects": 0, "error": "fake source gone" if down else None,
                })
                if a.fake_garbage:
                    emit({"type": "heartbeat", "fps": "fast", "source": 5, "last_frame_age": "old",
                          "error": 3, "width": True, "decoded": None})
                    with out_lock:
                        sys.stdout.buffer.write(b"not json {\n\xff\xfe binary\n[1, 2]\n")
                        sys.stdout.flush()
        time.sleep(0.01)
    journal(a.fake_journal, event="exit", code=0)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:
        os._exit(0)
