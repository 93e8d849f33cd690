"""Kiosk settings from the settings table: defaults, ranges, and bad stored values that must not stop a kiosk."""

from __future__ import annotations

import pytest

from app.kiosk.settings import KioskSettings, LanguageError, normalize_language, severity_rank


def test_defaults_show_every_camera_and_pop_up_only_critical():
    k = KioskSettings.from_mapping({})
    assert (k.grid, k.cycle_s, k.popup_s, k.popup_severity, k.cursor_idle_s) == (0, 10.0, 20.0, "critical", 3.0)
    assert k.problems == ()
    assert not k.pops_up("warning") and k.pops_up("critical")


@pytest.mark.parametrize(("cameras", "side", "rows"), [(0, 1, 1), (1, 1, 1), (2, 2, 1), (4, 2, 2), (5, 3, 2),
                                                       (6, 3, 2), (7, 3, 3), (9, 3, 3), (10, 4, 3), (16, 4, 4),
                                                       (40, 4, 4)])
def test_the_fitting_grid_shows_every_camera_up_to_4x4(cameras, side, rows):
    assert (KioskSettings().grid_for(cameras), KioskSettings().rows_for(cameras)) == (side, rows)
    assert (KioskSettings(grid=2).grid_for(cameras), KioskSettings(grid=2).rows_for(cameras)) == (2, 2)


def test_stored_values_are_used():
    k = KioskSettings.from_mapping({"kiosk.grid": 3, "kiosk.cycle_s": 15, "kiosk.popup_s": 0,
                                    "kiosk.popup_severity": "CRITICAL", "kiosk.cursor_idle_s": 1.5,
                                    "api.port": 1})
    assert (k.grid, k.cycle_s, k.popup_s, k.popup_severity, k.cursor_idle_s) == (3, 15.0, 0.0, "critical", 1.5)
    assert not k.pops_up("critical"), "popup_s 0 turns pop-ups off"


@pytest.mark.parametrize(("key", "value"), [
    ("kiosk.grid", 5), ("kiosk.grid", "two"), ("kiosk.cycle_s", 2), ("kiosk.cycle_s", -1),
    ("kiosk.popup_s", 99999), ("kiosk.cursor_idle_s", 0), ("kiosk.popup_severity", "loud"),
    ("kiosk.cycle_s", float("nan")),
])
def test_a_bad_stored_value_falls_back_to_the_default_and_says_so(key, value):
    k = KioskSettings.from_mapping({key: value})
    assert k == KioskSettings()
    assert len(k.problems) == 1 and key in k.problems[0] and "ignored" in k.problems[0]


def test_which_severities_pop_up():
    k = KioskSettings(popup_severity="warning")
    assert k.pops_up("critical") and k.pops_up("warning") and not k.pops_up("info")
    assert severity_rank("critical") > severity_rank("warning") > severity_rank("info")


@pytest.mark.parametrize(("code", "expected"), [
    ("zh_CN", "zh_CN"), ("zh-cn", "zh_CN"), ("zh", "zh_CN"), ("en_US", "en"), ("EN", "en"),
    ("", None), ("system", None), (None, None),
])
def test_language_codes(code, expected):
    assert normalize_language(code) == expected


def test_an_unknown_language_is_an_error():
    with pytest.raises(LanguageError, match="choose one of en, zh_CN or 'system'"):
        normalize_language("fr")
