"""Engine creation: SQLite pragmas, schema migrations, the newer-database guard."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

log = logging.getLogger("edge_station.store")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The database cannot be opened or used; the message says why."""


class SchemaTooNew(StoreError):
    pass


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


#: pooled SQLite connections per engine (a file database; WAL lets readers and one writer share it)
SQLITE_POOL_SIZE = 8
SQLITE_POOL_OVERFLOW = 24


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and synchronous=NORMAL.

    A file SQLite database keeps a small pool of connections: opening one (and setting its
    pragmas) cost more than half of a short read such as the status of every camera. In WAL
    mode a pooled connection starts every transaction at the latest commit of any process, and
    the pool resets (rolls back) each connection when it is returned, so no read is stale and
    no lock outlives a unit of work. ``:memory:`` keeps SQLAlchemy's default (one connection).
    """
    try:
        if url.startswith("sqlite"):
            if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"):
                engine = create_engine(url)
            else:
                engine = create_engine(url, poolclass=QueuePool, pool_size=SQLITE_POOL_SIZE,
                                       max_overflow=SQLITE_POOL_OVERFLOW, pool_reset_on_return="rollback",
                                       connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, SQLAlchemyError) as e:
        raise StoreError(f"cannot use database URL {redact_url(url)}: {e}") from e
    except ModuleNotFoundError as e:
        raise StoreError(f"no driver for database URL {redact_url(url)}: {e.name} is not installed") from e
    return engine


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> str:
    """Bring the schema to this app's head; refuse a database written by a newer app."""
    cfg = _alembic_config(engine)
    script = ScriptDirectory.from_config(cfg)
    try:
        current = current_revision(engine)
    except DBAPIError as e:
        raise StoreError(f"cannot open database {redact_url(str(engine.url))}: {e.orig}") from e
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNew(
            f"database {redact_url(str(engine.url))} has schema revision {current}, which is newer than "
            f"this Edge Station knows (up to {script.get_current_head()}); install a newer Edge Station"
        )
    head = script.get_current_head()
    try:
        command.upgrade(cfg, "head")
    except SQLAlchemyError as e:
        raise StoreError(f"migrating database {redact_url(str(engine.url))} failed: {e}") from e
    if current != head:
        log.info("database %s migrated from schema %s to %s", redact_url(str(engine.url)), current or "(empty)", head)
    return head  # type: ignore[return-value]


def is_migrated(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
