"""Start the window: ``run_window(station, kiosk=False) -> exit code``.

The window shows at once (the command line has checked the database's schema
first); once it has painted, the station opens (migrations check, supervisor,
autostart) on a background thread. An uncaught exception is logged and shown in a dialog,
and the application keeps running. Closing the window closes the station,
which stops every worker.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.platform.doctor import missing_qt_libraries, qt_platform_name
from app.station.port import StationPort
from app.ui.common.resources import icon, style_sheet
from app.ui.window.main_window import APP_NAME, ORG_NAME, MainWindow

if TYPE_CHECKING:
    from app.ui.kiosk.window import KioskWindow

log = logging.getLogger("edge_station.ui")

#: ``1``: quit as soon as the window has painted once (start-up benchmarks and tests)
EXIT_AFTER_PAINT_ENV = "EDGE_STATION_EXIT_AFTER_PAINT"
#: ``1``: quit as soon as the camera table shows the station's live states (ready to use)
EXIT_AFTER_READY_ENV = "EDGE_STATION_EXIT_AFTER_READY"


class FirstPaintWatch(QObject):
    """Logs how long after the process started the window first painted; optionally quits then."""

    painted = Signal(float)  # milliseconds since the process started

    def __init__(self, app: QApplication, window: QWidget, *, quit_after: bool = False):
        # No Qt parent: a child of the window that also holds the window would make a cycle whose
        # collection can destroy the child twice. The caller keeps it as long as the window.
        super().__init__()
        self._app = app
        self._window = window
        self._quit_after = quit_after
        self.ms: float | None = None
        app.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if (event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                and (obj is self._window or self._window.isAncestorOf(obj))):
            self._app.removeEventFilter(self)
            self.ms = process_age_ms()
            log.info("window painted %.0f ms after the process started", self.ms)
            self.painted.emit(self.ms)  # first: what it starts (the station's open) is queued before the quit
            if self._quit_after:
                print(f"{APP_NAME}: first paint {self.ms:.0f} ms after start, peak RSS {peak_rss_mib():.1f} MiB",
                      file=sys.stderr, flush=True)
                QTimer.singleShot(0, lambda: self._app.exit(0))
        return False


def watch_ready(app: QApplication, window: MainWindow, *, quit_after: bool = False) -> None:
    """Log when the camera table first shows the station's live states; optionally quit then."""

    def shown(rows: int) -> None:
        ms = process_age_ms()
        log.info("camera table filled %.0f ms after the process started (%d cameras)", ms, rows)
        if quit_after:
            print(f"{APP_NAME}: ready {ms:.0f} ms after start, {rows} cameras, peak RSS {peak_rss_mib():.1f} MiB",
                  file=sys.stderr, flush=True)
            QTimer.singleShot(0, lambda: app.exit(0))

    window.camerasShown.connect(shown)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (MiB); 0 where the platform does not say."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def process_age_ms() -> float:
    """Milliseconds since this process started.

    Linux: the start time in /proc/self/stat (clock ticks since boot) against
    CLOCK_BOOTTIME, good to a tick (10 ms). Elsewhere psutil's create time.
    """
    import time

    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return (time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000.0
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return (time.time() - psutil.Process().create_time()) * 1000.0


class ExceptionReporter(QObject):
    """Logs every uncaught exception and shows it in a non-modal dialog (GUI thread)."""

    reported = Signal(str, str)  # title, details
    _post = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__()  # no Qt parent (see FirstPaintWatch); ``parent`` is the dialogs' parent
        self._parent_widget = parent
        self.dialogs: list[QMessageBox] = []
        self.count = 0
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self._post.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        if sys.excepthook == self._hook:
            sys.excepthook = self._previous_hook
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook

    def _hook(self, etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            self._previous_hook(etype, value, tb)
            return
        self.report(etype, value, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        self.report(args.exc_type, args.exc_value, args.exc_traceback,
                    where=self.tr(" in thread {name}").format(name=args.thread.name if args.thread else "?"))

    def report(self, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
               where: str = "") -> None:
        """Log it and show it (safe from any thread)."""
        self.count += 1
        log.error("uncaught exception%s", where, exc_info=(etype, value, tb))
        details = "".join(traceback.format_exception(etype, value, tb))
        title = self.tr("Unexpected error{where}: {kind}: {error}").format(where=where, kind=etype.__name__,
                                                                           error=value)
        try:
            self._post.emit(title, details)
        except RuntimeError:  # the reporter is gone (shutting down)
            pass

    @Slot(str, str)
    def _show(self, title: str, details: str) -> None:
        from app.platform.logsetup import station_log_path

        text = title + "\n\n" + self.tr("The station keeps running. The details are in the log.")
        log_file = station_log_path()
        if log_file is not None:
            text += f"\n{log_file}"
        box = QMessageBox(QMessageBox.Icon.Critical, self.tr("Edge Station — unexpected error"), text,
                          QMessageBox.StandardButton.Ok, self._parent_widget)
        box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self.dialogs.remove(b) if b in self.dialogs else None)
        self.dialogs.append(box)
        box.show()
        self.reported.emit(title, details)


#: ``--kiosk`` whose kiosk window cannot be built exits with this code, as a window that cannot start does
EXIT_KIOSK_UNAVAILABLE = 1


#: the interpreter's thread switch interval in the window's process (s). The station's threads
#: (supervisor, metrics, alerts, watch) run Python beside the GUI thread, which waits for the GIL
#: whenever one holds it: up to the default 5 ms each time, a visible stutter on a busy wall; at
#: 1 ms the event loop's lag p99 with 16 cameras and the charts went from 12-13 ms to 8-11 ms,
#: and the process's CPU did not grow.
GUI_SWITCH_INTERVAL = 0.001


def ensure_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL)
        QApplication.setOrganizationName(ORG_NAME)
        QApplication.setApplicationName(APP_NAME)
        QApplication.setApplicationDisplayName("Edge Station")
        app = QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    return app


class KioskUnavailable(RuntimeError):
    """``--kiosk`` asked for the kiosk window and it cannot be built: the station does not fall back
    to the admin window, which has no operator PIN."""


def build_window(station: StationPort, *, kiosk: bool = False,
                 settings: QSettings | None = None) -> MainWindow | KioskWindow:
    """The window for ``station`` (kiosk: fullscreen wall). Does not open the station.

    Raises :class:`KioskUnavailable` when the kiosk window is asked for and cannot be built.
    """
    if not kiosk:
        return MainWindow(station, settings=settings)
    try:
        from app.ui.kiosk.window import KioskWindow

        return KioskWindow(station, settings=settings)
    except Exception as e:
        raise KioskUnavailable(f"the kiosk window cannot be built ({type(e).__name__}: {e}); "
                               "the admin window does not open in its place (it has no operator PIN)") from e


def _quit_on_signals(app: QApplication) -> Callable[[], None]:
    """SIGTERM/SIGINT (logout, Ctrl-C, a service manager) end the event loop, so the station closes cleanly.

    Python runs signal handlers only between bytecodes; a 200 ms timer lets it in while Qt waits.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, closing the window", signal.Signals(signum).name)
        # exit(), not quit(): Qt 6's quit() with windows open leaves a quit pending that ends the
        # next event loop at once; run_window shuts the window down after exec() returns anyway.
        app.exit(0)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    tick = QTimer()
    tick.setInterval(200)
    tick.timeout.connect(lambda: None)
    tick.start()

    def restore() -> None:
        tick.stop()
        for s, h in old.items():
            signal.signal(s, h)

    return restore


class _OpensStation(Protocol):
    def open_station(self) -> None: ...


#: open the station this long after show() even when no paint came (a hidden or minimised start)
OPEN_FALLBACK_MS = 1000


def _open_after_first_paint(window: _OpensStation, first_paint: FirstPaintWatch) -> None:
    """Open the station once the window has painted, so its imports and migration check do not hold
    the GIL while the first frame is drawn; at the latest :data:`OPEN_FALLBACK_MS` after the show."""
    opened = False

    def open_once() -> None:
        nonlocal opened
        if not opened:
            opened = True
            window.open_station()

    first_paint.painted.connect(lambda _ms: QTimer.singleShot(0, open_once))
    QTimer.singleShot(OPEN_FALLBACK_MS, open_once)


def run_window(station: StationPort, kiosk: bool = False) -> int:
    """Show the window at once, open the station in the background after its first paint, run until closed."""
    if QApplication.instance() is None and qt_platform_name() not in ("offscreen", "minimal"):
        # Qt aborts with only "no Qt platform plugin could be initialized" when its plugin lacks a
        # library: name the libraries and the install command instead (a fresh machine's first run).
        missing = missing_qt_libraries()
        if missing is not None:
            print(f"edge-station: error: the window cannot start. {missing.message()}. "
                  "'edge-station doctor' checks the rest of this machine.", file=sys.stderr)
            station.close()
            return 1
    app = ensure_application()
    from app.ui.common.i18n import install_for_station

    translation = install_for_station(station.paths)  # before any widget is built; kept until exit
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    app.setQuitOnLastWindowClosed(True)
    try:
        window = build_window(station, kiosk=kiosk)
    except KioskUnavailable as e:
        log.error("%s", e, exc_info=e.__cause__)
        print(f"edge-station: error: {e}. Reinstall Edge Station, or start it without --kiosk.", file=sys.stderr)
        translation.remove()
        station.close()
        return EXIT_KIOSK_UNAVAILABLE
    if isinstance(window, MainWindow):  # the kiosk window answers second launches itself
        from app.ui.common.single_instance import install_instance_server

        install_instance_server(window, station)
        watch_ready(app, window, quit_after=os.environ.get(EXIT_AFTER_READY_ENV) == "1")
    reporter = ExceptionReporter(window)
    reporter.install()
    first_paint = FirstPaintWatch(app, window, quit_after=os.environ.get(EXIT_AFTER_PAINT_ENV) == "1")
    _open_after_first_paint(window, first_paint)
    if kiosk:
        window.showFullScreen()
    else:
        window.show()
    restore = _quit_on_signals(app)
    try:
        code = app.exec()
    finally:
        restore()
        reporter.uninstall()
        window.shutdown()  # waits for running operations (the open, a stop...)
        station.close()  # stops every worker
        translation.remove()
    return int(code)
