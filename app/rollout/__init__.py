"""Rollout: router, bucketing, fallback, measurement, health gates, rollback, verification.

Public names the station wires (see ``docs/rollout.md`` for the procedure):

* :class:`Router` - ``Router(legacy, domain, store, keys_provider=None, env=os.environ, ...)``
* :class:`RolloutControl` - per track: settings/advance/rollback/resume/reports on the store (CLI, dialog)
* :class:`RolloutSettings` (``locked_fields()``), :class:`Thresholds`
* :class:`Force`, :class:`Decision`
* :func:`run_verification` (``app.rollout.verify``), :func:`add_cli` (``app.rollout.cli``)
"""

from app.rollout.auditlog import AuditLog
from app.rollout.control import RolloutControl
from app.rollout.decision import Decision, Force, routing_key, store_keys_provider
from app.rollout.errors import (
    GateRefused,
    RolloutError,
    RolloutLocked,
    RolloutSettingsError,
    VerificationError,
)
from app.rollout.health import Checklist, GateResult, HealthVerdict, Verdict
from app.rollout.metrics import RolloutMetrics, WindowStats
from app.rollout.router import RolloutSnapshot, Router
from app.rollout.settings import STAGES, TRACK_NAMES, RolloutSettings, Thresholds, TrackSettings

__all__ = [
    "STAGES", "TRACK_NAMES", "AuditLog", "Checklist", "Decision", "Force", "GateRefused", "GateResult", "HealthVerdict",
    "RolloutControl", "RolloutError", "RolloutLocked", "RolloutMetrics", "RolloutSettings",
    "RolloutSettingsError", "RolloutSnapshot", "Router", "Thresholds", "TrackSettings", "Verdict", "VerificationError",
    "WindowStats", "routing_key", "store_keys_provider",
]
