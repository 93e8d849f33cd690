"""Core ``Table`` objects of the store's rows, for code that works with SQL statements.

The legacy implementation of the operations (``app.legacy``) writes
transaction scripts with SQLAlchemy Core against these tables; it never
touches the ORM classes in :mod:`app.store.models`. Column defaults
(timestamps, versions) declared on the rows apply to Core inserts as well.
"""

from __future__ import annotations

from sqlalchemy import Table

from app.store.models import (
    AlertEventRow,
    AlertRuleRow,
    AuditRow,
    CameraRow,
    EvidenceRow,
    MetricRollupRow,
    ProblemReportRow,
    SettingRow,
    StationSettingRow,
)

cameras: Table = CameraRow.__table__  # type: ignore[assignment]
alert_rules: Table = AlertRuleRow.__table__  # type: ignore[assignment]
alert_events: Table = AlertEventRow.__table__  # type: ignore[assignment]
audit_log: Table = AuditRow.__table__  # type: ignore[assignment]
settings: Table = SettingRow.__table__  # type: ignore[assignment]
station_settings: Table = StationSettingRow.__table__  # type: ignore[assignment]
rollout_reports: Table = ProblemReportRow.__table__  # type: ignore[assignment]
metric_rollups: Table = MetricRollupRow.__table__  # type: ignore[assignment]
evidence: Table = EvidenceRow.__table__  # type: ignore[assignment]

__all__ = ["alert_events", "alert_rules", "audit_log", "cameras", "evidence", "metric_rollups", "rollout_reports",
           "settings", "station_settings"]
