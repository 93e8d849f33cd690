"""Screen-saver inhibition over a real D-Bus session bus (a private dbus-daemon) and a stand-in desktop."""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import QCoreApplication
from PySide6.QtDBus import QDBusConnection

from app.ui.kiosk.screensaver import SERVICE, ScreenSaverInhibitor
from tests.ui.kiosk_support.bus import fake_screensaver, private_bus


def _bus_names(address: str) -> list[str]:
    conn = QDBusConnection.connectToBus(address, "test-observer")
    try:
        return list(conn.interface().registeredServiceNames().value())
    finally:
        del conn
        QDBusConnection.disconnectFromBus("test-observer")


def test_the_kiosk_inhibits_the_screen_saver_while_it_shows(qtbot, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge_station.kiosk")
    with private_bus(tmp_path) as address, fake_screensaver(address) as desktop:
        inhibitor = ScreenSaverInhibitor(app_name="Edge Station", reason="kiosk mode: camera wall",
                                         bus_address=address)
        inhibitor.inhibit()
        assert inhibitor.state == "pending"
        qtbot.waitUntil(lambda: inhibitor.state != "pending", timeout=5_000)
        assert inhibitor.state == "inhibited", inhibitor.reason
        assert inhibitor.cookie == 1001
        assert json.loads(desktop.stdout.readline()) == ["Inhibit", "Edge Station", "kiosk mode: camera wall"]
        assert "screen saver inhibited" in caplog.text
        # The desktop keeps the inhibition while our connection lives; releasing closes it.
        me = inhibitor.unique_name
        assert me and me in _bus_names(address)
        inhibitor.release()
        assert inhibitor.state == "released"

        def gone() -> bool:
            QCoreApplication.processEvents()
            return me not in _bus_names(address)

        qtbot.waitUntil(gone, timeout=5_000)


def test_a_desktop_without_the_service_is_logged(qtbot, tmp_path, caplog):
    with private_bus(tmp_path) as address:
        inhibitor = ScreenSaverInhibitor(bus_address=address)
        inhibitor.inhibit()
        qtbot.waitUntil(lambda: inhibitor.state != "pending", timeout=5_000)
    assert inhibitor.state == "unavailable"
    assert f"offers no {SERVICE}" in inhibitor.reason
    assert any(r.levelno == logging.WARNING and "screen saver NOT inhibited" in r.getMessage()
               for r in caplog.records)


def test_no_session_bus_is_logged(tmp_path, caplog):
    inhibitor = ScreenSaverInhibitor(bus_address=f"unix:path={tmp_path / 'nothing-here.sock'}")
    inhibitor.inhibit()
    assert inhibitor.state == "unavailable"
    assert "no D-Bus session bus" in inhibitor.reason
    assert "screen saver NOT inhibited: no D-Bus session bus" in caplog.text
    inhibitor.release()  # harmless
    assert inhibitor.state == "unavailable"
