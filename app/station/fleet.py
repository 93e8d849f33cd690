"""The station in its fleet: it registers when it opens (before any camera starts, so a name
clash refuses it before it does anything), heartbeats its status on a thread of its own, and
marks itself stopped when it closes (app/fleet/member.py; docs/fleet.md)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from app.domain.fleet import StationReport
from app.station.core import StationCore

if TYPE_CHECKING:
    from app.fleet.member import FleetMember
    from app.fleet.view import FleetView
    from app.store import Store

log = logging.getLogger("edge_station.station")

ENV_HEARTBEAT_INTERVAL = "EDGE_STATION_HEARTBEAT_INTERVAL"

_BAD_STATES = {"failed": "worker failed", "backoff": "worker restarting after a failure", "stalled": "stream stalled"}


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
                             interval=interval, gone_after=gone_after)
        member.register()
        self.fleet = member
        from app.fleet.view import FleetView
        from app.store.db import redact_url

        # read as often as the station heartbeats; judged by the fleet's gone threshold, as `fleet status` does
        self._fleet_view = FleetView(registry, interval=interval, where=redact_url(self.paths.db_url),
                                     station_id=member.station_id, gone_after=self.options.gone_after)
        return member

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
        for name in settings.tracks:
            t = settings.track(name)
            stages[name] = {"stage": t.stage, "percent": t.target_percent, "use_domain": t.use_domain,
                            "latched": t.latched}
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
