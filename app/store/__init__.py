"""Persistence: rows, repositories, unit of work, migrations, YAML import/export."""

from app.store.db import SchemaTooNew, StoreError, make_engine, migrate
from app.store.uow import SqlUnitOfWork, Store


def open_store(url: str) -> Store:
    """Open ``url``, run the migrations, and return the store (raises :class:`StoreError`)."""
    engine = make_engine(url)
    try:
        migrate(engine)
    except Exception:
        engine.dispose()
        raise
    return Store(engine)


__all__ = ["SchemaTooNew", "SqlUnitOfWork", "Store", "StoreError", "make_engine", "migrate", "open_store"]
