"""Typed errors of the station's operations.

An :class:`OperationError` is an *answer* (the caller asked for something the
station cannot do), not a failure of the code path that produced it. Its
``code`` is stable and is what scripts, the API and the rollout comparison use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: dict | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = dict(details or {})

    def to_dict(self) -> dict:
        return {"code": str(self.code), "message": self.message, "details": self.details}


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
