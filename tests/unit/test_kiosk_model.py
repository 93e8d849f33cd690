"""The kiosk's decisions without Qt: PIN and lockout, pages, pop-ups, the ticker, the cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.kiosk.model import AlertLine, Change, KioskModel, Notice, Prompt, alert_line
from app.kiosk.pin import save_pin
from app.kiosk.settings import KioskSettings


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@dataclass
class Event:
    id: int = 7
    acknowledged_by: str | None = None
    fired_at: datetime | None = None


@dataclass
class AlertChange:
    kind: str = "firing"
    severity: str = "critical"
    rule_name: str = "Camera offline"
    rule_id: int | None = 1
    camera_id: int | None = 3
    subject: str = ""
    message: str = "Camera offline: no frames for 30 s"
    event: Event | None = field(default_factory=Event)


WALL_TIME = 1_700_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def model(clock: Clock, tmp_path: Path) -> KioskModel:
    m = KioskModel(tmp_path, clock=clock, wall_clock=lambda: WALL_TIME)
    m.opened(KioskSettings(cycle_s=10, popup_s=15, popup_severity="critical", cursor_idle_s=3), has_pin=False)
    return m


def changes(model: KioskModel) -> list[Change]:
    seen: list[Change] = []
    model.changed.subscribe(seen.append)
    return seen


def line(model: KioskModel, change: AlertChange, at: float = WALL_TIME, name: str | None = "Lobby") -> AlertLine:
    return alert_line(change, at, name if change.camera_id is not None else None)


# ---------------------------------------------------------------------- PIN


def test_without_a_pin_the_prompt_is_a_confirmation_and_the_notice_says_so(model: KioskModel) -> None:
    assert model.prompt() is Prompt.CONFIRM
    assert model.notice() is Notice.NO_PIN
    assert not model.check_pin("2468"), "nothing unlocks without a stored PIN"


def test_a_pin_set_while_the_kiosk_runs_counts_at_once(model: KioskModel, tmp_path: Path) -> None:
    seen = changes(model)
    save_pin(tmp_path, "2468")
    assert model.prompt() is Prompt.PIN
    assert model.notice() is Notice.NONE and seen == [Change.NOTICE]
    assert not model.check_pin("1111")
    assert model.check_pin("2468")


def test_wrong_pins_lock_the_prompt_for_a_while(model: KioskModel, tmp_path: Path, clock: Clock) -> None:
    save_pin(tmp_path, "2468")
    for _ in range(model.guard.free_attempts):
        assert not model.check_pin("0000")
    assert model.locked_for() == pytest.approx(model.guard.base_delay)
    assert not model.check_pin("2468"), "refused unchecked while locked"
    clock.advance(model.guard.base_delay)
    assert model.locked_for() == 0
    assert model.check_pin("2468")


def test_a_station_that_could_not_open_says_so_before_the_pin(model: KioskModel) -> None:
    seen = changes(model)
    model.open_failed(RuntimeError("disk full"))
    assert model.notice() is Notice.OPEN_FAILED and seen == [Change.NOTICE]


# ---------------------------------------------------------------------- pages and cursor


def test_pages_advance_on_the_clock_only_when_there_are_pages(model: KioskModel, clock: Clock) -> None:
    seen = changes(model)
    clock.advance(9.9)
    assert not model.tick(3, dialog_open=True).next_page
    clock.advance(0.1)
    assert model.tick(3, dialog_open=True).next_page and model.cycles == 1
    assert seen == [Change.NEXT_PAGE]
    clock.advance(10)
    assert not model.tick(1, dialog_open=True).next_page, "one page: nothing to cycle"
    assert model.cycles == 1


def test_no_cycling_when_it_is_off(model: KioskModel, clock: Clock) -> None:
    model.apply_settings(KioskSettings(cycle_s=0))
    clock.advance(3600)
    assert not model.tick(5).next_page and model.cycles == 0


def test_the_cursor_hides_when_idle_but_not_under_a_dialog(model: KioskModel, clock: Clock) -> None:
    seen = changes(model)
    clock.advance(3)
    assert not model.tick(1, dialog_open=True).cursor_hidden
    assert model.tick(1).cursor_hidden and model.cursor_hidden
    model.user_input()
    assert not model.cursor_hidden
    assert seen == [Change.CURSOR, Change.CURSOR]
    clock.advance(1.5)
    assert not model.tick(1).cursor_hidden


# ---------------------------------------------------------------------- alerts and pop-ups


def test_a_new_critical_alert_pops_up_for_the_set_time_and_cycling_waits(model: KioskModel,
                                                                            clock: Clock) -> None:
    change = AlertChange()
    ln = line(model, change)
    assert ln.subject == "Lobby" and ln.message == "no frames for 30 s" and ln.event_id == 7
    assert model.alert(change, ln)
    popup = model.open_popup(3, "Camera offline", "critical")
    assert popup.until == clock() + 15
    clock.advance(14.9)
    tick = model.tick(4)
    assert not tick.popup_closed and not tick.next_page, "no page change under a pop-up"
    seen = changes(model)
    clock.advance(0.1)
    assert model.tick(4).popup_closed and model.popup is None
    assert Change.POPUP_CLOSED in seen
    clock.advance(9.9)
    assert not model.tick(4).next_page, "a full interval on the page the pop-up leaves"
    clock.advance(0.1)
    assert model.tick(4).next_page


@pytest.mark.parametrize("change, why", [
    (AlertChange(severity="warning"), "below the pop-up severity"),
    (AlertChange(camera_id=None, subject="disk"), "no camera"),
    (AlertChange(kind="repeat"), "a repeat of an alert already shown"),
    (AlertChange(event=Event(acknowledged_by="op")), "already acknowledged"),
    (AlertChange(event=Event(fired_at=datetime.fromtimestamp(WALL_TIME - 3600, UTC))),
     "firing since before the kiosk opened"),
])
def test_alerts_that_do_not_pop_up_still_go_into_the_ticker(model: KioskModel, change: AlertChange,
                                                             why: str) -> None:
    assert not model.alert(change, line(model, change)), why
    assert len(model.alert_lines()) == 1


def test_popups_off_pop_nothing(model: KioskModel) -> None:
    model.apply_settings(KioskSettings(popup_s=0))
    change = AlertChange()
    assert not model.alert(change, line(model, change))


def test_the_ticker_orders_by_severity_then_age_and_a_resolved_alert_leaves(model: KioskModel) -> None:
    old = AlertChange(severity="warning", rule_id=1, camera_id=1)
    new = AlertChange(severity="warning", rule_id=2, camera_id=1)
    crit = AlertChange(severity="critical", rule_id=3, camera_id=2)
    model.alert(old, line(model, old, at=1.0))
    model.alert(new, line(model, new, at=2.0))
    model.alert(crit, line(model, crit, at=0.5))
    assert [a.key for a in model.alert_lines()] == [(3, 2), (2, 1), (1, 1)]
    again = AlertChange(severity="warning", rule_id=1, camera_id=1, message="later")
    model.alert(again, line(model, again, at=3.0))
    assert len(model.alert_lines()) == 3, "the same rule on the same camera replaces its line"
    seen = changes(model)
    resolved = AlertChange(kind="resolved", rule_id=3, camera_id=2)
    assert not model.alert(resolved, line(model, resolved))
    assert [a.key for a in model.alert_lines()] == [(1, 1), (2, 1)] and seen == [Change.ALERTS]


def test_seeded_alerts_are_in_the_ticker(model: KioskModel) -> None:
    seen = changes(model)
    model.seed([line(model, AlertChange(rule_id=n, camera_id=n)) for n in (1, 2)])
    assert len(model.alert_lines()) == 2 and seen == [Change.ALERTS]


def test_an_alert_without_a_rule_name_uses_the_given_word() -> None:
    ln = alert_line(AlertChange(rule_name="", rule_id=None, camera_id=None, subject="disk",
                                message="alert: low space"), 1.0, None, unnamed_rule="alert")
    assert (ln.rule, ln.subject, ln.message, ln.key) == ("alert", "disk", "low space", ("alert", "disk"))
