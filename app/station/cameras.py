"""The station's cameras: live status, starting and stopping them all, their administration
(not routed: added, changed and removed through the store, applied at once), files."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain import Camera
from app.domain.operations import CameraRef, CameraStatus, StopCamera
from app.station.core import StationCore

if TYPE_CHECKING:
    from app.store.yaml_io import ImportReport

log = logging.getLogger("edge_station.station")


class CameraMethods(StationCore):
    def live_status(self) -> list[CameraStatus]:
        """Every camera's state from the supervisor's snapshot: cheap, no database, not routed."""
        from app.services.operations import to_camera_status

        sup = self._supervisor_now()
        statuses = sup.statuses() if sup is not None else {}
        out = []
        for cam in self.cameras():
            assert cam.id is not None
            ws = statuses.get(cam.id)
            if ws is None and sup is not None:
                ws = sup.status(cam.id)  # a camera that never ran: the supervisor's idle status
            if ws is not None:
                out.append(to_camera_status(cam, ws))
        return out

    def preview_path(self, camera_id: int) -> Path | None:
        """The camera's shared-memory preview slot (read it with app.workerlink.preview.PreviewReader)."""
        sup = self._supervisor_now()
        return sup.preview_path(camera_id) if sup is not None else None

    def _call(self, op: str, request: Any, actor: str) -> Any:
        return self.parts().router.call(op, request, actor=actor)

    def autostart(self, *, actor: str = "station") -> None:
        """Start every active camera that is not running yet (used at open and by 'Start all')."""
        from app.supervisor import WorkerState

        sup = self._parts.supervisor if self._parts is not None else None
        for cam in self.cameras():
            if not cam.active or cam.id is None:
                continue
            st = sup.status(cam.id) if sup is not None else None
            if st is not None and st.state not in (WorkerState.STOPPED, WorkerState.FAILED):
                continue
            try:
                self._call("start_camera", CameraRef(cam.id), actor)
            except Exception as e:  # one bad camera must not keep the others from starting
                log.warning("autostart of camera %s (%s) failed: %s", cam.id, cam.name, e)

    def stop_all(self, *, actor: str = "station") -> None:
        """Stop every camera whose worker is not stopped."""
        from app.supervisor import WorkerState

        sup = self._parts.supervisor if self._parts is not None else None
        for cam in self.cameras():
            if cam.id is None:
                continue
            st = sup.status(cam.id) if sup is not None else None
            if st is not None and st.state != WorkerState.STOPPED:
                try:
                    self._call("stop_camera", StopCamera(cam.id), actor)
                except Exception as e:
                    log.warning("stop of camera %s failed: %s", cam.id, e)

    # ------------------------------------------------------------ administration (not routed)

    def list_cameras(self) -> list[Camera]:
        """The cameras as stored now (a database read; :meth:`cameras` is the loaded list)."""
        return self.parts().admin.list_cameras()

    def get_camera(self, camera_id: int) -> Camera:
        """One stored camera; ``NotFound`` when there is none."""
        return self.parts().admin.get_camera(camera_id)

    def add_camera(self, camera: Camera) -> Camera:
        """Store a new camera and apply it now (an active one starts when the station autostarts)."""
        saved = self.parts().admin.add_camera(camera)
        self._on_database_changed()
        return saved

    def update_camera(self, camera_id: int, changes: Mapping[str, Any]) -> Camera:
        """Change some fields of a camera and apply it now (a running worker restarts when needed)."""
        saved = self.parts().admin.update_camera(camera_id, changes)
        self._on_database_changed()
        return saved

    def remove_camera(self, camera_id: int, *, delete_evidence: bool = False) -> tuple[int, int]:
        """Remove a camera; its evidence is kept until retention unless ``delete_evidence``.
        Returns the (files, bytes) of evidence removed with it."""
        self.parts().admin.remove_camera(camera_id)
        removed = self.delete_camera_evidence(camera_id) if delete_evidence else (0, 0)
        self._on_database_changed()
        return removed

    def delete_camera_evidence(self, camera_id: int) -> tuple[int, int]:
        """Remove a camera's evidence now: (files, bytes)."""
        from app.station.events import StationEvent

        out = self.parts().evidence_store.delete_camera(camera_id)
        self.emit(StationEvent("evidence", camera_id))
        return out

    # ------------------------------------------------------------ cameras files

    def import_file(self, path: Path | str, *, replace: bool = False) -> ImportReport:
        from app.store.yaml_io import import_cameras, max_file_bytes, parse_cameras_file

        store = self.parts().store
        cameras = parse_cameras_file(path, max_bytes=max_file_bytes(store))
        report = import_cameras(store, cameras, replace=replace)
        self._on_database_changed()
        return report

    def import_text(self, text: str, *, replace: bool = False, filename: str = "<request>") -> ImportReport:
        """Import cameras from YAML text (the cameras file format), all or nothing."""
        from app.store.yaml_io import import_cameras, parse_cameras_text

        report = import_cameras(self.parts().store, parse_cameras_text(text, filename), replace=replace)
        self._on_database_changed()
        return report

    def export_file(self, path: Path | str, *, include_secrets: bool = False) -> int:
        from app.store.yaml_io import export_file

        return export_file(self.parts().store, path, include_secrets=include_secrets)

    def export_text(self, *, include_secrets: bool = False) -> str:
        """Every camera as a cameras file (passwords masked unless asked for)."""
        from app.store.yaml_io import export_text

        with self.parts().store.uow() as uow:
            return export_text(uow.cameras.list(), include_secrets=include_secrets)
