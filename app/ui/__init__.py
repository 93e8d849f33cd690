"""The Qt user interface: the only package that imports PySide6 and pyqtgraph.

Importing it applies :mod:`app.ui.common.qtcompat` (a probe-driven guard against the
reference-count bug of PySide6 6.12.0) before any widget exists.
"""

from app.ui.common.qtcompat import apply as _apply_qt_workarounds

QT_WORKAROUNDS = _apply_qt_workarounds()
