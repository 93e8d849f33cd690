"""Engine creation: SQLite pragmas, schema migrations, the newer-database guard."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from app.store.preflight import SCHEMA_HEAD

if TYPE_CHECKING:  # pragma: no cover - Alembic is loaded only when a migration may be needed
    from alembic.config import Config

log = logging.getLogger("edge_station.store")

#: A database already at the newest migration (app/store/preflight.py keeps it, checked by its test)
#: opens without loading Alembic: about a fifth of a second of every start.
HEAD_REVISION = SCHEMA_HEAD

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The database cannot be opened or used; the message says why."""


class SchemaTooNew(StoreError):
    pass


class DatabaseDamaged(StoreError):
    """The file is not a usable database: empty, not SQLite, or failing its integrity check."""


class DatabaseBusy(StoreError):
    """Another process holds the write lock for longer than the busy timeout."""


BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's lock before "busy"


def describe_db_error(exc: BaseException) -> StoreError | None:
    """A driver error as the one-line StoreError a person can act on, or None if it is not one.

    No SQL, no parameters: "database is locked" becomes "busy (held by another process)",
    a damaged file says so, a full disk says so.
    """
    orig = getattr(exc, "orig", exc)
    text = str(orig).lower()
    if "database is locked" in text or "database is busy" in text:
        return DatabaseBusy(f"the database is busy (held by another process) for more than "
                            f"{BUSY_TIMEOUT_MS / 1000:g} s; try again when it is done")
    if "malformed" in text or "file is not a database" in text or "disk image" in text:
        return DatabaseDamaged(f"the database is damaged ({orig}): restore a backup, or move the file "
                               "away to start with a new one; 'edge-station doctor' checks it")
    if ("database or disk is full" in text or "no space" in text
            or "readonly database" in text and _FULL_DISK_FILES):
        return StoreError("the disk is full: the database cannot be written (reads still work); free some space")
    return None


def sqlite_path(engine: Engine) -> Path | None:
    if engine.url.get_backend_name() != "sqlite":
        return None
    db = engine.url.database
    return Path(db) if db and db != ":memory:" else None


def quick_check(engine: Engine) -> str:
    """``PRAGMA quick_check``'s verdict: "ok", or its first finding (SQLite only)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("PRAGMA quick_check(5)").fetchall()
    found = [str(r[0]) for r in rows]
    return "ok" if found == ["ok"] else "; ".join(found)


def check_sqlite_file(engine: Engine) -> None:
    """Refuse an empty file and a damaged database before anything is written to them."""
    path = sqlite_path(engine)
    if path is None or not path.exists():
        return
    if path.is_file() and path.stat().st_size == 0:
        raise DatabaseDamaged(
            f"database {path} is an empty file (0 bytes), not a station database: move it away to "
            "start with a new one, or restore a backup")
    try:
        verdict = quick_check(engine)
    except DBAPIError as e:
        raise describe_db_error(e) or StoreError(f"cannot open database {path}: {e.orig}") from None
    if verdict != "ok":
        raise DatabaseDamaged(
            f"database {path} is damaged (PRAGMA quick_check: {verdict[:300]}): restore a backup, or "
            "move the file away to start with a new one")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


LOW_SPACE_BYTES = 1 << 20  # below this much free space the disk counts as full
_FULL_DISK_FILES: set[str] = set()  # databases opened read-only because their disk was full


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent if not path.is_dir() else path).free
    except OSError:
        return None


class _ReadOnlyConnection(sqlite3.Connection):
    """The read-only connection a full disk leaves (a pooled one is replaced once there is space)."""


def _refresh_read_only(path: Path) -> Callable[[Any, Any, Any], None]:
    """A checkout listener: a pooled read-only fallback is dropped once the disk has space again."""

    def listener(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_conn, _ReadOnlyConnection):
            free = free_bytes(path)
            if free is not None and free >= LOW_SPACE_BYTES:
                raise DisconnectionError("the disk has space again: reconnect read-write")

    return listener


def _sqlite_creator(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connections with the station's pragmas; on a full disk, a read-only one so reads keep working.

    Opening a WAL database needs to write its -shm/-wal files; with no space left that
    is "disk I/O error" for every read. When the disk is full the connection is opened
    ``immutable`` instead (nothing can be written anyway): reads work, a write says
    the disk is full (:func:`describe_db_error`).
    """

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        try:
            _sqlite_pragmas(conn, None)
            _FULL_DISK_FILES.discard(str(path))
            return conn
        except sqlite3.OperationalError as e:
            free = free_bytes(path)
            if free is None or free >= LOW_SPACE_BYTES or not path.exists():
                conn.close()
                raise
            conn.close()
            if str(path) not in _FULL_DISK_FILES:
                log.info("disk full (%s bytes free): %s is opened read-only until there is space (%s)",
                            free, path, e)
            _FULL_DISK_FILES.add(str(path))
        ro = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False,
                             factory=_ReadOnlyConnection)
        ro.execute("PRAGMA foreign_keys=ON")
        return ro

    return connect


