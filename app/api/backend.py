"""What the API needs from the station, behind one small adapter.

:class:`StationBackend` calls operations through the rollout router when there
is one (``router=`` given, ``station.call_with_decision``, or ``station.router``)
and reports the routing decision; without a router it calls ``station.call`` and
describes the path from the force alone (reason ``unrouted``). It reads the
rollout through the router (or, without one, :class:`RolloutControl` on the
station's store), and assembles the health document.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.api.routes import (
    CameraHealth,
    DatabaseHealth,
    HealthDocument,
    RolloutHealth,
    RolloutUpdate,
    RouteInfo,
    SupervisorHealth,
)
from app.domain.camera import CameraState

log = logging.getLogger(__name__)

DOMAIN, LEGACY = "domain", "legacy"
REASON_UNROUTED = "unrouted"

#: camera states that need attention when the camera is active
_BAD_STATES = {CameraState.FAILED: "worker failed", CameraState.BACKOFF: "worker restarting after a failure",
               CameraState.STALLED: "stream stalled"}


class BackendError(Exception):
    """The station cannot answer this API request (not an operation error)."""


@dataclass(frozen=True)
class Unrouted:
    """The decision a call gets when the station has no router: the force, or the station's default path."""

    path: str
    reason: str
    key: str = ""
    percent: int = 0
    fallback: bool = False
    fallback_cause: str = ""

    @property
    def served_by(self) -> str:
        return self.path

    @property
    def forced(self) -> bool:
        return self.reason.startswith("force_")


def route_info(op: str, decision: Any) -> RouteInfo:
    return RouteInfo(operation=op, path=decision.path, reason=decision.reason, served_by=decision.served_by,
                     forced=bool(decision.forced), fallback=bool(decision.fallback),
                     fallback_cause=decision.fallback_cause or "", key=decision.key or "",
                     percent=int(decision.percent or 0))


class CallFailed(Exception):
    """Wraps what an operation raised, with the routing decision when it is known."""

    def __init__(self, cause: BaseException, route: RouteInfo | None):
        super().__init__(str(cause))
        self.cause = cause
        self.route = route


