"""Window benchmarks, each against a bare PySide6 + pyqtgraph window measured in the same run.

Run: ``python tests/bench/bench_ui.py [--rounds 5] [--lag-rounds 3] [--seconds 20] [--cameras 16]``
(offscreen by default; ``--platform xcb`` under Xvfb or a desktop). Every figure is the median of
its rounds with the min-max; the two sides of a comparison run in alternation (bare first in even
rounds, last in odd ones), each in a fresh interpreter, and are observed the same way.

1. Start: from spawning a fresh interpreter until the child says it got there, on the stream it
   says it on (read by the parent as it comes):
   - bare: a ``QMainWindow`` holding a pyqtgraph ``PlotWidget``, until its first paint;
   - Edge Station's first paint: the real command (``python -m app --data-dir D`` with
     ``EDGE_STATION_EXIT_AFTER_PAINT=1``; the database already at this app's schema);
   - Edge Station ready to use: the same with ``EDGE_STATION_EXIT_AFTER_READY=1``, until the
     camera table shows the station's live states (its demo cameras);
   - Edge Station's first start on an empty data dir (the migrations run before the window).
   Each child also reports its peak RSS at that moment (``getrusage``, the same call on both sides).
2. Event-loop lag: the same 10 ms precise probe timer in both children records how late it fires
   (p50, p99, max): N cameras (default 16) on the 4x4 wall at their 10 fps preview and the charts
   page open in a second window, against the bare window idling.
3. CPU in that state, with psutil in both children: the whole process (% of one core; the
   station's threads run in the window's process too) and its GUI thread alone; how many preview
   frames per second the wall painted and how many curves the charts redrew per second.

Exit 77 with ``SKIP: <reason>`` when it cannot run at all (no PySide6 or pyqtgraph); the lag part
alone is skipped (``SKIP:`` line) when the workers cannot decode (no PyAV).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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
sys.path.insert(0, str(REPO_ROOT))

EXIT_SKIP = 77
PAINT_MARKER = "first paint"  # the app's line on stderr with EDGE_STATION_EXIT_AFTER_PAINT=1
READY_MARKER = "ready"  # ... and with EDGE_STATION_EXIT_AFTER_READY=1
BARE_MARKER = "PAINTED"


# ---------------------------------------------------------------- children


def peak_rss_mib() -> float:
    """The same figure the app prints at its markers (app.ui.app.peak_rss_mib), for the bare child."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _first_paint_filter(app, target, on_paint):
    from PySide6.QtCore import QEvent, QObject

    class _F(QObject):
        def eventFilter(self, obj, ev):  # noqa: N802 - Qt name
            if ev.type() == QEvent.Type.Paint and obj.isWidgetType() and (obj is target or target.isAncestorOf(obj)):
                app.removeEventFilter(self)
                on_paint()
            return False

    f = _F()
    app.installEventFilter(f)
    return f


def _guard() -> None:
    """The bare windows need the same PySide6 6.12.0 refcount guard as the app, or they abort."""
    from app.ui.common.qtcompat import apply

    apply()


def _bare_window():
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    _guard()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication([])
    win = QMainWindow()
    plot = pg.PlotWidget()
    plot.plot([0, 1, 2], [0, 1, 0])
    win.setCentralWidget(plot)
    win.resize(1200, 760)
    return app, win


def child_bare_start() -> int:
    from PySide6.QtCore import QTimer

    app, win = _bare_window()

    def painted() -> None:
        print(f"{BARE_MARKER} peak RSS {peak_rss_mib():.1f} MiB", flush=True)
        QTimer.singleShot(0, app.quit)

    _keep = _first_paint_filter(app, win, painted)  # noqa: F841
    win.show()
    return app.exec()


