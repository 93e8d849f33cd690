"""The OpenAPI 3.1 document: FastAPI's, generated from the application's pydantic models."""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The document the station serves at ``/api/v1/openapi.json`` (no station needed to build it)."""
    from app.api.app import build_app

    app = build_app(SimpleNamespace(station=None, backend=None, metrics=None, events=None))
    return app.openapi()
