"""The operations' result dataclasses as JSON values (one pass, straight into the answer).

Their schemas in the OpenAPI document are pydantic's, from the same dataclasses (app/api/models.py);
the property test checks every answer against them.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from datetime import date, datetime
from enum import Enum
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class SerializeError(TypeError):
    """A Python value or type that has no JSON form here (a programming error, not bad input)."""


# ---------------------------------------------------------------- to JSON


def to_json(value: Any) -> Any:
    """A JSON-ready value: dataclasses become objects, enums their values, bytes base64 text.

    Non-finite floats become ``null`` (JSON has no NaN); tuples, lists and sets become arrays.
    """
    if value is None or isinstance(value, bool | str | int):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_json(v) for v in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise SerializeError(f"cannot turn {type(value).__name__} into JSON")
