"""What the kiosk decides, without Qt: the PIN and its lockout, the wall's pages, the alert
ticker, which alert pops its camera up and for how long, when the cursor hides.

:class:`KioskModel` holds that state and tells its view about every change through
:attr:`KioskModel.changed` (an :class:`~app.domain.emitter.Emitter`); the Qt window in
:mod:`app.ui.kiosk` draws what the model says and forwards input, time and station events
to it. Time comes from an injectable monotonic clock, so every decision is tested without Qt
and without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from app.domain.emitter import Emitter
from app.kiosk.pin import PinGuard, load_pin
from app.kiosk.settings import KioskSettings, severity_rank

#: an alert that fired this long before the kiosk opened is old news (in the ticker, no pop-up)
OPENED_SLACK_S = 1.0


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


class Change(Enum):
    """What changed in the model (the view redraws that part)."""

    ALERTS = "alerts"  # the ticker's lines
    NOTICE = "notice"  # the standing note: station could not open, no PIN
    POPUP_OPENED = "popup_opened"
    POPUP_CLOSED = "popup_closed"
    NEXT_PAGE = "next_page"
    CURSOR = "cursor"  # hidden or shown
    SETTINGS = "settings"  # new kiosk settings (grid, timings)


class Notice(Enum):
    """The standing note in front of the ticker."""

    NONE = "none"
    OPEN_FAILED = "open_failed"
    NO_PIN = "no_pin"


class Prompt(Enum):
    """How leaving (or the settings) is guarded."""

    PIN = "pin"  # a PIN is stored: ask for it
    CONFIRM = "confirm"  # none stored: a confirmation, and the ticker says the kiosk is unprotected


@dataclass(frozen=True)
class AlertLine:
    """One alert in the ticker: the parts the view words in its language."""

    key: tuple[object, object]  # (rule, camera): a newer change of the same alert replaces it
    severity: str
    rule: str
    subject: str  # the camera's name, or the alert's subject when it names no camera
    message: str  # without the rule name the engine puts in front
    at: float
    camera_id: int | None = None
    event_id: int | None = None


def alert_line(change: Any, at: float, camera_name: str | None, *, unnamed_rule: str = "alert") -> AlertLine:
    """The ticker line of an alert change (``camera_name``: the name of its camera, when it has one)."""
    severity = _text(getattr(change, "severity", "warning"))
    rule = str(getattr(change, "rule_name", "") or unnamed_rule)
    camera_id = getattr(change, "camera_id", None)
    subject = camera_name if camera_name is not None else str(getattr(change, "subject", "") or "")
    message = str(getattr(change, "message", "") or "")
    if rule and message.startswith(rule + ":"):  # the engine's message starts with the rule name
        message = message[len(rule) + 1:].strip()
    key = (getattr(change, "rule_id", None) or rule, camera_id if camera_id is not None else subject)
    event = getattr(change, "event", None)
    event_id = getattr(event, "id", None)
    return AlertLine(key, severity, rule, subject, message, at,
                     int(camera_id) if camera_id is not None else None,
                     int(event_id) if event_id is not None else None)


@dataclass(frozen=True)
class Popup:
    """A camera on the whole screen because of an alert, until ``until`` (monotonic)."""

    camera_id: int
    title: str
    severity: str
    until: float


@dataclass(frozen=True)
class Tick:
    """What one tick decided (the view has been told through :attr:`KioskModel.changed` as well)."""

    popup_closed: bool = False
    next_page: bool = False
    cursor_hidden: bool = False


class KioskModel:
    """The kiosk's state and decisions. ``data_dir`` holds the operator PIN; ``clock`` is monotonic."""

    def __init__(self, data_dir: Path | None = None, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.wall_clock = wall_clock
        self.changed: Emitter[Change] = Emitter("kiosk model")
        self.settings = KioskSettings()
        self.guard = PinGuard(None, clock=clock)
        self.has_pin: bool | None = None
        self.open_error: BaseException | None = None
        self.opened_at: float | None = None  # unix time the station was open (older alerts do not pop up)
        self.popup: Popup | None = None
        self.cursor_hidden = False
        self.cycles = 0
        self._alerts: dict[tuple[object, object], AlertLine] = {}
        self._last_cycle = clock()
        self._last_input = clock()

    # ------------------------------------------------------------ station, settings

    def opened(self, settings: KioskSettings, has_pin: bool) -> None:
        """The station is open: its kiosk settings, and whether a PIN is stored."""
        self.opened_at = self.wall_clock()
        self.apply_settings(settings)
        self.set_has_pin(has_pin)

    def open_failed(self, err: BaseException) -> None:
        self.open_error = err
        self.changed.emit(Change.NOTICE)

    def apply_settings(self, settings: KioskSettings) -> None:
        self.settings = settings
        self._last_cycle = self.clock()
        self.changed.emit(Change.SETTINGS)

    def notice(self) -> Notice:
        if self.open_error is not None:
            return Notice.OPEN_FAILED
        if self.has_pin is False:
            return Notice.NO_PIN
        return Notice.NONE

    # ------------------------------------------------------------ PIN

    def set_has_pin(self, has_pin: bool) -> None:
        if has_pin != self.has_pin:
            self.has_pin = has_pin
            self.changed.emit(Change.NOTICE)

    def stored_pin(self) -> bool:
        """Whether a PIN is stored now (one set from the CLI counts at once)."""
        if self.data_dir is None:
            return False
        return load_pin(self.data_dir) is not None

    def prompt(self) -> Prompt:
        """What guards leaving and the settings now (reads the PIN file)."""
        self.set_has_pin(self.stored_pin())
        return Prompt.PIN if self.has_pin else Prompt.CONFIRM

    def check_pin(self, pin: str) -> bool:
        """``pin`` against the PIN stored now, with the lockout after repeated misses. Blocking (scrypt)."""
        self.guard.reload(load_pin(self.data_dir) if self.data_dir is not None else None)
        self.has_pin = self.guard.has_pin
        return self.guard.check(pin)

    def locked_for(self) -> float:
        """Seconds until the next PIN attempt is accepted (0 = now)."""
        return self.guard.locked_for()

    # ------------------------------------------------------------ alerts

    def alert_lines(self) -> list[AlertLine]:
        """Critical before warning before info, newest first."""
        return sorted(self._alerts.values(), key=lambda a: (-severity_rank(a.severity), -a.at))

    def seed(self, lines: list[AlertLine]) -> None:
        """The alerts already firing when the kiosk opened (into the ticker, no pop-up)."""
        for line in lines:
            self._alerts[line.key] = line
        self.changed.emit(Change.ALERTS)

    def alert(self, change: Any, line: AlertLine) -> bool:
        """An alert change (``line``: its ticker line): update the ticker; True when its camera pops up."""
        kind = _text(getattr(change, "kind", "firing"))
        if kind in ("resolved", "cleared"):
            if self._alerts.pop(line.key, None) is not None:
                self.changed.emit(Change.ALERTS)
            return False
        if kind not in ("firing", "repeat"):
            return False
        self._alerts[line.key] = line
        self.changed.emit(Change.ALERTS)
        return (kind == "firing" and line.camera_id is not None and self.settings.pops_up(line.severity)
                and self.is_new(change))

    def is_new(self, change: Any) -> bool:
        """Only a new, unacknowledged alert pops up: not one already acknowledged, nor one that
        was firing before the kiosk opened (those are in the ticker)."""
        ev = getattr(change, "event", None)
        if ev is not None and getattr(ev, "acknowledged_by", None):
            return False
        fired = getattr(ev, "fired_at", None) if ev is not None else None
        return not (fired is not None and self.opened_at is not None
                    and fired.timestamp() < self.opened_at - OPENED_SLACK_S)

    # ------------------------------------------------------------ pop-up

    def open_popup(self, camera_id: int, title: str, severity: str = "warning") -> Popup:
        """Pop ``camera_id`` up for ``kiosk.popup_s`` seconds (replaces one that is up)."""
        self.close_popup()
        self.popup = Popup(camera_id, title, severity, self.clock() + self.settings.popup_s)
        self.changed.emit(Change.POPUP_OPENED)
        return self.popup

    def close_popup(self) -> bool:
        if self.popup is None:
            return False
        self.popup = None
        self._last_cycle = self.clock()  # a full interval on the page we come back to
        self.changed.emit(Change.POPUP_CLOSED)
        return True

    # ------------------------------------------------------------ time and input

    def user_input(self) -> None:
        self._last_input = self.clock()
        self.show_cursor()

    def show_cursor(self) -> None:
        if self.cursor_hidden:
            self.cursor_hidden = False
            self.changed.emit(Change.CURSOR)

    def tick(self, pages: int, *, dialog_open: bool = False) -> Tick:
        """Decide what time asks for: the end of a pop-up, the next of ``pages`` pages, hiding the
        cursor (not while a dialog is up)."""
        now = self.clock()
        closed = next_page = hidden = False
        if self.popup is not None:
            if now >= self.popup.until:
                closed = self.close_popup()
        elif self.settings.cycle_s > 0 and now - self._last_cycle >= self.settings.cycle_s:
            self._last_cycle = now
            if pages > 1:
                self.cycles += 1
                next_page = True
                self.changed.emit(Change.NEXT_PAGE)
        if (not self.cursor_hidden and not dialog_open
                and now - self._last_input >= self.settings.cursor_idle_s):
            self.cursor_hidden = hidden = True
            self.changed.emit(Change.CURSOR)
        return Tick(closed, next_page, hidden)
