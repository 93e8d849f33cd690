"""``QT_TRANSLATE_NOOP`` typed as ``str`` (PySide6's own is typed as returning ``object``).

``pyside6-lupdate`` finds texts by the name of the call, so the catalogue is the same; the
window translates them later with ``QCoreApplication.translate(context, text)``.
"""

from __future__ import annotations


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:  # noqa: N802 - the name lupdate looks for
    """Mark ``text`` for the catalogue in ``context``; returns it untranslated."""
    return text
