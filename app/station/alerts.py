"""Alert rules (administration, not routed) and alerts: the engine's live view and the stored events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.station.core import StationCore

if TYPE_CHECKING:
    from app.domain.alerts import AlertEvent, AlertStatus
    from app.domain.rules import AlertRule


class AlertMethods(StationCore):
    # ------------------------------------------------------------ rules

    def list_rules(self, *, via: str = "domain") -> list[AlertRule]:
        """Every alert rule, read by the ``domain`` (the store) or the ``legacy`` implementation."""
        parts = self.parts()
        if via == "legacy":
            return parts.legacy_ops.list_rules()
        if via != "domain":
            raise ValueError(f"unknown path {via!r}: give 'domain' or 'legacy'")
        return parts.admin.list_rules()

    def get_rule(self, rule_id: int) -> AlertRule:
        return self.parts().admin.get_rule(rule_id)

    def set_rule_enabled(self, rule_id: int, enabled: bool) -> AlertRule:
        """Enable or disable a rule (a real change bumps its version); the alert engine reloads."""
        rule = self.parts().admin.set_rule_enabled(rule_id, enabled)
        self.reload_rules()
        return rule

    def delete_rule(self, rule_id: int) -> None:
        self.parts().admin.delete_rule(rule_id)
        self.reload_rules()

    # ------------------------------------------------------------ the engine's live view

    def alerts_running(self) -> bool:
        return self._parts is not None

    def alert_statuses(self) -> list[AlertStatus]:
        """The active alert instances (pending and firing)."""
        return self._parts.alerts.statuses() if self._parts is not None else []

    def firing_alerts(self) -> list[AlertStatus]:
        return self._parts.alerts.firing() if self._parts is not None else []

    def alert_history(self, limit: int = 200) -> list[AlertEvent]:
        return self._parts.alerts.history(limit) if self._parts is not None else []

    def loaded_rules(self) -> list[AlertRule]:
        """The rules the alert engine evaluates now."""
        return self._parts.alerts.rules() if self._parts is not None else []

    def acknowledge_alert(self, event_id: int, by: str) -> AlertEvent:
        """Acknowledge a stored alert event (its repeats stop); the first acknowledgement stays."""
        if self._parts is None:
            from app.domain.errors import Unavailable

            raise Unavailable("the alert engine is not running")
        return self._parts.alerts.acknowledge(event_id, by)

    # ------------------------------------------------------------ stored events

    def alert_events(self, limit: int = 200, *, rule_id: int | None = None, camera_id: int | None = None,
                     unacknowledged: bool = False, active: bool | None = None) -> list[AlertEvent]:
        """Stored alert events, newest first, filtered."""
        from app.store.alert_events import AlertEventRepository

        with self.parts().store.uow() as uow:
            events = AlertEventRepository(uow.session).recent(
                limit if active is None else max(limit, 5000), rule_id=rule_id, camera_id=camera_id,
                unacknowledged=unacknowledged)
        if active is not None:
            events = [e for e in events if e.active == active][:limit]
        return events

    def alert_event(self, event_id: int) -> AlertEvent:
        from app.domain.errors import NotFound
        from app.store.alert_events import AlertEventRepository

        with self.parts().store.uow() as uow:
            ev = AlertEventRepository(uow.session).get(event_id)
        if ev is None:
            raise NotFound(f"alert event {event_id} does not exist", details={"event_id": event_id})
        return ev
