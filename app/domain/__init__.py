"""Entities, value objects, states and errors. Pure Python: no Qt, no SQLAlchemy."""

from app.domain.camera import (
    Camera,
    CameraState,
    MotionSettings,
    has_secret,
    mask_secrets,
    name_key,
    source_problem,
)
from app.domain.errors import (
    Conflict,
    ConstraintViolation,
    DomainError,
    ErrorCode,
    FieldError,
    InvalidState,
    NotFound,
    OperationError,
    PersistenceError,
    StaleWrite,
    Unavailable,
    ValidationError,
)
from app.domain.rules import (
    METRICS,
    AlertRule,
    Comparator,
    NoDataPolicy,
    Notify,
    Severity,
    TargetKind,
    parse_schedule,
)

__all__ = [
    "METRICS", "AlertRule", "Camera", "CameraState", "Comparator", "Conflict", "ConstraintViolation", "DomainError",
    "ErrorCode", "FieldError", "InvalidState", "MotionSettings", "NoDataPolicy", "NotFound",
    "Notify", "OperationError", "PersistenceError", "Severity", "StaleWrite", "TargetKind", "Unavailable", "ValidationError",
    "has_secret", "mask_secrets",
    "name_key", "parse_schedule", "source_problem",
]
