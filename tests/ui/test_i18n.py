"""Languages: the setting or the system locale picks one; the committed catalogue turns the window Chinese."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import QDialogButtonBox

from app.kiosk.pin import save_pin
from app.ui.common.i18n import (
    LanguageError,
    Translation,
    choose_language,
    install_translation,
    normalize,
    read_language_setting,
    system_language,
    ts_path,
)
from app.ui.kiosk.screensaver import ScreenSaverInhibitor

ZH_LOCALES = ["zh_CN", "zh_SG", "zh_Hans_CN"]
EN_LOCALES = ["en_US", "de_DE", "fr_FR", "C"]


@pytest.fixture(scope="session")
def catalogue_dir(tmp_path_factory) -> Path:
    """The committed .ts compiled with pyside6-lrelease, as ``make translations`` does."""
    out = tmp_path_factory.mktemp("qm")
    lrelease = Path(sys.executable).parent / "pyside6-lrelease"
    ts = ts_path("zh_CN")
    subprocess.run([str(lrelease), "-silent", str(ts), "-qm", str(out / "edge_station_zh_CN.qm")],
                   check=True, timeout=60)
    return out


@pytest.fixture
def chinese(qapp, catalogue_dir) -> Iterator[Translation]:
    before = QLocale()
    t = install_translation("zh_CN", directory=catalogue_dir)
    try:
        yield t
    finally:
        t.remove()
        QLocale.setDefault(before)


@pytest.mark.parametrize("name", ZH_LOCALES)
def test_chinese_system_locales_get_simplified_chinese(name):
    assert system_language(QLocale(name)) == "zh_CN"
    assert choose_language(None, QLocale(name)) == "zh_CN"


@pytest.mark.parametrize("name", EN_LOCALES)
def test_other_system_locales_get_english(name):
    assert choose_language("", QLocale(name)) == "en"


def test_the_setting_overrides_the_system():
    assert choose_language("en", QLocale("zh_CN")) == "en"
    assert choose_language("zh-CN", QLocale("en_US")) == "zh_CN"
    assert choose_language("system", QLocale("zh_CN")) == "zh_CN"
    assert normalize("ZH_cn") == "zh_CN" and normalize(" ") is None


def test_an_unknown_language_setting_is_logged_and_the_system_wins(caplog):
    with pytest.raises(LanguageError, match="not available"):
        normalize("klingon")
    assert choose_language("klingon", QLocale("zh_CN")) == "zh_CN"
    assert "setting ui.language ignored" in caplog.text


def test_the_language_setting_is_read_from_the_station_database(data_dir):
    from app.platform.paths import resolve_paths
    from app.store import open_store

    paths = resolve_paths(data_dir).ensure()
    assert read_language_setting(paths.db_url) is None
    store = open_store(paths.db_url)
    try:
        with store.uow() as uow:
            uow.settings.set("ui.language", "zh_CN")
            uow.commit()
    finally:
        store.dispose()
    assert read_language_setting(paths.db_url) == "zh_CN"


def test_qt_and_app_catalogues_are_installed(chinese, catalogue_dir):
    assert chinese.language == "zh_CN"
    assert catalogue_dir / "edge_station_zh_CN.qm" in chinese.loaded
    assert any(p.name == "qtbase_zh_CN.qm" for p in chinese.loaded)
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    assert [b.text() for b in box.buttons()] == ["确定", "取消"]  # Qt's own strings
    assert QLocale().name() == "zh_CN"


def test_a_missing_catalogue_is_logged_and_the_window_stays_english(qapp, tmp_path, caplog):
    before = QLocale()
    t = install_translation("zh_CN", directory=tmp_path)
    try:
        assert str(tmp_path / "edge_station_zh_CN.qm") in t.missing
        assert any(r.levelno == logging.WARNING and "make translations" in r.getMessage() for r in caplog.records)
        from app.ui.kiosk.window import AlertTicker

        assert AlertTicker().text() == "No active alerts"
    finally:
        t.remove()
        QLocale.setDefault(before)


def test_the_kiosk_speaks_chinese(qtbot, chinese, station, ui_settings, tmp_path):
    from app.ui.kiosk.window import KioskWindow, PinDialog

    w = KioskWindow(station, settings=ui_settings, autostart=False,
                    inhibitor=ScreenSaverInhibitor(bus_address=f"unix:path={tmp_path / 'no-bus'}"))
    qtbot.addWidget(w)
    w.showFullScreen()
    w.open_station()
    qtbot.waitUntil(lambda: w.ready, timeout=20_000)
    try:
        assert "无活动告警" in w.ticker.text()
        assert "未设置操作员 PIN" in w.ticker.text()
        assert w.settings_button.toolTip() == "设置（需要操作员 PIN）"
        save_pin(station.paths.data_dir, "2468")
        dlg = w.request_exit()
        assert isinstance(dlg, PinDialog)
        assert dlg.prompt.text() == "请输入操作员 PIN 以退出展台模式。"
        assert dlg.ok_button.text() == "解锁"
        assert dlg.pin_edit.placeholderText() == "4 至 12 位数字"
        dlg.reject()
    finally:
        w.shutdown()


def test_the_main_window_speaks_chinese(qtbot, chinese, station, ui_settings):
    from app.ui.common.models import CameraTableModel
    from app.ui.window.main_window import MainWindow

    w = MainWindow(station, settings=ui_settings)
    qtbot.addWidget(w)
    w.show()
    try:
        tabs = [w.tabs.tabText(i) for i in range(w.tabs.count())]
        assert tabs[:2] == ["摄像头", "监控墙"]
        menus = [a.text() for a in w.menuBar().actions()]
        assert menus[:3] == ["工作站(&S)", "摄像头(&C)", "视图(&V)"]
        assert w.window_actions["start"].text() == "启动(&S)"
        assert w.window_actions["start"].toolTip().startswith("启动所选摄像头")
        headers = [w.model.headerData(c, Qt.Orientation.Horizontal) for c in range(w.model.columnCount())]
        assert headers[CameraTableModel.COL_NAME] == "名称" and headers[CameraTableModel.COL_STATE] == "状态"
        assert w.statusBar().currentMessage() == "正在打开工作站…"
        # Nothing English is left among the visible labels of the window's chrome.
        english = [t for t in tabs + menus + headers if t and t.isascii() and any(ch.isalpha() for ch in t)
                   and t not in ("FPS",)]
        assert not english, f"untranslated labels: {english}"
    finally:
        w.shutdown()
