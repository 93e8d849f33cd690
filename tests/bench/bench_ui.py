"""Window benchmarks, each against a bare PySide6 + pyqtgraph window measured in the same run.

Run: ``python tests/bench/bench_ui.py [--runs 5] [--seconds 20] [--cameras 16]``
(offscreen by default; ``--platform xcb`` under Xvfb or a desktop).

1. Start to first paint: from spawning a fresh interpreter until the first
   paint event of the main window. Edge Station is the real command
   (``python -m app --data-dir D`` with ``EDGE_STATION_EXIT_AFTER_PAINT=1``:
   argument parsing, the single-instance check, the database preflight, the
   language, the window; the station then opens in the background with its
   demo cameras autostarting) vs a bare ``QMainWindow`` holding a pyqtgraph
   ``PlotWidget``. Two Edge Station figures: the usual start (the data dir's
   database already at this app's schema) and the first start on an empty data
   dir (the migrations run before the window shows). Median of ``--runs``
   alternating runs, ratio app / bare.
2. Event-loop lag: a 10 ms precise timer measures how late it fires (p50, p99,
   max) with N cameras (default 16) on the 4x4 wall at their 10 fps preview and
   the charts page refreshing at 2 Hz in a second window, vs the bare window
   idling with the same timer.
3. GUI process CPU in that state (process CPU time / wall time, % of one core;
   the station's own threads run in this process too), and how many preview
   frames per second the wall actually painted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))


# ---------------------------------------------------------------- children


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


def child_bare_start() -> int:
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    _guard()
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication([])
    win = QMainWindow()
    plot = pg.PlotWidget()
    plot.plot([0, 1, 2], [0, 1, 0])
    win.setCentralWidget(plot)
    win.resize(1200, 760)

    def painted() -> None:
        print("PAINTED", flush=True)
        QTimer.singleShot(0, app.quit)

    _keep = _first_paint_filter(app, win, painted)  # noqa: F841
    win.show()
    return app.exec()


class _Lag:
    """A 10 ms precise timer; records how late each tick is (ms)."""

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


def _measure(app, seconds: float, extra=None) -> dict:
    import psutil

    lag = _Lag()
    lag.start()
    _pump(app, 1.0)
    proc = psutil.Process()
    c0 = proc.cpu_times()
    t0 = time.perf_counter()
    e0 = extra() if extra else None
    lag.recording = True
    _pump(app, seconds)
    lag.recording = False
    wall = time.perf_counter() - t0
    c1 = proc.cpu_times()
    cpu = (c1.user - c0.user + c1.system - c0.system) / wall * 100
    s = sorted(lag.samples)
    out = {"ticks": len(s), "lag_p50_ms": s[len(s) // 2], "lag_p99_ms": s[int(len(s) * 0.99)],
           "lag_max_ms": s[-1], "cpu_percent": cpu, "seconds": wall}
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
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    _guard()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication([])
    win = QMainWindow()
    win.setCentralWidget(pg.PlotWidget())
    win.resize(1200, 760)
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
        reload = getattr(station, "reload_cameras", None) or station._on_database_changed
        reload()
        station.autostart()
        win = MainWindow(station, settings=QSettings(str(Path(tmp) / "ui.ini"), QSettings.Format.IniFormat))
        win.resize(1400, 900)
        win.wall.set_grid(4)
        win.tabs.setCurrentWidget(win.wall if "wall" in variant else win.table)
        win.show()
        win.open_station()
        charts = ChartsPage(station)
        charts.resize(1200, 800)
        if "charts" in variant:
            charts.show()
        try:
            ok = _pump(app, 120, lambda: win.ready and sum(
                s.state == "running" and (s.fps or 0) > 0 for s in station.live_status()) >= cameras)
            shown = sum(s.state == "running" and (s.fps or 0) > 0 for s in station.live_status())
            if not ok:
                print(f"warning: only {shown}/{cameras} tiles showed frames", file=sys.stderr)
            _pump(app, 3.0)  # warm-up

            def frames(before=None, wall=None):
                now = (sum(t.frames_shown for t in win.wall.visible_tiles()),
                       sum(c.updates for p in charts.plots.values() for c in p.curves.values()))
                if before is None:
                    return now
                return {"preview_fps_painted": (now[0] - before[0]) / wall,
                        "curve_updates_per_s": (now[1] - before[1]) / wall, "tiles_live": shown}

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


def _spawn(args: list[str], platform: str, timeout: float) -> tuple[float, str]:
    """Run this file as a child; (seconds from spawn to its PAINTED line or nan, its stdout)."""
    return _timed([sys.executable, __file__, *args], platform, timeout, "stdout", "PAINTED", require=False)


APP_MARKER = "first paint"  # what the app prints on stderr when EDGE_STATION_EXIT_AFTER_PAINT=1


def _spawn_app(data_dir: Path, platform: str, timeout: float) -> float:
    """The real command, from spawn until it says it painted (it then quits and closes the station)."""
    cmd = [sys.executable, "-m", "app", "--data-dir", str(data_dir)]
    return _timed(cmd, platform, timeout, "stderr", APP_MARKER, {"EDGE_STATION_EXIT_AFTER_PAINT": "1"})[0]


def _timed(cmd: list[str], platform: str, timeout: float, stream: str, marker: str,
           extra_env: dict[str, str] | None = None, *, require: bool = True) -> tuple[float, str]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform, PYTHONPATH=str(REPO_ROOT), **(extra_env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(REPO_ROOT))
    watched, other = (proc.stdout, proc.stderr) if stream == "stdout" else (proc.stderr, proc.stdout)
    assert watched is not None and other is not None
    first: float | None = None
    lines = []
    for line in watched:
        if marker in line and first is None:
            first = time.perf_counter() - t0
        lines.append(line)
    rest = other.read()
    proc.wait(timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {(''.join(lines) + rest)[-2000:]}")
    if first is None and require:
        raise RuntimeError(f"{cmd} never said {marker!r}: {(''.join(lines) + rest)[-2000:]}")
    out = "".join(lines) if stream == "stdout" else rest
    return (first if first is not None else float("nan")), out


def _result(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no RESULT line in: {out[-500:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--variant", default="wall+charts", help="lag child: wall+charts, wall, charts, table")
    ap.add_argument("--attribution", action="store_true", help="also measure wall only, charts only, table only")
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    ap.add_argument("--start-only", action="store_true", help="only figure 1 (start to first paint)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "bare-start":
        return child_bare_start()
    if args.child == "lag-bare":
        return child_lag_bare(args.seconds)
    if args.child == "lag-wall":
        return child_lag_wall(args.seconds, args.cameras, args.variant)

    print(f"platform {args.platform}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    bare: list[float] = []
    usual: list[float] = []
    first: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-ui-start-") as tmp:
        env_home = Path(tmp) / "home"  # QSettings and the XDG dirs of the children stay in here
        env_home.mkdir()
        os.environ["HOME"] = str(env_home)
        os.environ.pop("XDG_CONFIG_HOME", None)
        usual_dir = Path(tmp) / "usual"
        _spawn_app(usual_dir, args.platform, 120)  # creates, migrates and seeds it; warms the page cache
        _spawn(["--child", "bare-start"], args.platform, 120)  # the same warm-up for the baseline
        for i in range(args.runs):
            order = ("bare", "usual", "first") if i % 2 == 0 else ("first", "usual", "bare")
            for which in order:
                if which == "bare":
                    t = _spawn(["--child", "bare-start"], args.platform, 120)[0]
                    if t != t:  # nan: the bare window never painted
                        raise RuntimeError("the bare window did not paint")
                    bare.append(t)
                elif which == "usual":
                    usual.append(_spawn_app(usual_dir, args.platform, 120))
                else:
                    first.append(_spawn_app(Path(tmp) / f"first-{i}", args.platform, 120))
    mb, mu, mf = statistics.median(bare), statistics.median(usual), statistics.median(first)

    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x * 1000:.0f}" for x in xs)

    print(f"\n1. start to first paint (median of {args.runs}, fresh interpreter, spawn to first paint)")
    print(f"   bare PySide6 + pyqtgraph window        {mb * 1000:8.0f} ms   runs: {runs(bare)}")
    print(f"   Edge Station, database up to date      {mu * 1000:8.0f} ms   runs: {runs(usual)}")
    print(f"   Edge Station, first start (migrates)   {mf * 1000:8.0f} ms   runs: {runs(first)}")
    print(f"   ratio usual start / bare               {mu / mb:8.2f}")
    print(f"   ratio first start / bare               {mf / mb:8.2f}")
    if args.start_only:
        return 0

    rb = _result(_spawn(["--child", "lag-bare", "--seconds", str(args.seconds)], args.platform, 300)[1])
    rw = _result(_spawn(["--child", "lag-wall", "--seconds", str(args.seconds), "--cameras", str(args.cameras)],
                        args.platform, 600)[1])
    ex = rw.get("extra", {})
    print(f"\n2. event-loop lag over {args.seconds:g} s (10 ms precise timer; ms late)")
    print(f"   {'':34}{'p50':>8}{'p99':>8}{'max':>8}")
    print(f"   {'bare window, idle':34}{rb['lag_p50_ms']:8.2f}{rb['lag_p99_ms']:8.2f}{rb['lag_max_ms']:8.2f}")
    label = f"{args.cameras} cameras on wall + charts"
    print(f"   {label:34}{rw['lag_p50_ms']:8.2f}{rw['lag_p99_ms']:8.2f}{rw['lag_max_ms']:8.2f}")
    print(f"   p99 ratio wall / bare            {rw['lag_p99_ms'] / max(rb['lag_p99_ms'], 0.01):8.2f}")
    variants = {}
    if args.attribution:
        for v in ("table", "wall", "charts"):
            variants[v] = _result(_spawn(["--child", "lag-wall", "--seconds", str(args.seconds), "--cameras",
                                          str(args.cameras), "--variant", v], args.platform, 600)[1])
            r = variants[v]
            print(f"   {args.cameras} cameras, {v + ' only':24}{r['lag_p50_ms']:8.2f}{r['lag_p99_ms']:8.2f}"
                  f"{r['lag_max_ms']:8.2f}   CPU {r['cpu_percent']:.1f} %")
    print("\n3. GUI process CPU (% of one core)")
    print(f"   bare window, idle                {rb['cpu_percent']:8.1f}")
    print(f"   {label:34}{rw['cpu_percent']:8.1f}")
    print(f"   preview frames painted/s         {ex.get('preview_fps_painted', float('nan')):8.1f}"
          f"   (tiles live {ex.get('tiles_live')}/{args.cameras}; at most {10 * args.cameras} offered)")
    print(f"   chart curve updates/s            {ex.get('curve_updates_per_s', float('nan')):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
