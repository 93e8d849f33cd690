"""Work around the reference-count bug of PySide6 6.12.0, found by probing at import.

That PySide6 returns ``None`` from many void methods (``QLabel.setText``,
``QWidget.hide``, ``QCoreApplication.processEvents``, a model's ``data()``
answer…) and ``True`` from ``Signal.emit()`` without taking a reference. Every
such call made from Python lowers the refcount of ``None`` or ``True`` by one;
after some ten thousand calls the interpreter aborts with "none_dealloc:
deallocating None" or "bool_dealloc". A window that redraws at 2-10 Hz gets
there within minutes.

:func:`apply` calls a few such methods and measures the refcounts. When they
leak, it makes ``None``, ``True`` and ``False`` effectively immortal the way
Python 3.12 does (PEP 683): their refcount gets a 2**60 head start, which no
leak rate reaches in the life of a station. These three objects are statically
allocated and never freed, so the large count changes nothing else. On a
fixed PySide6, or on Python >= 3.12 where they are immortal already, the probe
finds no loss and nothing is changed.

The proper fix is a PySide6 without the bug (pin ``PySide6-Essentials!=6.12.0``).
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger("edge_station.ui.qtcompat")

_PROBES = 32
_BOOST = 1 << 60
_result: dict[str, object] = {}


class _Probe(QObject):
    sig = Signal()


def _losses(call: Callable[[], object]) -> dict[str, int]:
    watched = {"None": None, "True": True, "False": False}
    before = {k: sys.getrefcount(v) for k, v in watched.items()}
    for _ in range(_PROBES):
        call()
    return {k: before[k] - sys.getrefcount(v) for k, v in watched.items()}


def _boost(obj: object) -> None:
    """Add ``_BOOST`` to a static singleton's refcount (``ob_refcnt`` is the object's first field)."""
    ctypes.c_ssize_t.from_address(id(obj)).value += _BOOST


def apply() -> dict[str, object]:
    """Probe once (idempotent). Returns what was found and whether the singletons were boosted."""
    if _result:
        return dict(_result)
    probe = _Probe()
    found: dict[str, int] = {}
    for label, call in (("QObject.setObjectName", lambda: probe.setObjectName("probe")),
                        ("Signal.emit", lambda: probe.sig.emit())):
        for name, lost in _losses(call).items():
            if lost >= _PROBES:
                found[f"{label} -> {name}"] = lost // _PROBES
    probe.deleteLater()
    debug_build = hasattr(sys, "gettotalrefcount")  # other object layout: leave it alone
    immortal_already = sys.version_info >= (3, 12)
    boosted = bool(found) and not debug_build and not immortal_already
    if boosted:
        for obj in (None, True, False):
            _boost(obj)
        log.info("PySide6 leaks references of None/True (%s); made them immortal as a workaround. "
                    "Use a PySide6 other than 6.12.0.", ", ".join(sorted(found)))
    elif found:
        log.error("PySide6 leaks references of None/True (%s) and this Python cannot be patched; "
                  "the window may abort after a while. Use a PySide6 other than 6.12.0.", ", ".join(sorted(found)))
    _result.update({"leaks": found, "boosted": boosted})
    return dict(_result)
