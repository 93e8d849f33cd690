"""SQLAlchemy rows. They never leave ``app.store``: repositories map them to domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class CameraRow(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    max_fps: Mapped[float | None] = mapped_column(Float)
    loop: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    motion_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    motion_threshold: Mapped[float] = mapped_column(Float, nullable=False, default=0.02)
    motion_warmup: Mapped[int] = mapped_column(Integer, nullable=False, default=10)
    stall_timeout: Mapped[float] = mapped_column(Float, nullable=False, default=10.0)
    location: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class AlertRuleRow(Base):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    target: Mapped[str] = mapped_column(String(20), nullable=False)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(40), nullable=False)
    comparator: Mapped[str] = mapped_column(String(2), nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    for_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    keep_firing_for: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    severity: Mapped[str] = mapped_column(String(10), nullable=False)
    cooldown: Mapped[float] = mapped_column(Float, nullable=False, default=300.0)
    repeat_interval: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    no_data: Mapped[str] = mapped_column(String(10), nullable=False)
    schedule: Mapped[str] = mapped_column(Text, nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    notify: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    template: Mapped[str | None] = mapped_column(String(40))
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )

    # Optimistic concurrency: an UPDATE only matches the version it read, so two writers racing
    # on one rule cannot lose an update (the loser gets StaleDataError, which the unit of work
    # raises as the domain's StaleWrite -> "conflict").
    # The services set the new version themselves.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class AlertEventRow(Base):
    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_state", "state"), Index("ix_alert_events_started", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(100), nullable=False)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    severity: Mapped[str] = mapped_column(String(10), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)  # firing | resolved
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)


# Names are unique case-insensitively (``app.domain.name_key``); migration 0008 adds these.
Index("uq_cameras_name_ci", func.lower(CameraRow.name), unique=True)
Index("uq_alert_rules_name_ci", func.lower(AlertRuleRow.name), unique=True)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    op: Mapped[str] = mapped_column(String(60), nullable=False)
    key: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    path: Mapped[str] = mapped_column(String(10), nullable=False, default="")
    outcome: Mapped[str] = mapped_column(String(40), nullable=False)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    fallback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    actor: Mapped[str] = mapped_column(String(80), nullable=False, default="")
    reason: Mapped[str] = mapped_column(String(80), nullable=False, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)


class ProblemReportRow(Base):
    """An operator's problem report against a rollout track's stage (open until resolved)."""

    __tablename__ = "rollout_reports"
    __table_args__ = (Index("ix_rollout_reports_track_open", "track", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    track: Mapped[str] = mapped_column(String(20), nullable=False)
    stage: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    operator: Mapped[str] = mapped_column(String(80), nullable=False, default="")
    camera_id: Mapped[int | None] = mapped_column(Integer)
    rule_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str] = mapped_column(String(80), nullable=False, default="")
    resolution: Mapped[str] = mapped_column(Text, nullable=False, default="")
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)


class SettingRow(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class StationSettingRow(Base):
    """A setting of one station (``settings`` holds the fleet's: ``app/store/scope.py`` says which is which)."""

    __tablename__ = "station_settings"

    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class MetricRollupRow(Base):
    __tablename__ = "metric_rollups"
    __table_args__ = (
        UniqueConstraint("station_id", "series", "labels", "minute", name="uq_rollup_series_minute"),
        Index("ix_rollup_minute", "minute"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_id: Mapped[str | None] = mapped_column(String(36))
    series: Mapped[str] = mapped_column(String(80), nullable=False)
    labels: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    minute: Mapped[int] = mapped_column(Integer, nullable=False)  # unix time // 60
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    sum: Mapped[float] = mapped_column(Float, nullable=False)
    min: Mapped[float] = mapped_column(Float, nullable=False)
    max: Mapped[float] = mapped_column(Float, nullable=False)
    last: Mapped[float] = mapped_column(Float, nullable=False)


class EvidenceRow(Base):
    """One evidence file (snapshot or clip) in the data dir's evidence store.

    ``camera_id`` is not a foreign key: evidence may outlive its camera (kept until
    retention removes it), so the camera's name is kept with it.
    """

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_event", "event_id"),
        Index("ix_evidence_camera", "camera_id"),
        Index("ix_evidence_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("alert_events.id", ondelete="SET NULL"))
    camera_id: Mapped[int | None] = mapped_column(Integer)
    camera_name: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # snapshot | clip
    moment: Mapped[str] = mapped_column(String(10), nullable=False)  # fired | resolved | manual
    path: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    bytes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    preroll: Mapped[float | None] = mapped_column(Float)
    codec: Mapped[str] = mapped_column(String(20), nullable=False, default="")
    reencoded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)  # owner (app/store/ownership.py)


class StationRow(Base):
    """One station of the fleet sharing this database (a SQLite station is a fleet of one).

    ``id`` is the station's stable id (kept in its data dir), so a rename keeps it.
    ``heartbeat_at`` is the database server's time of the last heartbeat; ``station_clock_at``
    the station's own clock at that moment, kept only to report the skew (app/domain/fleet.py).
    """

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    name_key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    state: Mapped[str] = mapped_column(String(10), nullable=False)  # running | stopped | replaced
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    station_clock_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cameras_up: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cameras_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    stages: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    health: Mapped[str] = mapped_column(String(20), nullable=False, default="unknown")
    problems: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    api_address: Mapped[str] = mapped_column(String(255), nullable=False, default="")
