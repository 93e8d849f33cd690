"""What an operator expects besides the defects: shortcuts, a Help menu, mnemonics that do not clash
(in English and in Chinese), and texts that say what they mean."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFormLayout, QLabel

from app.ui.camera_dialog import CameraDialog
from app.ui.i18n import install_translation, ts_path

MNEMONIC = re.compile(r"&([^&\s])")


def mnemonic(text: str) -> str | None:
    m = MNEMONIC.search(text.replace("&&", ""))
    return m.group(1).lower() if m else None


def clashes(texts: list[str]) -> list[str]:
    keys = Counter(k for t in texts if (k := mnemonic(t)))
    return [t for t in texts if (k := mnemonic(t)) and keys[k] > 1]


@pytest.fixture(scope="module")
def catalogue_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qm")
    subprocess.run([str(Path(sys.executable).parent / "pyside6-lrelease"), "-silent", str(ts_path("zh_CN")),
                    "-qm", str(out / "edge_station_zh_CN.qm")], check=True, timeout=60)
    return out


def _form_labels(widget) -> list[str]:
    out = []
    for form in widget.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and isinstance(item.widget(), QLabel):
                out.append(item.widget().text())
    return out


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_no_clashing_mnemonics_in_menus_and_the_camera_form(qtbot, station, ui_settings, language, catalogue_dir):
    from app.ui.main_window import MainWindow

    t = install_translation(language, directory=catalogue_dir)
    try:
        w = MainWindow(station, settings=ui_settings)
        qtbot.addWidget(w)
        menus = [a.menu() for a in w.menuBar().actions() if a.menu() is not None]
        assert not clashes([m.title() for m in menus]), [m.title() for m in menus]
        for menu in menus:
            texts = [a.text() for a in menu.actions() if not a.isSeparator()]
            assert not clashes(texts), (menu.title(), clashes(texts))
        dlg = CameraDialog(station, w.tasks, None, w)
        labels = _form_labels(dlg)
        assert len(labels) >= 6 and not clashes(labels), clashes(labels)
        dlg.close()
        w.shutdown()
    finally:
        t.remove()


def test_settings_have_a_shortcut_and_help_lists_every_shortcut(qtbot, window):
    settings = window.actions["settings"].shortcut()
    assert not settings.isEmpty()
    expected = QKeySequence(QKeySequence.StandardKey.Preferences)
    assert settings == (expected if not expected.isEmpty() else QKeySequence("Ctrl+,"))
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[-1] == "Help"
    box = window.shortcuts_dialog()
    listed = dict(window.shortcut_list())
    assert listed["Start"] == "F5" and listed["Restart"] == "Ctrl+R" and "Settings" in listed
    assert "F5" in box.text() and "Ctrl+R" in box.text()
    box.close()
    about = window.about_dialog()
    assert str(window.station.paths.data_dir) in about.text()
    about.close()
