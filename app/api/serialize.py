"""JSON (de)serialisation of the operation dataclasses, and their JSON Schemas.

One description of each type (its dataclass fields and type hints) gives all
three: :func:`to_json` (result -> JSON value), :func:`from_json` (JSON value ->
request dataclass, every type problem reported as a :class:`FieldError` with a
dotted path) and :func:`json_schema` (the OpenAPI component), so the document
the API serves cannot drift from what it sends and accepts.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import sys
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any, Union, get_args, get_origin

from app.domain.errors import FieldError, ValidationError

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


# ---------------------------------------------------------------- type helpers


def type_hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, globalns=vars(module) if module else None)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _without_none(tp: Any) -> tuple[Any, bool]:
    """``(T, nullable)`` for ``T | None``; ``(tp, False)`` otherwise."""
    if _is_union(tp):
        args = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(args) < len(get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        return Union[tuple(args)], nullable  # noqa: UP007 - built at run time
    return tp, False


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "a boolean", str: "a string"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "an object"
    origin = get_origin(tp)
    if origin in (tuple, list, frozenset, set):
        return "an array"
    if origin is dict or tp is dict:
        return "an object"
    return str(tp)


# ---------------------------------------------------------------- from JSON


def from_json(cls: type, data: Any, *, subject: str = "request body", exclude: frozenset[str] = frozenset()) -> Any:
    """Build dataclass ``cls`` from a JSON object, or raise :class:`ValidationError` listing every problem.

    Unknown keys are refused; fields without a default are required; ``exclude``
    names fields the caller may not set (they keep their defaults).
    """
    errors: list[FieldError] = []
    value = _decode(cls, data, "", errors, exclude)
    if errors:
        raise ValidationError(errors, subject=subject)
    return value


def decode_value(tp: Any, data: Any, where: str) -> Any:
    """Check and convert one value (a query parameter, a field of ``changes``); raises ValidationError."""
    errors: list[FieldError] = []
    value = _decode(tp, data, where, errors, frozenset())
    if errors:
        raise ValidationError(errors, subject="request")
    return value


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _decode(tp: Any, data: Any, where: str, errors: list[FieldError], exclude: frozenset[str]) -> Any:
    tp, nullable = _without_none(tp)
    if data is None:
        if nullable or tp is Any:
            return None
        errors.append(FieldError(where or "body", f"must be {_type_name(tp)}, not null"))
        return None
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, where, errors, exclude)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            errors.append(FieldError(where, f"must be {_type_name(tp)}, not {data!r}"))
            return None
    if tp is bool:
        if isinstance(data, bool):
            return data
        errors.append(FieldError(where, f"must be a boolean, not {type(data).__name__}"))
        return None
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            if not INT64_MIN <= data <= INT64_MAX:
                errors.append(FieldError(where, "must be a 64-bit integer"))
                return None
            return data
        errors.append(FieldError(where, f"must be an integer, not {type(data).__name__}"))
        return None
    if tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool) and math.isfinite(data):
            return float(data)
        errors.append(FieldError(where, f"must be a finite number, not {data!r}"[:120]))
        return None
    if tp is str:
        if isinstance(data, str):
            return data
        errors.append(FieldError(where, f"must be a string, not {type(data).__name__}"))
        return None
    origin = get_origin(tp)
    if origin in (tuple, list, frozenset, set):
        if not isinstance(data, list):
            errors.append(FieldError(where, f"must be an array, not {type(data).__name__}"))
            return None
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_decode(item_tp, v, f"{where}[{i}]", errors, frozenset()) for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else origin(items)
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            errors.append(FieldError(where, f"must be an object, not {type(data).__name__}"))
            return None
        return dict(data)
    raise SerializeError(f"no JSON decoding for type {tp!r} at {where or 'body'}")


def _decode_dataclass(cls: type, data: Any, where: str, errors: list[FieldError], exclude: frozenset[str]) -> Any:
    if not isinstance(data, dict):
        errors.append(FieldError(where or "body", f"must be an object, not {type(data).__name__}"))
        return None
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key in data:
        if key not in fields or key in exclude:
            errors.append(FieldError(_join(where, str(key)), "is not a known field"))
    for name, f in fields.items():
        if name in exclude:
            continue
        if name in data:
            kwargs[name] = _decode(hints[name], data[name], _join(where, name), errors, frozenset())
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(FieldError(_join(where, name), "is required"))
    if errors:
        return None
    return cls(**kwargs)


# ---------------------------------------------------------------- JSON Schema


def json_schema(tp: Any, components: dict[str, Any], *, exclude: frozenset[str] = frozenset(),
                name: str | None = None, request: bool = False) -> dict[str, Any]:
    """The JSON Schema (OpenAPI 3.1) of ``tp``; dataclasses go into ``components`` and are referenced.

    ``request=True`` describes what :func:`from_json` accepts (fields with defaults are
    optional); otherwise what :func:`to_json` produces (every field present).
    """
    tp, nullable = _without_none(tp)
    schema = _schema(tp, components, exclude, name, request)
    if nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _schema(tp: Any, components: dict[str, Any], exclude: frozenset[str], name: str | None,
            request: bool) -> dict[str, Any]:
    if tp is Any:
        return {}
    if dataclasses.is_dataclass(tp):
        ref = name or (tp.__name__ + ("Input" if request else ""))
        if ref not in components:
            components[ref] = {}  # a placeholder first: recursion-safe
            hints = type_hints(tp)
            props: dict[str, Any] = {}
            required: list[str] = []
            for f in dataclasses.fields(tp):
                if f.name in exclude or (request and not f.init):
                    continue
                props[f.name] = json_schema(hints[f.name], components, request=request)
                has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                if not request or not has_default:
                    required.append(f.name)
            body: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
            if required:
                body["required"] = required
            doc = (tp.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            if doc and not doc.startswith(tp.__name__ + "("):
                body["description"] = doc
            components[ref] = body
        return {"$ref": f"#/components/schemas/{ref}"}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "format": "int64"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if tp is bytes:
        return {"type": "string", "contentEncoding": "base64"}
    if _is_union(tp):
        return {"anyOf": [json_schema(a, components, request=request) for a in get_args(tp)]}
    origin = get_origin(tp)
    if origin in (tuple, list, frozenset, set):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return {"type": "array", "items": json_schema(args[0], components, request=request) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    raise SerializeError(f"no JSON Schema for type {tp!r}")
