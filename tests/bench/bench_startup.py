"""Start-up time of the frozen bundle against the source install, measured in the same run.

Run: ``python tests/bench/bench_startup.py [--frozen PATH] [--source PATH] [--runs 5]``

The frozen program is ``/usr/bin/edge-station`` when the .deb is installed, else
``dist/edge-station/edge-station`` (``make package``); the source install is
``.venv/bin/edge-station`` (the editable install: Python imports from ``app/``).
Both run the same commands on data dirs whose database is already migrated, in
alternation, after one warm-up run each; figures are medians of wall time from
spawn, and the ratio frozen / source.

1. ``--version``: interpreter start and the argument parser.
2. ``migrate`` on an up-to-date database: SQLAlchemy and Alembic imported, schema checked.
3. ``headless --duration 0 --no-demo``: the station opened (store, supervisor,
   metrics, alerts) and closed again, no camera.
4. ``doctor``: every check, including a Qt start in a child process and a lavfi decode.
5. First window: spawn until the main window is on screen. When the UI has an
   exit-after-first-paint hook (``EDGE_STATION_EXIT_AFTER_PAINT=1``), that is spawn
   until the process exits after painting, with ``QT_QPA_PLATFORM=offscreen``;
   otherwise spawn until an X server (a private Xvfb) reports the window
   "Edge Station" of that process viewable (``xdotool``), then TERM.

Needs: the bundle, Xvfb and xdotool for figure 5 without the hook
(``apt-get install xvfb xdotool``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_HOOK_ENV = "EDGE_STATION_EXIT_AFTER_PAINT"
WINDOW_TIMEOUT = 60.0
STEP_TIMEOUT = 120.0


class BenchError(Exception):
    """The benchmark cannot run; the message says what is missing."""


def default_frozen() -> Path:
    for p in (Path("/usr/bin/edge-station"), REPO_ROOT / "dist" / "edge-station" / "edge-station"):
        if p.exists() and (p.resolve().parent / "_internal").is_dir():
            return p
    raise BenchError("no frozen bundle: build it with 'make package' (or pass --frozen PATH)")


def ui_has_exit_hook() -> bool:
    return any(EXIT_HOOK_ENV in p.read_text(encoding="utf-8")
               for p in (REPO_ROOT / "app" / "ui").glob("*.py"))


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGE_STATION_", "USE_DOMAIN_SERVICE", "ROLLOUT_PERCENT"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               QT_LOGGING_RULES="qt.qpa.*=false", QT_QPA_PLATFORM="offscreen")
    return env


def timed_run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    return dt


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Xvfb:
    """A private X server for the window figure; stopped on exit."""

    def __init__(self) -> None:
        for tool in ("Xvfb", "xdotool"):
            if shutil.which(tool) is None:
                raise BenchError(f"{tool} not found: apt-get install xvfb xdotool (or give the UI an "
                                 f"{EXIT_HOOK_ENV} hook)")
        self.proc: subprocess.Popen | None = None
        self.display = ""
        self.start()

    def start(self) -> None:
        """Start Xvfb on a display it picks itself (-displayfd: no race with other X servers)."""
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp",
                                      "-noreset"],  # no server reset when the last client leaves
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number or self.proc.poll() is not None:
            self.close()
            raise BenchError("Xvfb did not start")
        self.display = f":{number}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def window_visible(self, pid: int) -> bool:
        out = subprocess.run(["xdotool", "search", "--all", "--onlyvisible", "--pid", str(pid),
                              "--name", "^Edge Station"], env={**os.environ, "DISPLAY": self.display},
                             capture_output=True, text=True)
        return out.returncode == 0 and bool(out.stdout.strip())

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)


class WindowStartFailed(BenchError):
    """The program exited before it showed a window."""


def first_window_xvfb(xvfb: Xvfb, cmd: list[str], env: dict[str, str], attempts: int = 3) -> float:
    """Spawn until the window is viewable. A start that dies before its window is retried and
    reported. (Without -noreset, Xvfb reset itself whenever the last client left, and a start
    that came during the reset could not connect: 2 starts in 20.)"""
    for attempt in range(1, attempts + 1):
        try:
            return _first_window_once(xvfb, cmd, env)
        except WindowStartFailed as e:
            print(f"  (start {attempt} of {cmd[0]} failed: {str(e)[:600]!r})", flush=True)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _first_window_once(xvfb: Xvfb, cmd: list[str], env: dict[str, str]) -> float:
    if not xvfb.alive():  # something else ended our X server: start another
        print(f"  (Xvfb {xvfb.display} is gone; starting a new one)", flush=True)
        xvfb.start()
    env = {k: v for k, v in env.items() if k != "QT_LOGGING_RULES"}  # keep Qt's reason if it fails
    env.update(DISPLAY=xvfb.display, QT_QPA_PLATFORM="xcb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if xvfb.window_visible(proc.pid):
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise WindowStartFailed(f"{' '.join(cmd)} exited {proc.returncode} before showing a window: "
                                        f"{(proc.stderr.read() if proc.stderr else '')[:800]}")
            if time.perf_counter() - t0 > WINDOW_TIMEOUT:
                raise BenchError(f"no window from {' '.join(cmd)} within {WINDOW_TIMEOUT:.0f} s")
            time.sleep(0.005)
    finally:
        stop(proc)
        if proc.stderr:
            proc.stderr.close()


def first_window_hook(cmd: list[str], env: dict[str, str]) -> float:
    return timed_run(cmd, {**env, EXIT_HOOK_ENV: "1"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frozen", type=Path, default=None, help="the bundle's executable")
    ap.add_argument("--source", type=Path, default=REPO_ROOT / ".venv" / "bin" / "edge-station",
                    help="the source install's entry point")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    try:
        frozen = args.frozen or default_frozen()
        if not args.source.exists():
            raise BenchError(f"no source install at {args.source}: run 'make venv'")
        return run(frozen, args.source, args.runs)
    except BenchError as e:
        print(f"bench_startup: cannot run: {e}", file=sys.stderr)
        return 3


def run(frozen: Path, source: Path, runs: int) -> int:
    hook = ui_has_exit_hook()
    print(f"frozen: {frozen} -> {frozen.resolve()}")
    print(f"source: {source} (Python imports from {REPO_ROOT / 'app'})")
    print(f"runs: {runs} per figure, alternating, after one warm-up each; medians of wall time\n")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        dirs = {}
        for name, exe in (("frozen", frozen), ("source", source)):
            dirs[name] = root / name
            env = base_env(root / f"home-{name}")
            timed_run([str(exe), "--data-dir", str(dirs[name]), "migrate"], env)
        xvfb = None if hook else Xvfb()
        try:
            figures: list[tuple[str, Callable[[Path, Path, dict[str, str]], float]]] = [
                ("--version", lambda exe, d, env: timed_run([str(exe), "--version"], env)),
                ("migrate (up to date)", lambda exe, d, env: timed_run([str(exe), "--data-dir", str(d), "migrate"], env)),
                ("headless --duration 0", lambda exe, d, env: timed_run(
                    [str(exe), "--data-dir", str(d), "headless", "--no-demo", "--duration", "0",
                     "--status-interval", "0"], env)),
                ("doctor", lambda exe, d, env: timed_run([str(exe), "--data-dir", str(d), "doctor"], env)),
            ]
            if hook:
                figures.append(("first window (exit after paint)", lambda exe, d, env: first_window_hook(
                    [str(exe), "--data-dir", str(d), "--no-demo"], env)))
            else:
                figures.append(("first window (Xvfb, mapped)", lambda exe, d, env: first_window_xvfb(
                    xvfb, [str(exe), "--data-dir", str(d), "--no-demo"], env)))  # type: ignore[arg-type]
            print(f"{'figure':<34} {'frozen ms':>10} {'source ms':>10} {'frozen/source':>14}")
            for label, fn in figures:
                samples: dict[str, list[float]] = {"frozen": [], "source": []}
                for i in range(runs + 1):
                    for name, exe in (("frozen", frozen), ("source", source)) if i % 2 == 0 else \
                            (("source", source), ("frozen", frozen)):
                        dt = fn(exe, dirs[name], base_env(root / f"home-{name}"))
                        if i > 0:  # the first round warms the page cache
                            samples[name].append(dt)
                f = statistics.median(samples["frozen"]) * 1000
                s = statistics.median(samples["source"]) * 1000
                print(f"{label:<34} {f:>10.0f} {s:>10.0f} {f / s:>13.2f}x", flush=True)
        finally:
            if xvfb is not None:
                xvfb.close()
    if not hook:
        print(f"\nnote: the UI has no {EXIT_HOOK_ENV} hook; 'first window' is the time until X reports the "
              "window viewable (mapped), which is just before its first paint.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
