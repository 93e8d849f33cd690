"""Start-up time of the source install against baselines of the same run, and of the frozen bundle
against the source install when there is a bundle.

Run: ``python tests/bench/bench_startup.py [--frozen PATH] [--source PATH] [--runs 5]``

The source install is ``.venv/bin/edge-station`` (the editable install: Python imports from
``app/``); the frozen program is ``/usr/bin/edge-station`` when the .deb is installed, else
``dist/edge-station/edge-station`` (``make package``). Without a bundle the frozen comparison is
skipped (a ``SKIP:`` line) and the rest is measured.

Every figure runs in alternation with what it is compared with (the order flips every round),
after one warm-up round, on data dirs whose database is already migrated (and seeded with the demo
cameras); figures are medians with the min-max, times from spawn:

1. ``--version``: interpreter start and the argument parser (until the process exits);
2. ``migrate`` on an up-to-date database: SQLAlchemy and Alembic imported, schema checked (exit);
3. ``headless --duration 0.01 --no-demo``: the station opened (store, supervisor, metrics, alerts) and
   closed again, no camera (exit);
4. ``doctor``: every check, including a Qt start in a child process and a lavfi decode (exit);
5. first window: until the window's first paint (``EDGE_STATION_EXIT_AFTER_PAINT=1``: the line it
   prints on stderr then, read as it comes);
6. ready to use: until the camera table shows the station's live states
   (``EDGE_STATION_EXIT_AFTER_READY=1``; the same).

Baselines: figures 1-4 against a bare start of the same interpreter (``python -c pass``), figures
5-6 against a bare PySide6 + pyqtgraph window's first paint (``tests/bench/bench_ui.py --child
bare-start``, the same marker-line reading). All offscreen. Exit 77 with ``SKIP: <reason>`` when
nothing can be measured (no source install, no PySide6).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_UI = REPO_ROOT / "tests" / "bench" / "bench_ui.py"
STEP_TIMEOUT = 120.0
EXIT_SKIP = 77


class BenchError(Exception):
    """A figure cannot be measured; the message says why."""


def default_frozen() -> Path | None:
    for p in (Path("/usr/bin/edge-station"), REPO_ROOT / "dist" / "edge-station" / "edge-station"):
        if p.exists() and (p.resolve().parent / "_internal").is_dir():
            return p
    return None


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGE_STATION_", "USE_DOMAIN_SERVICE", "ROLLOUT_PERCENT"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               QT_LOGGING_RULES="qt.qpa.*=false", QT_QPA_PLATFORM="offscreen")
    return env


def until_exit(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    return dt


def until_marker(cmd: list[str], env: dict[str, str], stream: str, marker: str) -> float:
    """Seconds from spawn until a line of ``stream`` holds ``marker`` (the child then quits by itself)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, other = (proc.stdout, proc.stderr) if stream == "stdout" else (proc.stderr, proc.stdout)
    assert watched is not None and other is not None
    rest: list[str] = []
    drain = threading.Thread(target=lambda: rest.append(other.read()), daemon=True)
    drain.start()
    killer = threading.Timer(STEP_TIMEOUT, proc.kill)
    killer.start()
    first: float | None = None
    seen = []
    try:
        for line in watched:
            if first is None and marker in line:
                first = time.perf_counter() - t0
            seen.append(line)
        proc.wait(STEP_TIMEOUT)
    finally:
        killer.cancel()
    drain.join(STEP_TIMEOUT)
    if first is None or proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode} without {marker!r}: "
                         f"{(''.join(seen) + ''.join(rest)).strip()[-400:]}")
    return first


Step = Callable[[Path, dict[str, str]], float]  # (data dir, env) -> seconds


def figures_for(exe: Path) -> list[tuple[str, Step]]:
    e = str(exe)
    return [
        ("--version", lambda d, env: until_exit([e, "--version"], env)),
        ("migrate (up to date)", lambda d, env: until_exit([e, "--data-dir", str(d), "migrate"], env)),
        ("headless --duration 0.01", lambda d, env: until_exit(
            [e, "--data-dir", str(d), "headless", "--no-demo", "--duration", "0.01", "--status-interval", "0"], env)),
        ("doctor", lambda d, env: until_exit([e, "--data-dir", str(d), "doctor"], env)),
        ("first window (first paint)", lambda d, env: until_marker(
            [e, "--data-dir", str(d)], {**env, "EDGE_STATION_EXIT_AFTER_PAINT": "1"}, "stderr", "first paint")),
        ("ready (camera table filled)", lambda d, env: until_marker(
            [e, "--data-dir", str(d)], {**env, "EDGE_STATION_EXIT_AFTER_READY": "1"}, "stderr", "ready")),
    ]


