"""Screenshots of kiosk mode in English and Simplified Chinese, as the screen shows them.

Runs the real kiosk (demo cameras, real workers on synthetic sources) on a
temporary data dir under an X server: $DISPLAY when set, otherwise its own Xvfb
(``apt-get install -y xvfb xauth fonts-noto-cjk``; Chinese needs a CJK font).
Each language runs in its own process. Writes, for LANG in en and zh_CN:

    screenshots/kiosk-LANG-1-wall.png     the wall with the alert ticker
    screenshots/kiosk-LANG-2-popup.png    a camera popped up by a critical alert
    screenshots/kiosk-LANG-3-pin.png      Esc: the PIN prompt after a wrong PIN
    screenshots/kiosk-LANG-4-locked.png   the prompt locked after repeated wrong PINs

    .venv/bin/python scripts/kiosk_screenshots.py [--out screenshots] [--language en]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import ScreenshotError, x_server  # noqa: E402  (the Xvfb start-up both scripts use)

LANGUAGES = ("en", "zh_CN")
SIZE = (1280, 720)


DEMO_RULES = {
    "en": {"no_motion": ("No motion for 10 minutes", "motion 0.000 below 0.010"),
           "motion": ("Motion detected", "motion 0.31 above 0.05")},
    "zh_CN": {"no_motion": ("10 分钟无运动", "运动量 0.000 低于 0.010"),
              "motion": ("检测到运动", "运动量 0.31 高于 0.05")},
}


def catalogue_dir(tmp: Path) -> Path:
    """The built .qm files (``make translations``), or the committed .ts compiled into ``tmp``."""
    from app.ui.common.i18n import qm_path, translations_dir, ts_path

    if qm_path("zh_CN").is_file() and qm_path("zh_CN").stat().st_mtime >= ts_path("zh_CN").stat().st_mtime:
        return translations_dir()
    lrelease = Path(sys.executable).parent / "pyside6-lrelease"
    subprocess.run([str(lrelease), "-silent", str(ts_path("zh_CN")), "-qm", str(tmp / "edge_station_zh_CN.qm")],
                   check=True, timeout=60)
    return tmp


def shoot_language(language: str, out: Path, settle: float) -> list[Path]:
    os.environ.pop("QT_QPA_PLATFORM", None)
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.domain.alerts import AlertChange, ChangeKind
    from app.domain.rules import Severity
    from app.kiosk.pin import save_pin
    from app.platform.paths import resolve_paths
    from app.station import Station, StationEvent, StationOptions
    from app.ui.app import ensure_application
    from app.ui.common.i18n import install_translation
    from app.ui.common.resources import style_sheet
    from app.ui.kiosk.window import KioskWindow, PinDialog

    app = ensure_application([sys.argv[0]])
    app.setStyleSheet(style_sheet())

    def wait(seconds: float, until: Callable[[], bool] | None = None) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if until is not None and until():
                return True
            time.sleep(0.02)
        return until is None

    shots: list[Path] = []

    def shoot(name: str) -> None:
        wait(0.6)
        path = out / f"kiosk-{language}-{name}.png"
        if not app.primaryScreen().grabWindow(0).save(str(path)):
            raise ScreenshotError(f"could not write {path}")
        shots.append(path)
        print(f"wrote {path}", flush=True)

    with tempfile.TemporaryDirectory(prefix="edge-station-kiosk-shots-") as tmp:
        t = install_translation(language, directory=catalogue_dir(Path(tmp)))
        if t.missing and language != "en":
            print(f"warning: missing catalogues {t.missing}", file=sys.stderr)
        data = Path(tmp) / "data"
        station = Station(StationOptions(paths=resolve_paths(data), seed_demo=True, autostart=False))
        station.open()
        with station.parts().store.uow() as uow:
            uow.settings.set_many({"kiosk.grid": 2, "kiosk.cycle_s": 0, "kiosk.popup_s": 600,
                                   "kiosk.popup_severity": "critical"})
            uow.commit()
        save_pin(station.paths.data_dir, "2468")
        window = KioskWindow(station, autostart=True)
        try:
            window.showFullScreen()
            window.open_station()
            if not wait(30, lambda: window.ready):
                raise ScreenshotError(f"the station did not open: {window.open_error}")
            live = [c.id for c in station.cameras() if c.active]
            wait(45, lambda: all((t := window.wall.tile(c)) is not None and t.frames_shown > 2 for c in live))
            wait(settle)
            cams = {c.name: c.id for c in station.cameras()}

            def alert(cam: str, severity: Severity, rule: str, message: str, rule_id: int) -> None:
                change = AlertChange(kind=ChangeKind.FIRING, rule_name=rule, severity=severity, subject=cam,
                                     at=datetime.now(UTC), notify=True, rule_id=rule_id,
                                     camera_id=cams[cam], message=message)
                station.emit(StationEvent("alert", cams[cam], change))

            # Rule names and messages are the integrator's own data: a Chinese site names them in Chinese.
            names = DEMO_RULES[language]
            alert("Server room", Severity.WARNING, *names["no_motion"], 11)
            wait(0.5)
            shoot("1-wall")
            alert("Loading dock", Severity.CRITICAL, *names["motion"], 12)
            wait(5, lambda: window.popup is not None)
            wait(2, lambda: window.popup is not None and window.popup.tile.frames_shown > 1)
            shoot("2-popup")
            window.close_popup()
            dlg = window.request_exit()
            assert isinstance(dlg, PinDialog)
            dlg.pin_edit.setText("1111")
            dlg.submit()
            wait(5, lambda: dlg.attempts >= 1)
            dlg.pin_edit.setText("12")
            shoot("3-pin")
            for _ in range(3):
                dlg.pin_edit.setText("0000")
                dlg.submit()
                wait(5, lambda: not dlg.checking)
            shoot("4-locked")
            dlg.reject()
        finally:
            window.shutdown()
            window.deleteLater()
            station.close()
            t.remove()
            QTimer.singleShot(0, app.quit)
            app.processEvents()
            QApplication.processEvents()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "screenshots")
    ap.add_argument("--language", choices=LANGUAGES, help="one language in this process (default: each, in turn)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds of live video before the first shot")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    try:
        with x_server(*SIZE, displays=range(140, 190)):
            if a.language:
                shoot_language(a.language, a.out, a.settle)
                return 0
            for lang in LANGUAGES:
                run = subprocess.run([sys.executable, __file__, "--language", lang, "--out", str(a.out),
                                      "--settle", str(a.settle)], timeout=300)
                if run.returncode != 0:
                    raise ScreenshotError(f"{lang}: the screenshot run failed (exit {run.returncode})")
    except ScreenshotError as e:
        print(f"kiosk_screenshots: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
