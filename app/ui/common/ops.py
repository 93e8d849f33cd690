"""How the window invokes the station's thirteen operations: by name, as the operator.

``StationPort.call(op, request, actor="operator")`` routes the call and records the
actor in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.station.port import StationPort

ACTOR = "operator"


def operation(station: StationPort, name: str) -> Callable[[Any], Any]:
    """A callable that runs operation ``name`` with one request (blocking: run it on a task thread)."""
    return lambda request: station.call(name, request, actor=ACTOR)
