"""The station in its fleet: it registers when it opens (before any camera starts, so a name
clash refuses it before it does anything), heartbeats its status on a thread of its own, and
marks itself stopped when it closes (app/fleet/member.py; docs/fleet.md)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from app.domain.fleet import StationReport
from app.station.core import StationCore

if TYPE_CHECKING:
    from app.domain.audit import AuditEntry
    from app.fleet.member import FleetMember
    from app.fleet.rollback import FleetRollback
    from app.fleet.view import FleetView
    from app.rollout.health import Checklist
    from app.store import Store

log = logging.getLogger("edge_station.station")

ENV_HEARTBEAT_INTERVAL = "EDGE_STATION_HEARTBEAT_INTERVAL"

#: how old a track's gate in the heartbeat may be (s): the gate reads the audit log since its stage began
GATE_TTL = 30.0

_BAD_STATES = {"failed": "worker failed", "backoff": "worker restarting after a failure", "stalled": "stream stalled"}


def checklist_verdict(c: Checklist | None) -> dict[str, Any]:
    """A rollback checklist as a heartbeat carries it: complete, failed, the items not passed yet."""
    if c is None:
        return {"complete": False, "failed": False, "open": ["no rollback latched"]}
    return {"complete": c.complete, "failed": c.failed,
            "open": [f"{x.name}: {x.status}" for x in c.checks if str(x.status) != "pass"]}


class FleetMethods(StationCore):
    fleet: FleetMember | None = None
    _fleet_view: FleetView | None = None

    def fleet_view(self) -> FleetView | None:
        """The fleet this station is in, as a view that reads its registry while someone listens
        (the window's Fleet page); None when the station is not open or not in a fleet."""
        return self._fleet_view

    def _join_fleet(self, store: Store) -> FleetMember | None:
        """Register this station in the database's fleet (raises StationNameTaken, IdentityError)."""
        if not self.options.fleet:
            return None
        from app.fleet.member import FleetMember
        from app.platform.identity import station_id, station_name
        from app.store.stations import StationRegistry

        registry = StationRegistry(store, clock=self.options.fleet_clock)
        interval, gone_after = registry.timing()
        env = os.environ.get(ENV_HEARTBEAT_INTERVAL, "").strip()
        if env:
            try:
                interval = float(env)
            except ValueError:
                raise ValueError(f"${ENV_HEARTBEAT_INTERVAL}={env!r} is not a number of seconds") from None
        if self.options.heartbeat_interval is not None:
            interval = self.options.heartbeat_interval
        if self.options.gone_after is not None:
            gone_after = self.options.gone_after
        gone_after = max(gone_after, 2 * interval)  # a slower heartbeat than the fleet's: judge it by its own
        member = FleetMember(registry, station_id=station_id(self.paths.data_dir),
                             name=station_name(self.options.station_name), report=self.fleet_report,
                             interval=interval, gone_after=gone_after, rollback=self._fleet_rollback(store))
        member.register()
        self.fleet = member
        from app.fleet.view import FleetView
        from app.store.db import redact_url

        # read as often as the station heartbeats; judged by the fleet's gone threshold, as `fleet status` does
        self._fleet_view = FleetView(registry, interval=interval, where=redact_url(self.paths.db_url),
                                     station_id=member.station_id, gone_after=self.options.gone_after)
        return member

    def _fleet_rollback(self, store: Store) -> FleetRollback:
        """The fleet rollbacks as this station applies them: through its router once it is open (the
        window and the API hear of it as of any rollback), on its store before (at registration, so
        that no camera starts on a path the fleet rolled back)."""
        from app.domain.fleet_rollout import FLEET_PREFIX
        from app.fleet.rollback import FleetRollback
        from app.rollout.control import RolloutControl
        from app.store.stations import StationRegistry

        def opened() -> bool:
            return self._parts is not None and self._opened

        def apply(track: str, reason: str) -> None:
            if opened():
                self.rollout_rollback(track=track, reason=reason, actor="fleet", source="fleet")  # type: ignore[attr-defined]
            else:
                RolloutControl(store).rollback(track=track, actor="fleet", reason=reason, source="fleet")

        def checklist(track: str) -> dict[str, Any]:
            c = self.parts().router.checklist(track) if opened() else RolloutControl(store).checklist(track)
            return checklist_verdict(c)

        def audit(entry: AuditEntry) -> None:
            with store.uow() as uow:
                uow.audit.add(entry)
                uow.commit()

        registry = StationRegistry(store)
        return FleetRollback(read=lambda: registry.fleet_settings(FLEET_PREFIX), apply=apply, checklist=checklist,
                             audit=audit)

    def _leave_fleet(self) -> None:
        view, self._fleet_view = self._fleet_view, None
        if view is not None:
            view.close()
        member, self.fleet = self.fleet, None
        if member is not None:
            member.close()

    def fleet_report(self) -> StationReport:
        """This station's status as it heartbeats it: active cameras running/active, the rollout
        stage per track, and a verdict (down: no supervisor; degraded: a camera in trouble, a
        rollout alert or a latched rollback; else ok)."""
        parts = self._parts
        if parts is None:
            return StationReport(health="unknown", problems=("the station is not open",))
        problems: list[str] = []
        sup_ok = bool(parts.supervisor.running)
        statuses = parts.supervisor.statuses()
        active = [c for c in self.cameras() if c.active and c.id is not None]
        up = 0
        for cam in active:
            st = statuses.get(cam.id)  # type: ignore[arg-type]
            state = st.state.value if st is not None else "stopped"
            if state == "running":
                up += 1
            elif state in _BAD_STATES:
                problems.append(f"{cam.name}: {_BAD_STATES[state]}")
        stages = {}
        router = parts.router
        settings = router.settings
        try:  # each track's own gate, for the fleet gate (read from the audit log at most every GATE_TTL s)
            gates = router.snapshot(gate_ttl=GATE_TTL).gates
        except Exception as e:
            gates = {}
            problems.append(f"rollout gate unavailable: {type(e).__name__}")
        for name in settings.tracks:
            t = settings.track(name)
            stages[name] = {"stage": t.stage, "percent": t.target_percent, "use_domain": t.use_domain,
                            "latched": t.latched,
                            "fleet": {"in": t.fleet_in, "percent": t.fleet_percent,
                                      "effective_percent": t.effective_percent}}
            g = gates.get(name)
            if g is not None:
                stages[name]["gate"] = {"passed": g.passed, "complete": g.complete, "current": g.current,
                                        "next": g.next, "needs": g.needs[:5]}
            if t.latched:
                problems.append(f"rollout {name}: rolled back ({t.latch_reason or 'latched'})")
        try:
            verdict = str(router.current_health().verdict)
        except Exception as e:
            verdict = "unknown"
            problems.append(f"rollout health unavailable: {type(e).__name__}")
        if verdict == "alert":
            problems.append("rollout health: alert")
        if not sup_ok:
            health = "down"
            problems.insert(0, "the supervisor is not running")
        elif problems:
            health = "degraded"
        else:
            health = "ok"
        return StationReport(cameras_up=up, cameras_total=len(active), stages=stages, health=health,
                             problems=tuple(problems), api=self._api_address())

    def _api_address(self) -> str:
        """``host:port`` of the control API this station serves ("" when none)."""
        from urllib.parse import urlsplit

        api = self.api
        if api is None:
            return ""
        try:
            return urlsplit(api.url).netloc
        except Exception:
            return ""
