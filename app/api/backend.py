"""What the API needs from the station, behind one small adapter.

:class:`StationBackend` calls operations through the station's facade
(``station.call_with_decision``) and reports the routing decision; reads and
changes the rollout through the facade; and assembles the health document.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from app.api.routes import (
    CameraHealth,
    DatabaseHealth,
    HealthDocument,
    RolloutHealth,
    RouteInfo,
    SupervisorHealth,
)
from app.domain.camera import CameraState

if TYPE_CHECKING:
    from app.api.models import RolloutChange
    from app.domain.rules import AlertRule
    from app.rollout.decision import Decision
    from app.station.port import StationPort

log = logging.getLogger(__name__)

#: camera states that need attention when the camera is active
_BAD_STATES = {CameraState.FAILED: "worker failed", CameraState.BACKOFF: "worker restarting after a failure",
               CameraState.STALLED: "stream stalled"}


def route_info(op: str, decision: Decision) -> RouteInfo:
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
    def __init__(self, station: StationPort):
        self.station = station

    # ------------------------------------------------------------ routing

    def call(self, op: str, request: Any, force: str | None, actor: str) -> tuple[Any, RouteInfo]:
        """Run an operation; raises :class:`CallFailed` (with the decision) when it raised."""
        try:
            result, decision = self.station.call_with_decision(op, request, force=force, actor=actor)
        except Exception as e:
            # The router keeps the decision of this thread's last call, also when it raised (the
            # operation names are the route table's, so deciding itself cannot fail here).
            last = self.station.last_decision()
            raise CallFailed(e, route_info(op, last) if last is not None else None) from e
        return result, route_info(op, decision)

    def list_rules(self, force: str | None) -> tuple[list[AlertRule], RouteInfo]:
        """Every alert rule, read by the legacy or the domain implementation.

        Not one of the thirteen operations and not bucketed: legacy while the rules track is
        rolled back (the latch wins over force, as on every route), otherwise forced as asked,
        else the domain path when the rules track is on at 100 %, else legacy.
        """
        on, percent, latched = False, 0, False
        try:
            t = self.station.rollout_settings().track("rules")  # the rules track governs rule reads too
            on, percent, latched = bool(t.use_domain), int(t.percent), bool(t.latched)
        except Exception:
            on, percent, latched = False, 0, False
        if latched:
            path, reason = "legacy", "rollback_latch"
        elif force in ("domain", "legacy"):
            path, reason = force, f"force_{force}"
        elif not on:
            path, reason = "legacy", "domain_off"
        else:
            path, reason = ("domain", "percent_in") if percent >= 100 else ("legacy", "percent_out")
        info = RouteInfo(operation="list_rules", path=path, reason=reason, served_by=path,
                         forced=force is not None, percent=percent if force is None else 0)
        try:
            rules = self.station.list_rules(via=path)
        except Exception as e:
            raise CallFailed(e, info) from e
        return rules, info

    # ------------------------------------------------------------ rollout

    def rollout(self) -> dict[str, Any]:
        return self.station.rollout_snapshot().as_dict()

    def update_rollout(self, change: RolloutChange, actor: str) -> dict[str, Any]:
        """Apply one change (rollback and advance are steps of their own); raises the rollout's errors."""
        from app.rollout.errors import RolloutSettingsError

        steps = [change.rollback, change.advance,
                 any(v is not None for v in (change.use_domain, change.percent, change.auto_rollback,
                                             change.shadow_rate, change.thresholds))]
        if sum(bool(s) for s in steps) != 1:
            raise RolloutSettingsError("give exactly one of: settings to change, rollback=true, advance=true")
        station = self.station
        track = change.track or "all"
        if change.rollback:
            station.rollout_rollback(track=track, actor=actor, reason=change.reason or "rollback through the API")
        elif change.advance:
            station.rollout_advance(actor=actor, track=change.track if change.track != "all" else None,
                                    override_reason=change.override_reason)
        else:
            if change.use_domain is not None or change.percent is not None:
                station.rollout_set(use_domain=change.use_domain, percent=change.percent, actor=actor, track=track,
                                    reason=change.reason or "set through the API",
                                    override_reason=change.override_reason)
            options: dict[str, object] = dict(change.thresholds or {})
            if change.auto_rollback is not None:
                options["auto_rollback"] = change.auto_rollback
            if change.shadow_rate is not None:
                options["shadow_rate"] = change.shadow_rate
            if options:
                station.rollout_options(options, actor=actor)
        return self.rollout()

    def rollout_health(self) -> RolloutHealth:
        try:
            s = self.station.rollout_settings()
            verdict = self.station.rollout_health()  # the router's own verdict: its failure limit applies
        except Exception as e:
            log.exception("rollout health failed")
            return RolloutHealth(verdict="unknown", use_domain=False, percent=0, latched=False,
                                 reasons=(f"rollout health unavailable: {type(e).__name__}: {e}",))
        return RolloutHealth(verdict=str(verdict.verdict), use_domain=s.use_domain, percent=s.percent,
                             latched=s.latched, reasons=tuple(verdict.reasons))

    # ------------------------------------------------------------ health

    def health(self) -> HealthDocument:
        db = self._database_health()
        try:
            sup_ok = self.station.supervisor_running()
            workers = self.station.worker_count()
            sup_health = SupervisorHealth(ok=sup_ok, workers=workers,
                                          error=None if sup_ok else "the supervisor is not running")
        except Exception as e:
            sup_health = SupervisorHealth(ok=False, workers=0, error=f"{type(e).__name__}: {e}")
        cameras = tuple(self._camera_health())
        rollout = self.rollout_health()
        if not db.ok or not sup_health.ok:
            status = "down"
        elif (any(not c.ok for c in cameras) or rollout.verdict == "alert" or rollout.latched
              or db.problem is not None):
            status = "degraded"
        else:
            status = "ok"
        return HealthDocument(status=status, checked_at=time.time(), database=db, supervisor=sup_health,
                              cameras=cameras, rollout=rollout)

    def _database_health(self) -> DatabaseHealth:
        c = self.station.database_check()
        return DatabaseHealth(ok=c.ok, dialect=c.dialect, latency_ms=c.latency_ms, error=c.error,
                              free_bytes=c.free_bytes, problem=c.problem)

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