def baseline_for(label: str) -> tuple[str, Step]:
    if label.startswith(("first window", "ready")):
        return "bare Qt window paint", lambda d, env: until_marker(
            [sys.executable, str(BENCH_UI), "--child", "bare-start"],
            {**env, "PYTHONPATH": str(REPO_ROOT)}, "stdout", "PAINTED")
    return "python -c pass", lambda d, env: until_exit([sys.executable, "-c", "pass"], env)


def spread(xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return f"{statistics.median(ms):.0f} ({min(ms):.0f}-{max(ms):.0f})"


def paired(a: list[float], b: list[float]) -> str:
    per = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(a) / statistics.median(b):.2f}x ({min(per):.2f}-{max(per):.2f})"


def measure(label: str, sides: list[tuple[str, Step, Path, dict[str, str]]], runs: int) -> dict[str, list[float]]:
    """``runs`` alternating rounds (after a warm-up round) of every side; seconds per side."""
    samples: dict[str, list[float]] = {name: [] for name, *_ in sides}
    for i in range(runs + 1):
        for name, fn, d, env in (sides if i % 2 == 0 else list(reversed(sides))):
            dt = fn(d, env)
            if i > 0:  # the first round warms the page cache
                samples[name].append(dt)
    return samples


def run(source: Path, frozen: Path | None, runs: int, only: set[str] | None) -> int:
    print(f"source: {source} (Python imports from {REPO_ROOT / 'app'})")
    print(f"frozen: {f'{frozen} -> {frozen.resolve()}' if frozen else 'none'}")
    print(f"runs: {runs} per figure, alternating, after one warm-up round; median (min-max) of ms from spawn\n")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        dirs: dict[str, Path] = {}
        envs: dict[str, dict[str, str]] = {}
        for name, exe in (("source", source), ("frozen", frozen)):
            if exe is None:
                continue
            dirs[name] = root / name
            envs[name] = base_env(root / f"home-{name}")
            # migrated and seeded with the demo cameras (the ready figure shows them)
            until_marker([str(exe), "--data-dir", str(dirs[name])], {**envs[name], "EDGE_STATION_EXIT_AFTER_READY": "1"},
                         "stderr", "ready")
        skipped: list[str] = []
        print(f"{'figure':<30} {'source ms':>16} {'baseline':>21} {'baseline ms':>14} {'source/baseline':>18}"
              f" {'frozen ms':>16} {'frozen/source':>16}")
        for label, fn in figures_for(source):
            if only and not any(o in label for o in only):
                continue
            base_name, base_fn = baseline_for(label)
            sides = [("source", fn, dirs["source"], envs["source"]),
                     ("baseline", base_fn, dirs["source"], envs["source"])]
            frozen_fn = dict(figures_for(frozen)).get(label) if frozen else None
            if frozen_fn is not None:
                sides.append(("frozen", frozen_fn, dirs["frozen"], envs["frozen"]))
            try:
                s = measure(label, sides, runs)
            except BenchError as e:
                if frozen_fn is None:
                    raise
                skipped.append(f"{label}: frozen: {e}")  # the bundle's side failed: measure without it
                s = measure(label, sides[:2], runs)
            frozen_cols = (f" {spread(s['frozen']):>16} {paired(s['frozen'], s['source']):>16}" if "frozen" in s
                           else f" {'-':>16} {'-':>16}")
            print(f"{label:<30} {spread(s['source']):>16} {base_name:>21} {spread(s['baseline']):>14}"
                  f" {paired(s['source'], s['baseline']):>18}{frozen_cols}", flush=True)
    if frozen is None:
        print("\nSKIP: frozen bundle: none found (/usr/bin/edge-station or dist/edge-station/edge-station); "
              "build it with 'make package' or pass --frozen PATH")
    for line in skipped:
        print(f"SKIP: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frozen", type=Path, default=None, help="the bundle's executable")
    ap.add_argument("--source", type=Path, default=REPO_ROOT / ".venv" / "bin" / "edge-station",
                    help="the source install's entry point")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", action="append", help="only the figures whose label holds this text (repeatable)")
    args = ap.parse_args(argv)
    if not args.source.exists():
        print(f"SKIP: no source install at {args.source}: run 'make venv'")
        return EXIT_SKIP
    if importlib.util.find_spec("PySide6") is None:
        print("SKIP: PySide6 is not installed: no window to start")
        return EXIT_SKIP
    frozen = args.frozen or default_frozen()
    if frozen is not None and not frozen.exists():
        print(f"SKIP: frozen bundle: {frozen} does not exist")
        frozen = None
    try:
        return run(args.source, frozen, args.runs, set(args.only) if args.only else None)
    except BenchError as e:
        print(f"bench_startup: a figure failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