class StationBackend:
    def __init__(self, station: Any, router: Any = None):
        self.station = station
        self._router = router

    # ------------------------------------------------------------ routing

    @property
    def router(self) -> Any:
        return self._router if self._router is not None else getattr(self.station, "router", None)

    def call(self, op: str, request: Any, force: str | None, actor: str) -> tuple[Any, RouteInfo]:
        """Run an operation; raises :class:`CallFailed` (with the decision) when it raised."""
        router = self.router
        if self._router is None and hasattr(self.station, "call_with_decision"):
            runner = self.station.call_with_decision
        elif router is not None and hasattr(router, "call_with_decision"):
            runner = router.call_with_decision
        else:
            return self._call_unrouted(op, request, force, actor)
        try:
            result, decision = runner(op, request, force=force, actor=actor)
        except Exception as e:
            last = getattr(router, "last_decision", None) if router is not None else None
            raise CallFailed(e, route_info(op, last) if last is not None else None) from e
        return result, route_info(op, decision)

    def _call_unrouted(self, op: str, request: Any, force: str | None, actor: str) -> tuple[Any, RouteInfo]:
        if force == LEGACY:
            decision = Unrouted(LEGACY, "force_legacy")
        elif force == DOMAIN:
            decision = Unrouted(DOMAIN, "force_domain")
        else:
            ops = getattr(self.station, "ops", None)
            decision = Unrouted(LEGACY if ops is getattr(self.station, "legacy_ops", object()) else DOMAIN,
                                REASON_UNROUTED)
        info = route_info(op, decision)
        try:
            return self.station.call(op, request, force=force, actor=actor), info
        except Exception as e:
            raise CallFailed(e, info) from e

    # ------------------------------------------------------------ rollout

    def _control(self) -> Any:
        router = self.router
        control = getattr(router, "control", None) if router is not None else None
        if control is not None:
            return control
        from app.rollout.control import RolloutControl

        return RolloutControl(self.station.store)

    def rollout(self) -> dict[str, Any]:
        router = self.router
        if router is not None and hasattr(router, "snapshot"):
            doc = router.snapshot().as_dict()
            doc["routed"] = True
            return doc
        control = self._control()
        doc = control.status().as_dict() if hasattr(control, "status") else {"settings": control.load().as_dict()}
        doc["routed"] = False
        return doc

    def update_rollout(self, change: RolloutUpdate, actor: str) -> dict[str, Any]:
        """Apply one change (rollback and advance are steps of their own); raises the rollout's errors."""
        from app.rollout.errors import RolloutSettingsError

        steps = [change.rollback, change.advance,
                 any(v is not None for v in (change.use_domain, change.percent, change.auto_rollback,
                                             change.shadow_rate, change.thresholds))]
        if sum(bool(s) for s in steps) != 1:
            raise RolloutSettingsError("give exactly one of: settings to change, rollback=true, advance=true")
        router = self.router
        target = router if router is not None and hasattr(router, "set") else None
        control = self._control()
        reason = change.reason or "api"
        if change.rollback:
            if target is not None:
                target.rollback(actor=actor, reason=reason)
            else:
                control.rollback(actor=actor, reason=reason)
        elif change.advance:
            if target is not None:
                target.advance(actor=actor)
            else:
                control.advance(actor=actor)
        else:
            if change.use_domain is not None or change.percent is not None:
                (target or control).set(use_domain=change.use_domain, percent=change.percent, actor=actor)
            options: dict[str, Any] = dict(change.thresholds or {})
            if change.auto_rollback is not None:
                options["auto_rollback"] = change.auto_rollback
            if change.shadow_rate is not None:
                options["shadow_rate"] = change.shadow_rate
            if options:
                (target or control).set_options(options, actor=actor)
        return self.rollout()

    def rollout_health(self) -> RolloutHealth:
        router = self.router
        try:
            if router is not None and hasattr(router, "metrics") and hasattr(router, "settings"):
                from app.rollout.health import evaluate_health

                s = router.settings
                verdict = evaluate_health(router.metrics.summary(s.thresholds.window_s), s.thresholds)
                return RolloutHealth(verdict=str(verdict.verdict), use_domain=s.use_domain, percent=s.percent,
                                     latched=s.latched, reasons=tuple(verdict.reasons))
            s = self._control().load()
            return RolloutHealth(verdict="unknown", use_domain=s.use_domain, percent=s.percent, latched=s.latched,
                                 reasons=("the station has no rollout router: calls are not measured",))
        except Exception as e:
            log.exception("rollout health failed")
            return RolloutHealth(verdict="unknown", use_domain=False, percent=0, latched=False,
                                 reasons=(f"rollout health unavailable: {e}",))

    # ------------------------------------------------------------ health

    def health(self) -> HealthDocument:
        db = self._database_health()
        sup = self.station.supervisor
        try:
            sup_ok = sup is not None and bool(sup.running)
            workers = len(sup.statuses()) if sup is not None else 0
            sup_health = SupervisorHealth(ok=sup_ok, workers=workers,
                                          error=None if sup_ok else "the supervisor is not running")
        except Exception as e:
            sup_health = SupervisorHealth(ok=False, workers=0, error=f"{type(e).__name__}: {e}")
        cameras = tuple(self._camera_health())
        rollout = self.rollout_health()
        if not db.ok or not sup_health.ok:
            status = "down"
        elif any(not c.ok for c in cameras) or rollout.verdict == "alert" or rollout.latched:
            status = "degraded"
        else:
            status = "ok"
        return HealthDocument(status=status, checked_at=time.time(), database=db, supervisor=sup_health,
                              cameras=cameras, rollout=rollout)

    def _database_health(self) -> DatabaseHealth:
        store = self.station.store
        if store is None:
            return DatabaseHealth(ok=False, dialect="", error="the database is closed")
        dialect = store.engine.dialect.name
        t0 = time.perf_counter()
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar()
        except Exception as e:
            return DatabaseHealth(ok=False, dialect=dialect, error=f"{type(e).__name__}: {e}"[:300])
        return DatabaseHealth(ok=True, dialect=dialect, latency_ms=(time.perf_counter() - t0) * 1000.0)

    def _camera_health(self) -> list[CameraHealth]:
        out = []
        for st in self.station.live_status():
            problem = None
            if st.active:
                if st.state in _BAD_STATES:
                    problem = _BAD_STATES[st.state]
                elif st.state is CameraState.RUNNING and st.source == "down":
                    problem = "source down"
            out.append(CameraHealth(camera_id=st.camera_id, name=st.name, active=st.active, state=st.state.value,
                                    ok=problem is None, source=st.source, fps=st.fps,
                                    last_frame_age=st.last_frame_age, restarts=st.restarts, problem=problem))
        return out
