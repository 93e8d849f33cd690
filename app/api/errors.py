"""The API's errors and its one error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.api.serialize import to_json
from app.domain.errors import ErrorCode

STATUS_OF_CODE = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.VALIDATION: 422,
    ErrorCode.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """Base of the API package's errors."""


class ApiConfigError(ApiError):
    """The API cannot start with this configuration (address, port, token, a setting's type)."""


class HttpError(ApiError):
    """An answer other than success, with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def route_headers(info: Any) -> dict[str, str]:
    if info is None:
        return {}
    return {"X-Edge-Path": info.served_by, "X-Edge-Reason": info.reason}


def error_payload(code: str, message: str, details: dict[str, Any] | None, info: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": to_json(details or {})},
            "route": to_json(info) if info is not None else None}
