"""The domain-service implementation of the station's operations, plus domain-only administration."""

from app.services.admin import StationAdmin
from app.services.operations import DomainOperations
from app.services.ports import HeartbeatHistory, HeartbeatSummary, ProbeRunner, SupervisorPort
from app.services.specs import spec_for

__all__ = [
    "DomainOperations", "HeartbeatHistory", "HeartbeatSummary", "ProbeRunner", "StationAdmin",
    "SupervisorPort", "spec_for",
]
