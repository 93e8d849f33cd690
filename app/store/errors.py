"""The store's database errors, in the domain's words.

Repositories and the unit of work run their writes through :func:`domain_errors`
(or :func:`flush` / :func:`write`), so a caller above the store sees
:class:`~app.domain.errors.ConstraintViolation` or :class:`~app.domain.errors.StaleWrite`,
never an SQLAlchemy exception. Errors of the connection itself (the database is
gone, the disk is full) are not answers and pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.domain.errors import Constraint, ConstraintViolation, StaleWrite

#: PostgreSQL's SQLSTATE codes of the constraints the schema declares
_PG_UNIQUE = "23505"
_PG_FOREIGN_KEY = "23503"


def constraint_of(error: IntegrityError) -> Constraint:
    """Which kind of rule the database says a write broke (SQLite and PostgreSQL)."""
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    text = str(orig).upper()
    if code == _PG_UNIQUE or "UNIQUE" in text:
        return "unique"
    if code == _PG_FOREIGN_KEY or "FOREIGN KEY" in text:
        return "reference"
    return "other"


@contextmanager
def domain_errors() -> Iterator[None]:
    """Inside: an integrity error becomes :class:`ConstraintViolation`, a stale row :class:`StaleWrite`."""
    try:
        yield
    except IntegrityError as e:
        raise ConstraintViolation(f"the database refused the write: {e.orig}",
                                  constraint=constraint_of(e)) from e
    except StaleDataError as e:
        raise StaleWrite(str(e)) from e


def flush(session: Session) -> None:
    """Send the session's pending changes (constraint failures as domain errors)."""
    with domain_errors():
        session.flush()


def write(session: Session, statement: Executable) -> int:
    """Run an INSERT/UPDATE/DELETE in the session; how many rows it changed."""
    with domain_errors():
        result = session.execute(statement)
    return rows_changed(result)


def rows_changed(result: Any) -> int:
    """The row count of a DML statement's result (``Session.execute`` types it as ``Result``;
    for a DML statement it is a :class:`CursorResult`)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an INSERT, UPDATE or DELETE: {type(result).__name__}")
    return int(result.rowcount or 0)
