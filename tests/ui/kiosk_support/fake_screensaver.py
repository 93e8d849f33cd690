"""A desktop's ``org.freedesktop.ScreenSaver`` service on a given bus, for the kiosk tests.

Run as ``python fake_screensaver.py BUS_ADDRESS``: it prints ``ready`` once the
name is owned, then one JSON line per call (``["Inhibit", app, reason]``).
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import ClassInfo, QCoreApplication, QObject, Slot
from PySide6.QtDBus import QDBusConnection


@ClassInfo({"D-Bus Interface": "org.freedesktop.ScreenSaver"})
class ScreenSaver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.cookies = 0

    @Slot(str, str, result="uint")
    def Inhibit(self, app: str, reason: str) -> int:  # noqa: N802 - the D-Bus method's name
        self.cookies += 1
        print(json.dumps(["Inhibit", app, reason]), flush=True)
        return 1000 + self.cookies


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    bus = QDBusConnection.connectToBus(sys.argv[1], "fake-screensaver")
    service = ScreenSaver()
    if not bus.registerObject("/org/freedesktop/ScreenSaver", service,
                              QDBusConnection.RegisterOption.ExportAllSlots):
        print("cannot register the object", file=sys.stderr)
        return 1
    if not bus.registerService("org.freedesktop.ScreenSaver"):
        print("cannot own org.freedesktop.ScreenSaver", file=sys.stderr)
        return 1
    print("ready", flush=True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
