"""Persistence: rows, repositories, unit of work, migrations, YAML import/export.

The names below load on first use (PEP 562), so that ``app.store.preflight``
can answer before the window shows without importing SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.store.db import SchemaTooNew, StoreError, make_engine, migrate
    from app.store.uow import SqlUnitOfWork, Store

_LAZY = {
    "SchemaTooNew": "app.store.db",
    "StoreError": "app.store.db",
    "make_engine": "app.store.db",
    "migrate": "app.store.db",
    "SqlUnitOfWork": "app.store.uow",
    "Store": "app.store.uow",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'app.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def open_store(url: str, *, station_id: str | None = None) -> Store:
    """Open ``url``, run the migrations, and return the store (raises :class:`StoreError`).

    With ``station_id`` the store reads and writes that station's rows (``app/store/scope.py``);
    without, every station's."""
    from app.store.db import make_engine, migrate
    from app.store.uow import Store

    engine = make_engine(url)
    try:
        migrate(engine)
    except Exception:
        engine.dispose()
        raise
    return Store(engine, station_id=station_id)


__all__ = ["SchemaTooNew", "SqlUnitOfWork", "Store", "StoreError", "make_engine", "migrate", "open_store"]