class _Lag:
    """The probe: a 10 ms precise timer; records how late each tick is (ms)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.samples: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self._last = 0.0
        self.recording = False

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.recording:
            self.samples.append(max(0.0, (now - self._last) * 1000 - 10))
        self._last = now


def _cpu_seconds() -> tuple[float, float]:
    """(this process, its GUI thread) CPU seconds so far, from psutil."""
    import psutil

    proc = psutil.Process()
    t = proc.cpu_times()
    gui = threading.get_native_id()  # the caller is the GUI thread
    mine = next((th for th in proc.threads() if th.id == gui), None)
    return t.user + t.system, (mine.user_time + mine.system_time) if mine is not None else float("nan")


def _measure(app, seconds: float, extra=None) -> dict:
    lag = _Lag()
    lag.start()
    _pump(app, 1.0)
    c0, g0 = _cpu_seconds()
    t0 = time.perf_counter()
    e0 = extra() if extra else None
    lag.recording = True
    _pump(app, seconds)
    lag.recording = False
    wall = time.perf_counter() - t0
    c1, g1 = _cpu_seconds()
    s = sorted(lag.samples)
    out = {"ticks": len(s), "lag_p50_ms": s[len(s) // 2], "lag_p99_ms": s[int(len(s) * 0.99)],
           "lag_max_ms": s[-1], "cpu_percent": (c1 - c0) / wall * 100, "gui_cpu_percent": (g1 - g0) / wall * 100,
           "seconds": wall}
    if extra:
        out["extra"] = extra(e0, wall)
    return out


def _pump(app, seconds: float, until=None) -> bool:
    """Run the real event loop for ``seconds`` (or until ``until()`` holds, checked every 50 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    poll = None
    if until is not None:
        poll = QTimer()
        poll.setInterval(50)
        poll.timeout.connect(lambda: until() and loop.quit())
        poll.start()
    loop.exec()
    if poll is not None:
        poll.stop()
    return until() if until is not None else True


def child_lag_bare(seconds: float) -> int:
    app, win = _bare_window()
    win.show()
    print("RESULT " + json.dumps(_measure(app, seconds)), flush=True)
    return 0


def child_lag_wall(seconds: float, cameras: int, variant: str = "wall+charts") -> int:
    from PySide6.QtCore import QSettings

    from app.domain import Camera
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions
    from app.ui.app import ensure_application
    from app.ui.charts.page import ChartsPage
    from app.ui.window.main_window import MainWindow

    app = ensure_application(["bench"])
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        station = Station(StationOptions(paths=resolve_paths(Path(tmp) / "data"), seed_demo=False,
                                         autostart=False)).open()
        for i in range(cameras):
            station.parts().admin.add_camera(Camera(name=f"cam {i + 1:02d}", source="test://moving?size=320x180&rate=10",
                                            max_fps=10))
        station.reload_cameras()
        station.autostart()
        win = MainWindow(station, settings=QSettings(str(Path(tmp) / "ui.ini"), QSettings.Format.IniFormat))
        win.resize(1400, 900)
        win.wall.set_grid(4)
        win.tabs.setCurrentWidget(win.wall if "wall" in variant else win.cameras_page)
        win.show()
        win.open_station()
        charts = ChartsPage(station)
        charts.resize(1200, 800)
        if "charts" in variant:
            charts.show()
        try:
            def live() -> int:
                return sum(s.state == "running" and (s.fps or 0) > 0 for s in station.live_status())

            ok = _pump(app, 120, lambda: win.ready and live() >= cameras)
            shown = live()
            if not ok:
                print(f"warning: only {shown}/{cameras} cameras showed frames", file=sys.stderr)
            _pump(app, 3.0)  # warm-up

            def frames(before=None, wall=None):
                now = (sum(t.frames_shown for t in win.wall.visible_tiles()),
                       sum(c.updates for p in charts.plots.values() for c in p.curves.values()))
                if before is None:
                    return now
                return {"preview_fps_painted": (now[0] - before[0]) / wall,
                        "curve_updates_per_s": (now[1] - before[1]) / wall, "cameras_live": shown}

            res = _measure(app, seconds, frames)
            print("RESULT " + json.dumps(res), flush=True)
        finally:
            charts.shutdown()
            charts.close()
            win.shutdown()
            win.close()
            station.close()
    return 0


# ---------------------------------------------------------------- parent


def _child_env(platform: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_STATION_EXIT_AFTER")}
    env.update(QT_QPA_PLATFORM=platform, PYTHONPATH=str(REPO_ROOT), QT_LOGGING_RULES="qt.qpa.*=false",
               **(extra or {}))
    return env


def until_marker(cmd: list[str], env: dict[str, str], stream: str, marker: str,
                 timeout: float = 120) -> tuple[float, str, str]:
    """Spawn ``cmd``; (seconds from spawn until a line of ``stream`` holds ``marker``, that line, all
    the child's output). The child is left to finish by itself (it quits after its marker)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(REPO_ROOT))
    watched, other = (proc.stdout, proc.stderr) if stream == "stdout" else (proc.stderr, proc.stdout)
    assert watched is not None and other is not None
    rest: list[str] = []
    drain = threading.Thread(target=lambda: rest.append(other.read()), daemon=True)
    drain.start()
    first: float | None = None
    hit = ""
    lines = []
    for line in watched:
        if marker in line and first is None:
            first = time.perf_counter() - t0
            hit = line.strip()
        lines.append(line)
    proc.wait(timeout)
    drain.join(timeout)
    out = "".join(lines) + "".join(rest)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {out[-2000:]}")
    if first is None:
        raise RuntimeError(f"{cmd} never said {marker!r}: {out[-2000:]}")
    return first, hit, out


def _rss_of(line: str) -> float:
    """The MiB of '... peak RSS 123.4 MiB'."""
    try:
        return float(line.rsplit("peak RSS", 1)[1].split()[0])
    except (IndexError, ValueError):
        return float("nan")


def _result(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no RESULT line in: {out[-500:]}")


def spread(xs: list[float], fmt: str = "{:.0f}", scale: float = 1.0) -> str:
    """'median (min-max)'."""
    vals = [x * scale for x in xs]
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"


def ratio(a: list[float], b: list[float]) -> str:
    """Median of a over median of b, and the spread of the per-round ratios (rounds paired)."""
    per = [x / y for x, y in zip(a, b, strict=True) if y > 0]
    med = statistics.median(a) / statistics.median(b) if statistics.median(b) > 0 else float("nan")
    return f"{med:.2f}x (rounds {min(per):.2f}-{max(per):.2f})" if per else "n/a"


def alternate(rnd: int, sides: list[tuple[str, Callable[[], None]]]) -> None:
    """Run the sides of a round in order, reversed in odd rounds."""
    for _name, fn in (sides if rnd % 2 == 0 else list(reversed(sides))):
        fn()


def start_figures(args: argparse.Namespace) -> None:
    me = [sys.executable, __file__]
    figures: dict[str, list[float]] = {k: [] for k in ("bare", "paint", "ready", "first")}
    rss: dict[str, list[float]] = {k: [] for k in figures}
    with tempfile.TemporaryDirectory(prefix="bench-ui-start-") as tmp:
        home = Path(tmp) / "home"  # QSettings and the XDG dirs of the children stay in here
        home.mkdir()
        os.environ["HOME"] = str(home)
        for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            os.environ.pop(k, None)
        usual = Path(tmp) / "usual"
        app_cmd = [sys.executable, "-m", "app", "--data-dir", str(usual)]

        def bare() -> None:
            t, line, _ = until_marker([*me, "--child", "bare-start"], _child_env(args.platform), "stdout", BARE_MARKER)
            figures["bare"].append(t)
            rss["bare"].append(_rss_of(line))

        def app(which: str, cmd: list[str], env: dict[str, str], marker: str) -> Callable[[], None]:
            def run() -> None:
                t, line, _ = until_marker(cmd, _child_env(args.platform, env), "stderr", marker)
                figures[which].append(t)
                rss[which].append(_rss_of(line))
            return run

        paint = app("paint", app_cmd, {"EDGE_STATION_EXIT_AFTER_PAINT": "1"}, PAINT_MARKER)
        ready = app("ready", app_cmd, {"EDGE_STATION_EXIT_AFTER_READY": "1"}, READY_MARKER)
        # warm-up: creates, migrates and seeds the usual data dir; warms the page cache for both sides
        ready()
        bare()
        for k in figures:
            figures[k].clear()
            rss[k].clear()
        for i in range(args.rounds):
            first = app("first", [sys.executable, "-m", "app", "--data-dir", str(Path(tmp) / f"first-{i}")],
                        {"EDGE_STATION_EXIT_AFTER_PAINT": "1"}, PAINT_MARKER)
            alternate(i, [("bare", bare), ("paint", paint), ("ready", ready), ("first", first)])

    print(f"\n1. start (median of {args.rounds} rounds, (min-max); spawn to the child's marker line)")
    print(f"   {'':44}{'ms':>22}{'peak RSS MiB':>24}")
    labels = {"bare": "bare PySide6 + pyqtgraph window, first paint", "paint": "Edge Station, first paint",
              "ready": "Edge Station, ready (table filled)", "first": "Edge Station, first start (migrates)"}
    for k, label in labels.items():
        print(f"   {label:44}{spread(figures[k], scale=1000):>22}{spread(rss[k], '{:.1f}'):>24}")
    print(f"   ratio first paint / bare                    {ratio(figures['paint'], figures['bare'])}")
    print(f"   ratio ready / bare first paint              {ratio(figures['ready'], figures['bare'])}")
    print(f"   ratio first start / bare                    {ratio(figures['first'], figures['bare'])}")
    print(f"   peak RSS ready / bare                       {ratio(rss['ready'], rss['bare'])}")


def lag_figures(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("av") is None:
        print("\nSKIP: lag and CPU: PyAV is not installed, the camera workers cannot decode")
        return
    me = [sys.executable, __file__]
    sec = ["--seconds", str(args.seconds)]
    variants = ["wall+charts", *(("table", "wall", "charts") if args.attribution else ())]
    runs: dict[str, list[dict]] = {"bare": [], **{v: [] for v in variants}}

    def child(name: str, cmd: list[str]) -> Callable[[], None]:
        def run() -> None:
            out = subprocess.run(cmd, env=_child_env(args.platform), cwd=str(REPO_ROOT), capture_output=True,
                                 text=True, timeout=600)
            if out.returncode != 0:
                raise RuntimeError(f"{cmd} failed ({out.returncode}): {(out.stdout + out.stderr)[-2000:]}")
            runs[name].append(_result(out.stdout))
        return run

    for i in range(args.lag_rounds):
        sides = [("bare", child("bare", [*me, "--child", "lag-bare", *sec]))]
        sides += [(v, child(v, [*me, "--child", "lag-wall", *sec, "--cameras", str(args.cameras), "--variant", v]))
                  for v in variants]
        alternate(i, sides)

    def col(name: str, key: str) -> list[float]:
        return [r[key] for r in runs[name]]

    def extra(name: str, key: str) -> list[float]:
        return [r.get("extra", {}).get(key, float("nan")) for r in runs[name]]

    label = f"{args.cameras} cameras on wall + charts"
    print(f"\n2. event-loop lag over {args.seconds:g} s, median of {args.lag_rounds} rounds (min-max); "
          "the same 10 ms probe timer; ms late")
    print(f"   {'':34}{'p50':>20}{'p99':>20}{'max':>20}")
    names = {"bare": "bare window, idle", "wall+charts": label, "table": f"{args.cameras} cameras, table only",
             "wall": f"{args.cameras} cameras, wall only", "charts": f"{args.cameras} cameras, charts only"}
    for n in runs:
        print(f"   {names[n]:34}" + "".join(f"{spread(col(n, k), '{:.2f}'):>20}"
                                          for k in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms")))
    print(f"   p99 ratio wall+charts / bare       {ratio(col('wall+charts', 'lag_p99_ms'), col('bare', 'lag_p99_ms'))}")
    print("\n3. CPU, % of one core (psutil, both sides): whole process / its GUI thread")
    for n in runs:
        print(f"   {names[n]:34}{spread(col(n, 'cpu_percent'), '{:.1f}'):>18}"
              f"{spread(col(n, 'gui_cpu_percent'), '{:.1f}'):>18}")
    print(f"   process CPU ratio wall+charts / bare  {ratio(col('wall+charts', 'cpu_percent'), col('bare', 'cpu_percent'))}")
    fps = extra("wall+charts", "preview_fps_painted")
    live = extra("wall+charts", "cameras_live")
    print(f"   preview frames painted/s        {spread(fps, '{:.1f}'):>18}   (cameras live {min(live):.0f}/"
          f"{args.cameras}; at most {10 * args.cameras} offered)")
    print(f"   chart curves redrawn/s          {spread(extra('wall+charts', 'curve_updates_per_s'), '{:.1f}'):>18}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the start figures")
    ap.add_argument("--lag-rounds", type=int, default=3, help="rounds of the lag and CPU figures")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring time of each lag round")
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--variant", default="wall+charts", help="lag child: wall+charts, wall, charts, table")
    ap.add_argument("--attribution", action="store_true", help="also measure wall only, charts only, table only")
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    ap.add_argument("--start-only", action="store_true", help="only figure 1 (start)")
    ap.add_argument("--lag-only", action="store_true", help="only figures 2 and 3 (lag, CPU)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "bare-start":
        return child_bare_start()
    if args.child == "lag-bare":
        return child_lag_bare(args.seconds)
    if args.child == "lag-wall":
        return child_lag_wall(args.seconds, args.cameras, args.variant)

    missing = [m for m in ("PySide6", "pyqtgraph", "psutil") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed: there is no window to measure")
        return EXIT_SKIP
    print(f"platform {args.platform}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.lag_only:
        start_figures(args)
    if not args.start_only:
        lag_figures(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
