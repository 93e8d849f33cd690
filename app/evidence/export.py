"""Export of one alert event for handing to someone: a ZIP with the event as JSON, its
snapshots and its clips."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.alerts import AlertEvent
from app.domain.evidence import Evidence
from app.evidence.store import EvidenceStore

__all__ = ["event_document", "export_event"]


def event_document(event: AlertEvent, evidence: list[Evidence]) -> dict[str, Any]:
    def iso(dt: datetime | None) -> str | None:
        return dt.isoformat() if dt is not None else None

    return {
        "event": {
            "id": event.id, "rule": event.rule_name, "rule_id": event.rule_id, "severity": str(event.severity),
            "state": str(event.state), "camera_id": event.camera_id, "subject": event.subject,
            "value": event.value, "threshold": event.threshold, "message": event.message,
            "started_at": iso(event.started_at), "fired_at": iso(event.fired_at),
            "resolved_at": iso(event.resolved_at), "acknowledged_by": event.acknowledged_by,
            "acknowledged_at": iso(event.acknowledged_at),
        },
        "evidence": [
            {"file": Path(e.path).name, "kind": e.kind, "moment": e.moment, "bytes": e.bytes,
             "created_at": iso(e.created_at), "camera": e.camera_name, "width": e.width, "height": e.height,
             "duration_s": e.duration, "preroll_s": e.preroll, "codec": e.codec, "reencoded": e.reencoded,
             "note": e.note}
            for e in evidence
        ],
    }


def export_event(store: EvidenceStore, event: AlertEvent, dest: Path) -> Path:
    """Write ``dest`` (a .zip; a directory gets ``event-<id>.zip`` inside it). Written under a
    temporary name and renamed, so a failed export leaves nothing behind."""
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"event-{event.id}.zip"
    if dest.suffix.lower() != ".zip":
        raise ValueError(f"{dest}: the export is a ZIP file; name it *.zip or give a directory")
    evidence = store.for_event(event.id) if event.id is not None else []
    part = dest.with_name(dest.name + ".part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(f"event-{event.id}.json", json.dumps(event_document(event, evidence), indent=2) + "\n")
            for e in evidence:
                src = store.path_of(e)
                if src.exists():
                    zf.write(src, arcname=Path(e.path).name)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest
