"""Kiosk mode (``edge-station --kiosk``): the camera wall on the whole screen, for an unattended display.

* frameless and fullscreen, no menus; if the desktop takes fullscreen away the
  window goes back to it;
* an alert ticker along the bottom with every firing alert;
* Esc, Alt+F4, any close event and the settings (Ctrl+, or the ⚙ button) ask
  for the operator PIN (a salted scrypt hash in the data dir, see
  :mod:`app.kiosk.pin`; wrong attempts are rate limited). Without a stored PIN
  they ask for a confirmation and the ticker says that the kiosk is unprotected;
* active cameras autostart; the wall cycles through its pages every
  ``kiosk.cycle_s`` seconds; a camera with a new alert (at least
  ``kiosk.popup_severity``) fills the screen for ``kiosk.popup_s`` seconds;
* the mouse cursor hides after ``kiosk.cursor_idle_s`` seconds without input;
* the screen saver is inhibited through the freedesktop D-Bus service when the
  desktop offers it (the log says when it cannot be);
* a second launch on the same data dir brings this window forward.

What the kiosk decides (PIN and lockout, pages, which alert pops up and for how long, the
cursor) lives without Qt in :class:`app.kiosk.model.KioskModel`; this window draws what the
model says (it subscribes to ``model.changed``) and forwards input, station events and the
time to it (a 250 ms timer calls :meth:`KioskWindow.tick`, against an injectable monotonic clock).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QCursor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.kiosk.model import AlertLine, Change, KioskModel, Notice, Prompt, alert_line
from app.kiosk.pin import MAX_LEN, MIN_LEN, PinGuard, load_pin
from app.kiosk.settings import KioskSettings, load_kiosk_settings
from app.station.port import StationPort
from app.ui.common.bridge import StationBridge
from app.ui.common.formatting import fmt_clock
from app.ui.common.single_instance import InstanceServer, InstanceServerError
from app.ui.common.tasks import TaskRunner
from app.ui.kiosk.screensaver import ScreenSaverInhibitor
from app.ui.wall.camera_wall import CameraTile, CameraWall

log = logging.getLogger("edge_station.kiosk")

TICK_MS = 250
REFRESH_MS = 500
POPUP_FRAME_MS = 100
TICKER_STEP_PX = 2
TICKER_FRAME_MS = 40

#: PIN prompts are read from a few steps away and typed on touch screens: larger than desktop dialogs
DIALOG_STYLE = ("QDialog { border: 2px solid #546e7a; } QLabel { font-size: 15pt; } "
                "QLineEdit { font-size: 22pt; padding: 6px; } QPushButton { font-size: 14pt; padding: 6px 18px; }")

SEVERITY_COLOURS = {"info": "#42a5f5", "warning": "#ffb300", "critical": "#ef5350"}


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


# ---------------------------------------------------------------------- alert ticker


@dataclass(frozen=True)
class TickerItem:
    """A ticker line as drawn: the model's :class:`~app.kiosk.model.AlertLine` in words."""

    key: tuple[object, object]
    severity: str
    text: str
    at: float


class AlertTicker(QWidget):
    """One line along the bottom of the screen; scrolls when the alerts do not fit. Draws the items
    it is given (the kiosk model orders them) after the standing notice."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("kioskTicker")
        self._items: list[TickerItem] = []
        self.notice = ""  # a standing note (no PIN set, station could not open...)
        self.offset = 0
        self.setMinimumHeight(40)
        self._timer = QTimer(self)
        self._timer.setInterval(TICKER_FRAME_MS)
        self._timer.timeout.connect(self.step)
        self._timer.start()

    # ---- content

    def set_items(self, items: list[TickerItem]) -> None:
        self._items = list(items)
        self.update()

    def items(self) -> list[TickerItem]:
        """In the order shown: critical before warning before info, newest first."""
        return list(self._items)

    def text(self) -> str:
        parts = [i.text for i in self._items]
        if not parts:
            parts = [self.tr("No active alerts")]
        if self.notice:
            parts.insert(0, self.notice)
        return "     ◆     ".join(parts)

    # ---- drawing

    def step(self) -> None:
        """Scroll by a few pixels when the line does not fit (no repaint while it stands still)."""
        font = QFont(self.font())
        font.setPointSizeF(max(11.0, self.height() / 3.2))
        font.setBold(bool(self._items))
        width = QFontMetrics(font).horizontalAdvance(self.text())
        if width <= self.width() - 16:
            if self.offset:
                self.offset = 0
                self.update()
            return
        self.offset = (self.offset + TICKER_STEP_PX) % (width + 80)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        items = self.items()
        top = _text(items[0].severity) if items else ""
        bg = QColor(SEVERITY_COLOURS.get(top, "#263238"))
        bg.setAlpha(70 if items else 255)
        p.fillRect(self.rect(), QColor("#101316"))
        p.fillRect(self.rect(), bg)
        font = QFont(self.font())
        font.setPointSizeF(max(11.0, self.height() / 3.2))
        font.setBold(bool(items))
        p.setFont(font)
        p.setPen(QColor("#ffffff"))
        fm = p.fontMetrics()
        y = (self.height() + fm.ascent() - fm.descent()) // 2
        text = self.text()
        width = fm.horizontalAdvance(text)
        x = 8 - self.offset
        p.drawText(x, y, text)
        if width > self.width() - 16:  # seamless loop
            p.drawText(x + width + 80, y, text)
        p.end()


# ---------------------------------------------------------------------- PIN dialog


class PinDialog(QDialog):
    """Asks for the operator PIN; ``unlocked`` is emitted once it is right (the check runs off the GUI thread)."""

    unlocked = Signal()

    def __init__(self, purpose: str, guard: PinGuard, check: Callable[[str], bool], tasks: TaskRunner,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("kioskPinDialog")
        self.setModal(True)
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self.purpose = purpose
        self._guard = guard
        self._check = check
        self._tasks = tasks
        self.checking = False
        self.attempts = 0
        self.setWindowTitle(self.tr("Operator PIN"))
        self.setMinimumWidth(520)
        self.setStyleSheet(DIALOG_STYLE)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 20)
        lay.setSpacing(12)
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        self.pin_edit = QLineEdit()
        self.pin_edit.setObjectName("pinEdit")
        self.pin_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin_edit.setMaxLength(MAX_LEN)
        self.pin_edit.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly)
        self.pin_edit.setPlaceholderText(
            self.tr("{low} to {high} digits").format(low=MIN_LEN, high=MAX_LEN))
        self.message = QLabel()
        self.message.setObjectName("pinMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(self.tr("Unlock"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(self.tr("Cancel"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.prompt)
        lay.addWidget(self.pin_edit)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)
        self.prompt.setText(self._prompt_text())
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._update_lock)
        self._update_lock()

    def _prompt_text(self) -> str:
        if self.purpose == "settings":
            return self.tr("Enter the operator PIN to open the settings.")
        return self.tr("Enter the operator PIN to leave kiosk mode.")

    @property
    def locked(self) -> bool:
        return self._guard.locked_for() > 0

    def submit(self) -> None:
        if self.checking:
            return
        if self.locked:  # refused unchecked; say why again
            self.pin_edit.clear()
            self._update_lock()
            return
        pin = self.pin_edit.text().strip()
        if not pin:
            self.message.setText(self.tr("Type the PIN first."))
            return
        self.checking = True
        self.ok_button.setEnabled(False)
        self.message.setText(self.tr("Checking…"))
        self._tasks.submit("check operator PIN", self._check, pin, on_ok=self._checked,
                           on_error=self._failed, owner=self)

    def _checked(self, ok: bool) -> None:
        self.checking = False
        self.attempts += 1
        self.pin_edit.clear()
        if ok:
            self.message.setText("")
            self.unlocked.emit()
            self.accept()
            return
        log.warning("kiosk: wrong operator PIN entered (%d attempts in this prompt) to %s",
                    self.attempts, "open the settings" if self.purpose == "settings" else "leave kiosk mode")
        self.message.setText(self.tr("Wrong PIN."))
        self._update_lock()

    def _failed(self, err: BaseException) -> None:
        self.checking = False
        log.error("the PIN could not be checked: %s", err)
        self.message.setText(self.tr("The PIN could not be checked: {error}").format(error=err))
        self._update_lock()

    def _update_lock(self) -> None:
        wait = self._guard.locked_for()
        locked = wait > 0
        self.pin_edit.setEnabled(not locked)
        self.ok_button.setEnabled(not locked and not self.checking)
        if locked:
            self.pin_edit.clear()
            self.message.setText(self.tr("Too many wrong PINs. Try again in {seconds} s.")
                                 .format(seconds=int(wait + 0.999)))
            if not self._countdown.isActive():
                self._countdown.start()
        else:
            if self._countdown.isActive():
                self._countdown.stop()
                self.message.setText("")
            self.pin_edit.setFocus()


class UnprotectedDialog(QDialog):
    """No PIN stored: leaving (or opening the settings) only needs a confirmation."""

    def __init__(self, purpose: str, data_dir: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("kioskUnprotectedDialog")
        self.setModal(True)
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self.purpose = purpose
        self.setWindowTitle(self.tr("No operator PIN"))
        self.setMinimumWidth(560)
        self.setStyleSheet(DIALOG_STYLE)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 20)
        lay.setSpacing(12)
        text = QLabel(self.tr("No operator PIN is set, so anyone at this screen can leave kiosk mode or "
                              "change the settings.\nSet a PIN on this machine with:\n"
                              "edge-station pin set --data-dir {path}").format(path=data_dir))
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            self.tr("Open the settings") if purpose == "settings" else self.tr("Leave kiosk mode"))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(self.tr("Cancel"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)


# ---------------------------------------------------------------------- pop-up


class AlertPopup(QWidget):
    """A camera on the whole kiosk screen with the alert that brought it up; a click dismisses it."""

    dismissed = Signal()

    def __init__(self, camera_id: int, name: str, title: str, severity: str,
                 preview_path_for: Callable[[int], Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("kioskPopup")
        self.camera_id = camera_id
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.banner = QLabel(title)
        self.banner.setObjectName("kioskPopupBanner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Wraps (two lines at most on a small screen) and never widens the window past the screen.
        self.banner.setWordWrap(True)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.banner.setToolTip(title)
        colour = SEVERITY_COLOURS.get(severity, "#ffb300")
        self.banner.setStyleSheet(f"background: {colour}; color: #000; font-size: 20pt; font-weight: bold;"
                                  "padding: 6px;")
        self.tile = CameraTile(camera_id, name, preview_path_for)
        lay.addWidget(self.banner)
        # The live camera, and beside it the snapshot taken when the alert fired (once it is on disk).
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.tile, 3)
        self.snapshot = QLabel()
        self.snapshot.setObjectName("kioskPopupSnapshot")
        self.snapshot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.snapshot.setMinimumWidth(1)
        self.snapshot.setStyleSheet("background: #000; color: #ddd; font-size: 14pt;")
        self.snapshot.hide()
        body.addWidget(self.snapshot, 2)
        lay.addLayout(body, 1)
        self.tile.doubleClicked.connect(lambda _cid: self.dismissed.emit())

    def show_snapshot(self, image: Any, caption: str = "") -> None:
        """Show the alert's snapshot (a QImage) beside the live view."""
        pm = QPixmap.fromImage(image)
        self.snapshot.show()
        width = max(160, self.width() * 2 // 5)
        self.snapshot.setPixmap(pm.scaledToWidth(min(width, pm.width() or width),
                                                 Qt.TransformationMode.SmoothTransformation))
        self.snapshot.setToolTip(caption)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.dismissed.emit()
        event.accept()


# ---------------------------------------------------------------------- the window


class KioskWindow(QWidget):
    """The kiosk's only window. Takes the station facade; same lifecycle as the main window
    (``open_station()``, ``shutdown()``, ``stationReady``)."""

    stationReady = Signal()
    exitRequested = Signal(str)  # "exit" or "settings": a PIN prompt is up
    popupShown = Signal(int)  # camera id
    popupClosed = Signal()

    def __init__(self, station: StationPort, *, settings: QSettings | None = None, tasks: TaskRunner | None = None,
                 clock: Callable[[], float] = time.monotonic, autostart: bool = True,
                 inhibitor: ScreenSaverInhibitor | None = None, instance_server: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint)
        self.setObjectName("kioskWindow")
        self.station = station
        self.qsettings = settings
        self.tasks = tasks if tasks is not None else TaskRunner(self)
        self.bridge = StationBridge(station, self)
        self.clock = clock
        self.autostart = autostart
        self.model = KioskModel(station.paths.data_dir, clock=clock)
        self.ready = False
        self._shut_down = False
        self._close_allowed = False
        self._prompt: QDialog | None = None
        self.popup: AlertPopup | None = None
        self._last_cursor_pos = QCursor.pos()
        self.inhibitor = inhibitor if inhibitor is not None else ScreenSaverInhibitor(parent=self)
        self._instance_server_wanted = instance_server
        self.instance_server: InstanceServer | None = None
        self.settings_dialog: QWidget | None = None

        self.setWindowTitle(self.tr("Kiosk"))  # the desktop adds the product name
        self.setStyleSheet("#kioskWindow { background: #000; }")
        self.wall = CameraWall(self._preview_path, controls=False)
        self.wall.setObjectName("kioskWall")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.wall)
        self.ticker = AlertTicker()
        self.clock_label = QLabel()
        self.clock_label.setObjectName("kioskClock")
        self.clock_label.setStyleSheet("color: #cfd8dc; font-size: 16pt; padding: 0 10px;")
        self.settings_button = QToolButton()
        self.settings_button.setObjectName("kioskSettingsButton")
        self.settings_button.setText("⚙")
        self.settings_button.setToolTip(self.tr("Settings (operator PIN)"))
        self.settings_button.setAutoRaise(True)
        self.settings_button.setStyleSheet("color: #90a4ae; font-size: 16pt;")
        self.settings_button.clicked.connect(self.request_settings)
        self.page_label = QLabel()
        self.page_label.setObjectName("kioskPage")
        self.page_label.setStyleSheet("color: #cfd8dc; font-size: 14pt; padding: 0 8px;")
        self.page_label.hide()
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(0)
        bar.addWidget(self.ticker, 1)
        bar.addWidget(self.page_label)
        bar.addWidget(self.clock_label)
        bar.addWidget(self.settings_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.stack, 1)
        outer.addLayout(bar)

        QShortcut(QKeySequence("Ctrl+,"), self, self.request_settings)

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.tick_timer = QTimer(self)
        self.tick_timer.setInterval(TICK_MS)
        self.tick_timer.timeout.connect(self.tick)
        self.popup_timer = QTimer(self)
        self.popup_timer.setInterval(POPUP_FRAME_MS)
        self.popup_timer.timeout.connect(self._poll_popup)
        self.bridge.alertRaised.connect(self.on_alert_event)
        self.bridge.settingsChanged.connect(lambda _ev: self.reload_settings())
        self.bridge.camerasChanged.connect(self.refresh)
        self.bridge.stateChanged.connect(lambda _ev: self.refresh())
        self._unsubscribe = self.model.changed.subscribe(self._model_changed)
        self._update_clock()
        self._update_notice()

    # ------------------------------------------------------------ the model's state, as the window shows it

    @property
    def kiosk(self) -> KioskSettings:
        return self.model.settings

    @property
    def guard(self) -> PinGuard:
        return self.model.guard

    @property
    def has_pin(self) -> bool | None:
        return self.model.has_pin

    @property
    def open_error(self) -> BaseException | None:
        return self.model.open_error

    @property
    def cycles(self) -> int:
        return self.model.cycles

    @property
    def cursor_hidden(self) -> bool:
        return self.model.cursor_hidden

    def _model_changed(self, change: Change) -> None:
        if self._shut_down and change is not Change.POPUP_CLOSED:
            return
        if change is Change.ALERTS:
            self.ticker.set_items([self._ticker_item(line) for line in self.model.alert_lines()])
        elif change is Change.NOTICE:
            self._update_notice()
        elif change is Change.SETTINGS:
            for problem in self.model.settings.problems:
                log.warning("%s", problem)
            self._fit_grid()
        elif change is Change.NEXT_PAGE:
            self.wall.next_page()
            self._fit_grid()
        elif change is Change.CURSOR:
            self.setCursor(Qt.CursorShape.BlankCursor if self.model.cursor_hidden else Qt.CursorShape.ArrowCursor)
        elif change is Change.POPUP_CLOSED:
            self._remove_popup()

    # ------------------------------------------------------------ lifecycle (same as MainWindow)

    def open_station(self) -> None:
        """Open the station off the GUI thread, then autostart, load kiosk settings and the PIN."""
        self.bridge.attach()
        self.tick_timer.start()
        self.tasks.submit("open station", self._open, on_ok=self._opened, on_error=self._open_failed)

    def _open(self) -> tuple[KioskSettings, bool]:
        self.station.open()
        if self.autostart:
            self.station.autostart()  # idempotent: cameras already started by the station stay as they are
        return load_kiosk_settings(self.station), load_pin(self.station.paths.data_dir) is not None

    def _opened(self, result: tuple[KioskSettings, bool]) -> None:
        if self._shut_down:
            return
        kiosk, has_pin = result
        self.ready = True
        self.model.opened(kiosk, has_pin)
        if not has_pin:
            log.warning("kiosk mode without an operator PIN: exit and settings are unprotected "
                        "(set one with 'edge-station pin set')")
        self.refresh()
        self.refresh_timer.start()
        self._seed_alerts()
        if self._instance_server_wanted:
            self._start_instance_server()
        self.stationReady.emit()

    def _open_failed(self, err: BaseException) -> None:
        self.model.open_failed(err)
        from app.station import StationAlreadyRunning

        if isinstance(err, StationAlreadyRunning):
            # Another launch won the race for the data dir: bring it forward and leave.
            from app.kiosk.instance import hand_off

            def leave(answer: Any) -> None:
                log.warning("%s", answer.message if answer is not None else err)
                self._close_allowed = True
                QTimer.singleShot(0, self.close)

            self.tasks.submit("hand off to the running station", hand_off, self.station.paths.data_dir,
                              on_ok=leave, on_error=lambda e: leave(None))
            return
        log.error("the station could not open: %s", err, exc_info=err)

    def _start_instance_server(self) -> None:
        server = self.instance_server = InstanceServer(self)
        try:
            server.listen(self.station.paths.data_dir, self.station.instance_lock)
        except (InstanceServerError, OSError, RuntimeError) as e:
            log.warning("a second launch will not be able to raise the kiosk: %s", e)

    def shutdown(self) -> None:
        """Stop timers, event delivery and the screen-saver inhibition; the caller closes the station."""
        if self._shut_down:
            return
        self._shut_down = True
        for t in (self.refresh_timer, self.tick_timer, self.popup_timer):
            t.stop()
        self.close_popup()
        self._unsubscribe()
        self.wall.shutdown()
        self.inhibitor.release()
        if self.instance_server is not None:
            self.instance_server.close()
        self.bridge.detach()
        self.tasks.shutdown(wait=True)

    def showFullScreen(self) -> None:  # noqa: N802 - Qt's name
        """Fullscreen, also without a window manager (a bare X server on a kiosk box ignores the
        fullscreen request, so the window takes the screen's geometry itself)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.geometry())
        super().showFullScreen()

    def bring_forward(self) -> None:
        """A second launch asked for this window: back to fullscreen, on top."""
        self.showFullScreen()
        self.raise_()
        self.activateWindow()

    # ------------------------------------------------------------ settings and PIN

    def apply_settings(self, kiosk: KioskSettings) -> None:
        self.model.apply_settings(kiosk)

    def reload_settings(self) -> None:
        if not self.ready or self._shut_down:
            return
        self.tasks.submit("kiosk settings", load_kiosk_settings, self.station, on_ok=self.apply_settings,
                          quiet=True)

    def check_pin(self, pin: str) -> bool:
        """Check ``pin`` against the PIN stored now (a PIN set from the CLI counts at once). Blocking (scrypt)."""
        return self.model.check_pin(pin)

    def request_exit(self) -> QDialog | None:
        return self._ask("exit")

    def request_settings(self) -> QDialog | None:
        return self._ask("settings")

    def _ask(self, purpose: str) -> QDialog | None:
        if self._prompt is not None:  # one prompt at a time
            self._prompt.raise_()
            return self._prompt
        self.model.show_cursor()
        prompt = self.model.prompt()
        self._update_notice()
        if prompt is Prompt.PIN:
            dlg: QDialog = PinDialog(purpose, self.guard, self.check_pin, self.tasks, self)
        else:
            dlg = UnprotectedDialog(purpose, self.station.paths.data_dir, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda p=purpose: self._unlocked(p))
        dlg.finished.connect(lambda _r: self._prompt_closed())
        self._prompt = dlg
        self.exitRequested.emit(purpose)
        dlg.open()
        self._centre(dlg)
        return dlg

    def _centre(self, dlg: QWidget) -> None:
        """On the middle of the kiosk (without a window manager nobody else places it), within it."""
        dlg.adjustSize()
        area = self.geometry() if self.isVisible() else (self.screen() or QApplication.primaryScreen()).geometry()
        w, h = min(dlg.width(), area.width()), min(dlg.height(), area.height())
        dlg.resize(w, h)
        dlg.move(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2)

    def _prompt_closed(self) -> None:
        self._prompt = None
        self.model.user_input()

    def _unlocked(self, purpose: str) -> None:
        if purpose == "exit":
            log.info("kiosk mode left by the operator")
            self._close_allowed = True
            QTimer.singleShot(0, self.close)
        else:
            QTimer.singleShot(0, self.open_settings)

    def open_settings(self) -> QWidget:
        """The station's settings dialog (only after the PIN, see :meth:`request_settings`)."""
        from app.ui.window.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.station, self.tasks, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.setCursor(Qt.CursorShape.ArrowCursor)
        applied = getattr(dlg, "applied", None)
        if applied is not None:
            applied.connect(self.reload_settings)
        self.settings_dialog = dlg
        dlg.open()
        return dlg

    # ------------------------------------------------------------ Qt events

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._close_allowed or self._shut_down:
            self.shutdown()
            event.accept()
            return
        event.ignore()  # Alt+F4, the window manager, a stray close(): the PIN decides
        QTimer.singleShot(0, self.request_exit)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self._user_input()
        key = event.key()
        alt_f4 = key == Qt.Key.Key_F4 and event.modifiers() & Qt.KeyboardModifier.AltModifier
        if key == Qt.Key.Key_Escape or alt_f4:
            if self.popup is not None and key == Qt.Key.Key_Escape:
                self.close_popup()
            else:
                self.request_exit()
            event.accept()
            return
        super().keyPressEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if (event.type() == QEvent.Type.WindowStateChange and self.isVisible() and not self.isFullScreen()
                and not self._close_allowed and not self._shut_down):
            QTimer.singleShot(0, self.showFullScreen)  # the desktop took fullscreen away: take it back

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.inhibitor.state in ("idle", "released"):
            self.inhibitor.inhibit()

    # ------------------------------------------------------------ live view

    def _preview_path(self, camera_id: int) -> Path | None:
        return self.station.preview_path(camera_id) if self.ready else None

    def refresh(self) -> None:
        if not self.ready or self._shut_down:
            return
        # Every active camera, and only those: a deactivated one takes no slot on an unattended screen.
        statuses = [s for s in self.station.live_status() if s.active]
        self.wall.set_statuses(statuses)
        self._fit_grid()
        if self.popup is not None:
            st = next((s for s in statuses if s.camera_id == self.popup.camera_id), None)
            self.popup.tile.set_status(st)

    def _fit_grid(self) -> None:
        """The set grid, or one that fits every active camera; the page indicator when there are pages."""
        n = len(self.wall.tiles())
        self.wall.set_grid(self.kiosk.grid_for(n), self.kiosk.rows_for(n))
        pages = self.wall.page_count()
        self.page_label.setVisible(pages > 1)
        if pages > 1:
            self.page_label.setText(self.tr("page {page}/{pages}").format(page=self.wall.page + 1, pages=pages))

    def tick(self) -> None:
        """Tell the model the time (it decides pages, the pop-up's end, the cursor) and the mouse's moves."""
        pos = QCursor.pos()
        if pos != self._last_cursor_pos:
            self._last_cursor_pos = pos
            self._user_input()
        self.model.tick(self.wall.page_count(),
                        dialog_open=self._prompt is not None or self.settings_dialog is not None)
        self._update_clock()

    def _user_input(self) -> None:
        self.model.user_input()

    def _update_clock(self) -> None:
        self.clock_label.setText(fmt_clock(time.time()))

    def _update_notice(self) -> None:
        notice = self.model.notice()
        if notice is Notice.OPEN_FAILED:
            self.ticker.notice = self.tr("The station could not open: {error}").format(error=self.model.open_error)
        elif notice is Notice.NO_PIN:
            self.ticker.notice = self.tr("No operator PIN set: kiosk exit is not protected")
        else:
            self.ticker.notice = ""
        self.ticker.update()

    # ------------------------------------------------------------ alerts

    def _seed_alerts(self) -> None:
        if not self.station.alerts_running():
            return
        self.tasks.submit("firing alerts", self.station.firing_alerts, on_ok=self._seeded, quiet=True)

    def _seeded(self, statuses: list[Any]) -> None:
        now = time.time()
        self.model.seed([self._alert_line(st, now) for st in statuses])

    def _alert_line(self, change: Any, at: float) -> AlertLine:
        camera_id = getattr(change, "camera_id", None)
        cam = self.station.camera(camera_id) if camera_id is not None else None
        return alert_line(change, at, cam.name if cam is not None else None, unnamed_rule=self.tr("alert"))

    def _ticker_item(self, line: AlertLine) -> TickerItem:
        label = {"critical": self.tr("CRITICAL"), "warning": self.tr("WARNING"),
                 "info": self.tr("INFO")}.get(line.severity, line.severity.upper())
        text = f"⚠ {label} · {line.subject} — {line.rule}" if line.subject else f"⚠ {label} · {line.rule}"
        if line.message:
            text += f": {line.message}"
        return TickerItem(line.key, line.severity, text, line.at)

    def on_alert_event(self, ev: Any) -> None:
        """A station event of kind ``alert`` (data: an ``AlertChange``): the model updates the ticker
        and says whether its camera pops up."""
        change = getattr(ev, "data", None)
        if change is None:
            return
        line = self._alert_line(change, getattr(ev, "ts", time.time()))
        if self.model.alert(change, line) and line.camera_id is not None:
            self.show_popup(line.camera_id, self._ticker_item(line).text, line.severity, event_id=line.event_id)

    def show_popup(self, camera_id: int, title: str, severity: str = "warning", *,
                   event_id: int | None = None) -> AlertPopup:
        self.close_popup()
        cam = self.station.camera(camera_id)
        name = cam.name if cam is not None else str(camera_id)
        popup = AlertPopup(camera_id, name, title, severity, self._preview_path)
        popup.dismissed.connect(self.close_popup)
        st = next((s for s in (self.station.live_status() if self.ready else []) if s.camera_id == camera_id),
                  None)
        popup.tile.set_status(st)
        self.popup = popup
        self.stack.addWidget(popup)
        self.stack.setCurrentWidget(popup)
        self.model.open_popup(camera_id, title, severity)
        self.popup_timer.start()
        popup.tile.poll_frame()
        if event_id is not None:
            self._load_popup_snapshot(popup, event_id)
        log.info("camera %s (%s) popped up for %.0f s: %s", camera_id, name, self.kiosk.popup_s, title)
        self.popupShown.emit(camera_id)
        return popup

    def _load_popup_snapshot(self, popup: AlertPopup, event_id: int) -> None:
        """The alert's snapshot lands a moment after it fires: wait for it (a few seconds) off the GUI thread."""
        station = self.station

        def read() -> Any:
            from app.ui.evidence.page import image_from_file

            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline:
                path = station.event_snapshot_path(event_id)
                if path is not None:
                    return image_from_file(path)
                time.sleep(0.1)  # a worker thread; the snapshot takes well under a second
            return None

        def done(image: Any) -> None:
            if image is not None and self.popup is popup:
                popup.show_snapshot(image, self.tr("When the alert fired"))

        self.tasks.submit("alert snapshot", read, on_ok=done, quiet=True, owner=popup)

    def close_popup(self) -> None:
        """Back to the wall (the model restarts the page's interval)."""
        if not self.model.close_popup():
            self._remove_popup()

    def _remove_popup(self) -> None:
        popup = self.popup
        if popup is None:
            return
        self.popup = None
        self.popup_timer.stop()
        self.stack.setCurrentWidget(self.wall)
        self.stack.removeWidget(popup)
        popup.tile.close_reader()
        popup.deleteLater()
        self.popupClosed.emit()

    def _poll_popup(self) -> None:
        if self.popup is not None:
            self.popup.tile.poll_frame()
