"""Typed errors of the station's operations.

An :class:`OperationError` is an *answer* (the caller asked for something the
station cannot do), not a failure of the code path that produced it. Its
``code`` is stable and is what scripts, the API and the rollout comparison use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class ErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    VALIDATION = "validation"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of an input."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DomainError(Exception):
    """Base of every error the domain layer raises."""


class OperationError(DomainError):
    """A business answer with a stable code (see :class:`ErrorCode`)."""

    code: ErrorCode = ErrorCode.UNAVAILABLE

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class NotFound(OperationError):
    code = ErrorCode.NOT_FOUND


class InvalidState(OperationError):
    code = ErrorCode.INVALID_STATE


class Conflict(OperationError):
    code = ErrorCode.CONFLICT


class Unavailable(OperationError):
    code = ErrorCode.UNAVAILABLE


@dataclass
class _Errors:
    items: list[FieldError] = field(default_factory=list)


class ValidationError(OperationError):
    """Input that breaks a rule; lists every offending field, not just the first."""

    code = ErrorCode.VALIDATION

    def __init__(self, errors: list[FieldError] | FieldError, *, subject: str = "input"):
        if isinstance(errors, FieldError):
            errors = [errors]
        self.errors = list(errors)
        self.subject = subject
        text = "; ".join(str(e) for e in self.errors)
        super().__init__(
            f"invalid {subject}: {text}",
            details={"errors": [{"field": e.field, "message": e.message} for e in self.errors]},
        )


# ---------------------------------------------------------------- persistence

#: what kind of store rule a write broke
Constraint = Literal["unique", "reference", "other"]


class PersistenceError(DomainError):
    """The store refused a write. Not an answer by itself: the operation that wrote
    knows what it means (a taken name, a camera that is gone) and answers with an
    :class:`OperationError` of its own; one nobody expected stays a failure."""


class ConstraintViolation(PersistenceError):
    """A write broke a rule of the store: a unique name or key (``unique``), a reference
    to a row that does not exist (``reference``), or another constraint (``other``)."""

    def __init__(self, message: str, *, constraint: Constraint = "other") -> None:
        super().__init__(message)
        self.constraint: Constraint = constraint


class StaleWrite(PersistenceError):
    """The stored row changed between the read and the write (optimistic concurrency)."""
