"""Take a PNG of every page and the main dialogs of the window, as a person would see them.

Runs the real application (demo cameras, real workers) on a temporary data dir
under an X server: it uses $DISPLAY when set, otherwise it starts its own Xvfb
(``apt-get install -y xvfb xauth``). Writes ./screenshots/NN-name.png.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--settle 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.store.stations import StationRegistry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class ScreenshotError(Exception):
    pass


ACTOR = "screenshots"  # the audit log's actor for what the shots set up


@contextmanager
def x_server(width: int = 1600, height: int = 1000, displays: range = range(90, 140)) -> Iterator[str]:
    """Use $DISPLAY, or start Xvfb on a free display number in ``displays`` for the duration.

    Also used by kiosk_screenshots.py (with other display numbers, so both can run at once).
    """
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise ScreenshotError("no $DISPLAY and no Xvfb: apt-get install -y xvfb xauth fonts-noto-cjk, "
                              "or run under xvfb-run")
    num = next((n for n in displays if not Path(f"/tmp/.X11-unix/X{n}").exists()
                and not Path(f"/tmp/.X{n}-lock").exists()), None)
    if num is None:
        raise ScreenshotError(f"no free X display number in :{displays.start}..:{displays.stop - 1}")
    proc = subprocess.Popen([xvfb, f":{num}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{num}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ScreenshotError(f"Xvfb :{num} did not start")
            time.sleep(0.05)
        os.environ["DISPLAY"] = f":{num}"
        yield f":{num}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("screenshots"))
    ap.add_argument("--settle", type=float, default=12.0, help="seconds of live data before the charts shot")
    ap.add_argument("--size", default="1440x900")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("QT_QPA_PLATFORM", None)
    with x_server(), tempfile.TemporaryDirectory(prefix="edge-station-shots-") as tmp:
        return _shoot(Path(tmp), args.out, args.settle, w, h)


def _shoot(tmp: Path, out: Path, settle: float, width: int, height: int) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from app.domain import AlertRule, Comparator, Severity, TargetKind
    from app.domain.operations import CameraRef, CreateRule
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions
    from app.ui.app import ensure_application
    from app.ui.common.resources import style_sheet
    from app.ui.window.dialogs import LogsDialog, ProbeDialog, SnapshotDialog
    from app.ui.window.main_window import MainWindow

    app = ensure_application(["screenshots"])
    app.setStyleSheet(style_sheet())
    station = Station(StationOptions(paths=resolve_paths(tmp / "data"), seed_demo=True, autostart=True))
    settings = QSettings(str(tmp / "ui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(station, settings=settings)
    window.resize(width, height)
    window.show()
    window.open_station()
    shots: list[Path] = []
    others = None  # the registry of the database, for the other stations of the Fleet page's shot

    def pump(seconds: float, until: Callable[[], bool] | None = None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if until is not None and until():
                return True
            time.sleep(0.02)
        return until() if until else True

    def shot(name: str, widget: QWidget) -> None:
        pump(0.4)
        path = out / f"{len(shots) + 1:02d}-{name}.png"
        if not widget.grab().save(str(path)):
            raise ScreenshotError(f"could not write {path}")
        shots.append(path)
        print(f"wrote {path}")

    try:
        if not pump(60, lambda: window.ready or window.open_error is not None) or not window.ready:
            raise ScreenshotError(f"the station did not open: {window.open_error}")
        others = _other_stations(station.paths.db_url)  # "yard" registers now and never heartbeats again
        # Some life for the alert and rollout pages: a rule that fires, routed calls on both paths.
        lobby = next(c for c in station.cameras() if c.name == "Lobby")
        station.call("create_rule", CreateRule(AlertRule(
            name="Lobby motion seen", metric="motion_active", comparator=Comparator.GE, threshold=1,
            target=TargetKind.CAMERA, camera_id=lobby.id, severity=Severity.INFO, cooldown=0)), actor=ACTOR)
        station.call("create_rule", CreateRule(AlertRule(
            name="Any camera under 12 fps", metric="fps", comparator=Comparator.LT, threshold=12,
            target=TargetKind.ALL_CAMERAS, severity=Severity.WARNING, for_seconds=2)), actor=ACTOR)
        station.reload_rules()
        # a demo station has never been verified: the gate holds, so the shots override it
        station.rollout_set(use_domain=True, percent=50, actor=ACTOR, override_reason="screenshots of a demo station")
        for _ in range(30):
            for cam in station.cameras():
                station.call("camera_status", CameraRef(cam.id), actor=ACTOR)

        live = [c.id for c in station.cameras() if c.active]
        window.tabs.setCurrentWidget(window.wall)
        if not pump(60, lambda: all((t := window.wall.tile(cid)) is not None and t.frames_shown > 2
                                    and t.status is not None and (t.status.fps or 0) > 0 for cid in live)):
            print("warning: not every active camera showed frames within 60 s", file=sys.stderr)
        shot("wall-2x2", window)
        window.show_page("cameras")
        window.select_camera(lobby.id)
        shot("cameras", window)
        pump(max(0.0, settle))
        for key in ("charts", "alerts", "rules", "rollout"):
            window.show_page(key)
            pump(2.5)
            shot(key, window)
        _fleet_shot(window, others, pump, shot)
        window.wall.set_grid(3)
        window.tabs.setCurrentWidget(window.wall)
        pump(1.0)
        shot("wall-3x3", window)
        fs = window.wall.show_fullscreen(lobby.id)
        pump(1.5)
        shot("wall-fullscreen-tile", fs)
        fs.close()

        dlg = window.add_camera_dialog()
        dlg.form.name.setText("Garage")
        dlg.form.source.setText("ftp://192.168.1.20/cam")
        shot("dialog-add-camera-invalid", dlg)
        dlg.reject()
        edit = window.edit_camera_dialog(lobby.id)
        shot("dialog-edit-camera", edit)
        edit.reject()
        sd = window.settings_dialog()
        pump(2, lambda: sd._rollout_loaded is not None)
        for i in range(sd.tabs.count()):
            sd.tabs.setCurrentIndex(i)
            shot(f"settings-{sd.tabs.tabText(i).lower().replace(' ', '-')}", sd)
        sd.reject()
        logs = window.open_camera_dialog(LogsDialog, lobby.id)
        pump(5, lambda: len(logs.lines) > 0)
        shot("dialog-logs", logs)
        logs.close()
        snap = window.open_camera_dialog(SnapshotDialog, lobby.id)
        pump(10, lambda: snap.pixmap is not None)
        shot("dialog-snapshot", snap)
        snap.close()
        gate = next(c for c in station.cameras() if c.name == "Front gate")
        probe = window.open_camera_dialog(ProbeDialog, gate.id)
        pump(20, lambda: probe.probe_result is not None or probe.error is not None)
        shot("dialog-probe", probe)
        probe.close()
        window.stop_camera(lobby.id)
        window.tabs.setCurrentWidget(window.wall)
        window.wall.set_grid(2)
        pump(15, lambda: window.wall.tile(lobby.id).offline)
        pump(1.0)
        shot("wall-offline", window)
    finally:
        window.shutdown()
        window.close()
        station.close()
        if others is not None:
            others.store.dispose()
        app.processEvents()
    print(f"{len(shots)} screenshots in {out}/")
    return 0


def _other_stations(db_url: str) -> StationRegistry:
    """Register a station "yard" on the window's database, as another box would; it never
    heartbeats again, so the Fleet page shows it gone once the fleet's gone threshold passed."""
    import uuid

    from app.domain.fleet import StationReport
    from app.store import open_store
    from app.store.stations import StationRegistry

    registry = StationRegistry(open_store(db_url))
    registry.claim(str(uuid.uuid4()), "yard", version="0.0.9", host="yard-box", pid=4711, gone_after=20,
                   report=StationReport(cameras_up=1, cameras_total=2, health="degraded",
                                        problems=("Gate: stream stalled",),
                                        stages={"cameras": {"stage": 1, "percent": 10}}))
    return registry


def _fleet_shot(window: Any, registry: StationRegistry, pump: Callable[..., bool],
                shot: Callable[[str, Any], None]) -> None:
    """A second box "dock" joins and heartbeats: the window shows its Fleet page, with "yard" gone."""
    import uuid

    from app.domain.fleet import StationReport

    dock = str(uuid.uuid4())
    report = StationReport(cameras_up=3, cameras_total=3, health="ok",
                           stages={"cameras": {"stage": 2, "percent": 25}, "rules": {"stage": 1, "percent": 10}})
    registry.claim(dock, "dock", version="0.1.0", host="dock-box", pid=1234, gone_after=20, report=report)

    def shown() -> bool:
        registry.heartbeat(dock, report)
        snap = window.fleet_bridge.latest
        yard = snap.station("yard") if snap is not None else None
        return window.fleet_page_shown and yard is not None and yard.liveness.value == "gone"

    if not pump(60, lambda: pump(1.0) and shown()):
        print("warning: the Fleet page did not show 'yard' gone within 60 s", file=sys.stderr)
    window.show_page("fleet")
    pump(1.0)
    shot("fleet", window)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScreenshotError as e:
        print(f"screenshots: {e}", file=sys.stderr)
        sys.exit(1)