def storage_health(engine: Engine) -> dict[str, object]:
    """What a health document says about the database's storage (SQLite file only).

    ``{"ok": bool, "problem": str | None, "free_bytes": int | None}``; the problem is
    "disk full" when the file system holding the database has less than 1 MiB free, and
    "the database is busy (held by another process)" when another connection holds the
    write lock right now.
    """
    path = sqlite_path(engine)
    if path is None:
        return {"ok": True, "problem": None, "free_bytes": None}
    free = free_bytes(path)
    if free is not None and free < LOW_SPACE_BYTES:
        return {"ok": False, "problem": f"disk full: {free} bytes free on the database's file system",
                "free_bytes": free}
    if path.exists():
        # Can a write start now? Take the write lock for an instant, without waiting.
        try:
            conn = sqlite3.connect(str(path), timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                return {"ok": False, "problem": "the database is busy (held by another process)",
                        "free_bytes": free}
    return {"ok": True, "problem": None, "free_bytes": free}


def _private_files(path: Path) -> Callable[[Any, Any], None]:
    """A connect listener making the database and its WAL files 0600 (they hold camera passwords)."""
    done: set[str] = set()

    def listener(_dbapi_conn: Any, _record: Any) -> None:
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if str(f) in done:
                continue
            try:
                os.chmod(f, 0o600)
                done.add(str(f))
            except OSError:  # not created yet (the WAL files come with the first write)
                pass

    return listener


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
            db_name = make_url(url).database
            path = Path(db_name) if db_name and db_name != ":memory:" else None
            if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"):
                engine = create_engine(url)
                event.listen(engine, "connect", _sqlite_pragmas)
            elif path is not None and not make_url(url).query:
                # Our own connect: the pragmas, and a read-only fallback on a full disk; pooled.
                engine = create_engine(url, poolclass=QueuePool, pool_size=SQLITE_POOL_SIZE,
                                       max_overflow=SQLITE_POOL_OVERFLOW, pool_reset_on_return="rollback",
                                       creator=_sqlite_creator(path))
                event.listen(engine, "connect", _private_files(path))
                event.listen(engine, "checkout", _refresh_read_only(path))
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The migrations directory's head (Alembic's answer; :data:`HEAD_REVISION` is checked against it)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stored_revision(engine: Engine) -> str | None:
    """The revision the database says it is at (None: no version table, or not one revision), in SQL."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def migrate(engine: Engine) -> str:
    """Bring the schema to this app's head; refuse a database written by a newer app."""
    check_sqlite_file(engine)
    try:
        if stored_revision(engine) == HEAD_REVISION:
            return HEAD_REVISION  # nothing to do: Alembic is not even loaded
    except DBAPIError as e:
        raise describe_db_error(e) or StoreError(
            f"cannot open database {redact_url(str(engine.url))}: {e.orig}") from e
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(engine)
    script = ScriptDirectory.from_config(cfg)
    try:
        current = current_revision(engine)
    except DBAPIError as e:
        raise describe_db_error(e) or StoreError(
            f"cannot open database {redact_url(str(engine.url))}: {e.orig}") from e
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
        raise describe_db_error(e) or StoreError(
            f"migrating database {redact_url(str(engine.url))} failed: {e}") from e
    if current != head:
        log.info("database %s migrated from schema %s to %s", redact_url(str(engine.url)), current or "(empty)", head)
    return head  # type: ignore[return-value]


def is_migrated(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
