"""The legacy implementation of the station's operations (transaction scripts on SQLAlchemy Core)."""

from app.legacy.operations import LegacyOperations

__all__ = ["LegacyOperations"]
