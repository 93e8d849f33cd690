"""Started by ``edge-station doctor`` in a child process: can Qt open its platform?"""

from __future__ import annotations


def main() -> int:
    import sys

    from app.platform.doctor import missing_qt_libraries

    missing = missing_qt_libraries()
    if missing is not None:  # Qt would abort with only "no Qt platform plugin could be initialized"
        print(missing.message(), file=sys.stderr)
        return 3
    from PySide6 import __version__ as pyside_version
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([])
    screen = app.primaryScreen()
    size = screen.size() if screen else None
    geometry = f", screen {size.width()}x{size.height()}" if size else ", no screen"
    print(f"PySide6 {pyside_version}, platform '{app.platformName()}'{geometry}")
    return 0
