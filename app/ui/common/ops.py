"""How the window invokes the station's thirteen operations: by name, as the operator.

``Station.call(op, request, actor="operator")`` routes the call and records the
actor in the audit log; a station without ``call`` is used through ``ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ACTOR = "operator"


def operation(station: Any, name: str) -> Callable[[Any], Any]:
    """A callable that runs operation ``name`` with one request (blocking: run it on a task thread)."""
    call = getattr(station, "call", None)
    if call is not None:
        return lambda request: call(name, request, actor=ACTOR)
    return getattr(station.ops, name)
