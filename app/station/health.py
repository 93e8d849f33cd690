"""Settings and audit, metrics and the station's health (supervisor, workers, database)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.station.core import StationCore
from app.station.events import StationEvent
from app.station.port import DatabaseCheck, Labels, MetricsReader, OperationCounts, SeriesKey

if TYPE_CHECKING:
    import numpy as np

    from app.domain.audit import AuditEntry
    from app.rollout.metrics import WindowStats
    from app.supervisor.model import ProcessStats


class HealthMethods(StationCore):
    # ------------------------------------------------------------ settings and audit

    def get_settings(self) -> dict[str, Any]:
        """Every stored setting (rollout settings go through the router, not here)."""
        with self.parts().store.uow() as uow:
            return dict(uow.settings.all())

    def set_settings(self, values: dict[str, Any], *, actor: str = "operator") -> None:
        """Store settings in one transaction, each change audited with its old and new value."""
        from app.domain.audit import AuditEntry

        parts = self.parts()
        with parts.store.uow() as uow:
            for key, value in values.items():
                old = uow.settings.get(key)
                if old == value:
                    continue
                uow.settings.set(key, value)
                uow.audit.add(AuditEntry(op="settings.set", outcome="ok", key=key, actor=actor,
                                         detail={"old": old, "new": value}))
            uow.commit()
        parts.evidence_settings.invalidate()
        self.emit(StationEvent("settings"))

    def audit_page(self, limit: int = 100, *, before: int | None = None,
                   op_prefix: str | None = None) -> list[AuditEntry]:
        """Audit entries newest first; ``before`` an id for the next page."""
        with self.parts().store.uow() as uow:
            return uow.audit.recent(limit, op_prefix=op_prefix, before=before)

    def record_admin(self, op: str, *, key: str = "", outcome: str = "ok", actor: str = "operator",
                     detail: dict[str, Any] | None = None) -> None:
        """Audit one station administration change (camera and rule CRUD, imports) made outside the router."""
        from app.domain.audit import AuditEntry

        with self.parts().store.uow() as uow:
            uow.audit.add(AuditEntry(op=op, outcome=outcome, key=key, actor=actor, detail=dict(detail or {})))
            uow.commit()

    # ------------------------------------------------------------ metrics

    def metrics_reader(self) -> MetricsReader | None:
        """The live metric series (read only), or None when the station is not open."""
        return self._parts.metrics if self._parts is not None else None

    def metric_history(self, name: str, labels: Labels = None, since: float = 0.0,
                       until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stored minute means of one series, ``(times, values)`` as numpy arrays (minute
        middles, unix s): the charts' history from before a restart. Empty without a store."""
        import numpy as np

        from app.metrics.rollup import history_arrays, rollup_history

        if self._parts is None:
            return np.empty(0), np.empty(0)
        cols = history_arrays(rollup_history(self._parts.store, name, labels, since, until))
        return cols["t"] + 30.0, cols["mean"]

    def metric_series(self, name: str) -> list[SeriesKey]:
        """The stored (rolled-up) series keys of one metric, e.g. every camera's ``fps``."""
        from app.store.rollups import RollupRepository

        if self._parts is None:
            return []
        with self._parts.store.uow() as uow:
            return [k for k in RollupRepository(uow.session).series_keys() if k[0] == name]

    def operation_counts(self) -> dict[tuple[str, str], OperationCounts]:
        """Lifetime counts per (operation, path) of the calls routed here."""
        totals = dict(self.parts().router.metrics.totals)
        return {k: OperationCounts(calls=c.calls, errors=c.errors, fallbacks=c.fallbacks, answers=c.answers,
                                   successes=c.successes)
                for k, c in totals.items()}

    def operation_window(self) -> WindowStats:
        """The router's figures over its health window."""
        return self.parts().router.metrics.summary()

    def observe_operations(self, observer: Callable[[str, str, float], None]) -> Callable[[], None]:
        """Call ``observer(op, path, seconds)`` after every routed call; returns the unsubscribe."""
        observers = self.parts().router.metrics.observers
        observers.append(observer)

        def unsubscribe() -> None:
            if observer in observers:
                observers.remove(observer)

        return unsubscribe

    # ------------------------------------------------------------ health

    def supervisor_running(self) -> bool:
        return self._parts is not None and bool(self._parts.supervisor.running)

    def worker_count(self) -> int:
        return len(self._parts.supervisor.statuses()) if self._parts is not None else 0

    def worker_stats(self, camera_id: int) -> ProcessStats | None:
        """Resource use of the camera's worker, or None."""
        return self._parts.supervisor.stats(camera_id) if self._parts is not None else None

    def database_check(self) -> DatabaseCheck:
        """Whether the database answers (and how fast), and the storage under it."""
        from sqlalchemy import text

        from app.store.db import storage_health

        if self._parts is None:
            return DatabaseCheck(ok=False, dialect="", error="the database is closed")
        engine = self._parts.store.engine
        dialect = engine.dialect.name
        t0 = time.perf_counter()
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar()
        except Exception as e:
            return DatabaseCheck(ok=False, dialect=dialect, error=f"{type(e).__name__}: {e}"[:300])
        latency_ms = (time.perf_counter() - t0) * 1000.0
        storage = storage_health(engine)
        problem = storage["problem"]
        free = storage["free_bytes"]
        full = problem is not None and str(problem).startswith("disk full")
        return DatabaseCheck(ok=not full, dialect=dialect, latency_ms=latency_ms,
                             error=str(problem) if full else None,
                             free_bytes=int(free) if isinstance(free, int) else None,
                             problem=str(problem) if problem is not None else None)
