"""Evidence: snapshots and clips of alerts and of the operator's own, their files, their disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.station.core import StationCore
from app.station.events import StationEvent
from app.station.port import EvidenceDisk

if TYPE_CHECKING:
    from app.domain.alerts import AlertChange
    from app.domain.evidence import Evidence, EvidenceSettings, EvidenceUsage

#: how long a webhook of a camera alert waits for the alert's snapshot (on a notification thread)
WEBHOOK_SNAPSHOT_WAIT_S = 6.0


class EvidenceMethods(StationCore):
    def evidence_settings(self) -> EvidenceSettings:
        """The ``evidence.*`` settings (read at most every 2 s); defaults before the station opened."""
        if self._parts is None:
            from app.domain.evidence import EvidenceSettings

            return EvidenceSettings.from_settings({})
        return self._parts.evidence_settings()

    def evidence_blocked(self) -> str | None:
        """Why evidence is not being written now (the disk at its free-space floor), or None."""
        return self._parts.evidence_recorder.blocked if self._parts is not None else None

    def evidence_failures(self, event_id: int) -> list[str]:
        """Why evidence of the event is missing (since this station started), e.g. the camera was down."""
        return self._parts.evidence_recorder.failures_for(event_id) if self._parts is not None else []

    def save_clip(self, camera_id: int, *, pre: float | None = None, post: float | None = None,
                  event_id: int | None = None) -> Evidence:
        """Write a clip of the camera now (pre-roll + post-roll, the settings unless given) and list it.

        Blocks for about ``post`` seconds; raises ``app.evidence.EvidenceError`` with the reason.
        """
        from app.evidence import EvidenceError

        if self.camera(camera_id) is None:
            raise EvidenceError(f"camera {camera_id} does not exist")
        return self.parts().evidence_recorder.clip(camera_id, event_id=event_id, moment="manual", pre=pre, post=post)

    def save_snapshot(self, camera_id: int, *, event_id: int | None = None) -> Evidence:
        """Store a full-resolution JPEG of the camera now (evidence, moment "manual")."""
        from app.evidence import EvidenceError

        if self.camera(camera_id) is None:
            raise EvidenceError(f"camera {camera_id} does not exist")
        return self.parts().evidence_recorder.snapshot(camera_id, event_id=event_id, moment="manual")

    def list_evidence(self, camera_id: int | None = None, limit: int = 1000) -> list[Evidence]:
        return self.parts().evidence_store.list(camera_id, limit)

    def evidence_usage(self) -> list[EvidenceUsage]:
        """Per camera: snapshots, clips, bytes, oldest and newest."""
        return self.parts().evidence_store.usage()

    def evidence_disk(self) -> EvidenceDisk:
        """The evidence folder, the bytes it holds and its disk's free space."""
        es = self.parts().evidence_store
        return EvidenceDisk(root=es.root, total_bytes=es.total_bytes(), free_bytes=es.free_space(es.root))

    def evidence_path(self, evidence: Evidence) -> Path:
        """Where one piece of evidence is on disk."""
        return self.parts().evidence_store.path_of(evidence)

    def delete_evidence(self, evidence_ids: list[int]) -> int:
        es = self.parts().evidence_store
        items = [ev for i in evidence_ids if (ev := es.get(i)) is not None]
        freed = es.delete(items)
        self.emit(StationEvent("evidence"))
        return freed

    def evidence_for_event(self, event_id: int) -> list[Evidence]:
        """Every snapshot and clip of an alert event, oldest first."""
        return self.parts().evidence_store.for_event(event_id)

    def evidence_for_events(self, event_ids: list[int]) -> dict[int, list[Evidence]]:
        return self.parts().evidence_store.for_events(event_ids)

    def event_snapshot_path(self, event_id: int, moment: str = "fired") -> Path | None:
        """The event's snapshot file (``moment`` "fired" or "resolved"), or None."""
        es = self.parts().evidence_store
        for ev in reversed(es.for_event(event_id)):
            if ev.kind == "snapshot" and ev.moment == moment:
                path = es.path_of(ev)
                return path if path.exists() else None
        return None

    def event_snapshot(self, event_id: int, moment: str = "fired") -> tuple[bytes, str] | None:
        """The event's snapshot as (bytes, content type), or None (the API's ``/snapshot``)."""
        path = self.event_snapshot_path(event_id, moment)
        if path is None:
            return None
        return path.read_bytes(), "image/png" if path.suffix == ".png" else "image/jpeg"

    def event_clip_path(self, event_id: int) -> Path | None:
        """The event's newest clip (MP4), or None (the API's ``/clip``)."""
        es = self.parts().evidence_store
        for ev in reversed(es.for_event(event_id)):
            if ev.kind == "clip":
                path = es.path_of(ev)
                return path if path.exists() else None
        return None

    def export_event(self, event_id: int, dest: Path | str) -> Path:
        """A ZIP with the event as JSON, its snapshots and clips (for handing to someone)."""
        from app.evidence.export import export_event
        from app.store.alert_events import AlertEventRepository

        parts = self.parts()
        with parts.store.uow() as uow:
            event = AlertEventRepository(uow.session).get(event_id)
        if event is None:
            raise ValueError(f"alert event {event_id} does not exist")
        return export_event(parts.evidence_store, event, Path(dest))

    def webhook_evidence(self, change: AlertChange, doc: dict[str, Any]) -> dict[str, Any]:
        """A webhook for a camera alert carries the API URLs of its snapshot and clip. It waits
        (up to 6 s, on a notification thread) for the snapshot, so the URL answers when fetched."""
        ev = change.event
        api = self.api
        if change.camera_id is None or ev is None or ev.id is None or api is None:
            return doc
        moment = "resolved" if str(change.kind) == "resolved" else "fired"
        deadline = time.monotonic() + WEBHOOK_SNAPSHOT_WAIT_S
        while self.event_snapshot_path(ev.id, moment) is None and time.monotonic() < deadline:
            if self._closing.wait(0.1):
                break
        base = f"{api.url.rstrip('/')}/api/v1/alerts/events/{ev.id}"
        return {**doc, "snapshot_url": f"{base}/snapshot", "clip_url": f"{base}/clip"}
