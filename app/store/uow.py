"""Unit of work: one transaction, repositories bound to it, rollback unless committed."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.domain.camera import Camera
from app.store.catalog import ReadModel, commit_counter
from app.store.errors import domain_errors
from app.store.repositories import (
    AuditRepository,
    CameraRepository,
    ReportRepository,
    RuleRepository,
    SettingsRepository,
)
from app.store.scope import SESSION_KEY


class SqlUnitOfWork:
    """``with uow: ...; uow.commit()`` — leaving the block without ``commit`` rolls back.

    A :class:`~app.domain.ports.UnitOfWork`: a write that breaks a constraint raises
    :class:`~app.domain.errors.ConstraintViolation` (from a repository or from ``commit``),
    one that lost a race :class:`~app.domain.errors.StaleWrite`.
    """

    cameras: CameraRepository
    rules: RuleRepository
    settings: SettingsRepository
    audit: AuditRepository
    reports: ReportRepository

    def __init__(self, session_factory: sessionmaker[Session]):
        self._factory = session_factory
        self._session: Session | None = None

    def __enter__(self) -> SqlUnitOfWork:
        if self._session is not None:
            raise RuntimeError("unit of work is already in use")
        self._session = self._factory()
        s = self._session
        self.cameras = CameraRepository(s)
        self.rules = RuleRepository(s)
        self.settings = SettingsRepository(s)
        self.audit = AuditRepository(s)
        self.reports = ReportRepository(s)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._session is not None
        try:
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None

    @property
    def session(self) -> Session:
        """For the store's own helpers (import/export, events); services use the repositories."""
        assert self._session is not None, "unit of work not entered"
        return self._session

    def commit(self) -> None:
        assert self._session is not None, "unit of work not entered"
        with domain_errors():
            self._session.commit()

    def rollback(self) -> None:
        assert self._session is not None, "unit of work not entered"
        self._session.rollback()


class Store:
    """An opened, migrated database: hands out units of work.

    ``station_id``: the station whose rows its units of work read and write (``app/store/scope.py``);
    None, every station's.
    """

    def __init__(self, engine: Engine, *, station_id: str | None = None):
        self.engine = engine
        self.station_id = station_id
        self._factory = sessionmaker(engine, expire_on_commit=False, info={SESSION_KEY: station_id})
        self._cameras = ReadModel(engine, self._load_cameras)

    def for_station(self, station_id: str | None) -> Store:
        """The same database, for another station (or, with None, every station); shares the engine."""
        return Store(self.engine, station_id=station_id)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._factory)

    def camera_snapshot(self) -> tuple[Camera, ...]:
        """Every camera, ordered by id, as of the latest commit that wrote them (``app/store/catalog.py``)."""
        return self._cameras.get()

    def invalidate(self) -> None:
        """Another process may have committed: the next snapshot reads the database again."""
        commit_counter(self.engine).invalidate()

    def _load_cameras(self) -> tuple[Camera, ...]:
        with self.uow() as uow:
            return tuple(uow.cameras.list())

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["SqlUnitOfWork", "Store"]
