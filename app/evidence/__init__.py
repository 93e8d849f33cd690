"""Evidence of camera alerts: the store (files + rows), the recorder that takes snapshots and
clips when alerts fire and resolve, retention, and export. Qt-free.

See ``docs/evidence.md`` for what an operator sees and the settings.
"""

from app.evidence.recorder import EvidenceError, EvidenceFeed, EvidenceRecorder
from app.evidence.store import DiskFloorReached, EvidenceStore, RetentionReport, disk_free_bytes

__all__ = [
    "DiskFloorReached", "EvidenceError", "EvidenceFeed", "EvidenceRecorder", "EvidenceStore", "RetentionReport",
    "disk_free_bytes",
]
