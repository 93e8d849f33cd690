"""The window's camera operations: start/stop/restart/activate, add/edit/remove, per-camera dialogs,
clips, import/export and start/stop all.

Every call runs on the window's :class:`~app.ui.common.tasks.TaskRunner`; the outcome shows in the
window's status bar and on its ``operationFinished`` signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QFileDialog, QMessageBox, QProgressDialog, QWidget

from app.domain import OperationError
from app.domain.operations import CameraRef, StopCamera
from app.station.port import StationPort
from app.ui.common.ops import ACTOR, operation
from app.ui.window.camera_dialog import CameraDialog, camera_template

if TYPE_CHECKING:
    from app.ui.window.main_window import MainWindow

log = logging.getLogger("edge_station.ui")


def describe_error(err: BaseException) -> str:
    """One line for the status bar: the operation's message and its stable code."""
    if isinstance(err, OperationError):
        return f"{err} [{err.code}]"
    return f"{type(err).__name__}: {err}"


class CameraActions(QObject):
    """What the operator does to cameras from the window (menus, toolbar, context menus, shortcuts)."""

    def __init__(self, station: StationPort, window: MainWindow):
        super().__init__(window)
        self.station = station
        self.window = window
        self.tasks = window.tasks

    def _status(self, text: str, ms: int = 0) -> None:
        self.window.statusBar().showMessage(text, ms)

    def run_operation(self, label: str, fn: Callable[..., Any], *args: Any,
                      on_ok: Callable[[Any], None] | None = None) -> None:
        """Run one station call off the GUI thread; report the outcome in the status bar."""
        self._status(f"{label}…")

        def ok(result: Any) -> None:
            self._status(self.tr("{label}: done").format(label=label), 4000)
            self.window.schedule_refresh()
            if on_ok is not None:
                on_ok(result)
            self.window.operationFinished.emit(label, True, "")

        def failed(err: BaseException) -> None:
            msg = f"{label} failed: {describe_error(err)}"
            self._status(msg, 10000)
            if not isinstance(err, OperationError):
                log.error("%s", msg, exc_info=err)
            self.window.schedule_refresh()
            self.window.operationFinished.emit(label, False, describe_error(err))

        self.tasks.submit(label, fn, *args, on_ok=ok, on_error=failed)

    def name(self, cid: int) -> str:
        """The camera's name as the table shows it (its id while the table does not know it)."""
        s = self.window.model.status(cid)
        return s.name if s else self.tr("camera {id}").format(id=cid)

    def start_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Start {0}").format(self.name(cid)), operation(self.station, "start_camera"), CameraRef(cid))

    def stop_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Stop {0}").format(self.name(cid)), operation(self.station, "stop_camera"), StopCamera(cid))

    def restart_camera(self, cid: int) -> None:
        self.run_operation(self.tr("Restart {0}").format(self.name(cid)), operation(self.station, "restart_camera"), CameraRef(cid))

    def start_selected(self) -> None:
        for cid in self.window.selected_ids():
            self.start_camera(cid)

    def stop_selected(self) -> None:
        for cid in self.window.selected_ids():
            self.stop_camera(cid)

    def restart_selected(self) -> None:
        for cid in self.window.selected_ids():
            self.restart_camera(cid)

    def activate_selected(self) -> None:
        for cid in self.window.selected_ids():
            self.run_operation(self.tr("Activate {0}").format(self.name(cid)), operation(self.station, "activate_camera"), CameraRef(cid),
                               on_ok=lambda _r: self.reload_cameras_soon())

    def deactivate_selected(self) -> None:
        for cid in self.window.selected_ids():
            self.run_operation(self.tr("Deactivate {0}").format(self.name(cid)), operation(self.station, "deactivate_camera"),
                               CameraRef(cid), on_ok=lambda _r: self.reload_cameras_soon())

    def start_all(self) -> None:
        self.run_operation(self.tr("Start all"), lambda: self.station.autostart(actor=ACTOR))

    def stop_all(self) -> None:
        self.run_operation(self.tr("Stop all"), lambda: self.station.stop_all(actor=ACTOR))

    # ------------------------------------------------------------ camera administration

    def add_camera_dialog(self) -> CameraDialog:
        dlg = CameraDialog(self.station, self.tasks, None, self.window, template=camera_template(self.window.camera_defaults))
        dlg.saved.connect(lambda cam: self._camera_saved(cam, self.tr("Camera {name} added")))
        dlg.open()
        return dlg

    def edit_camera_dialog(self, camera_id: int) -> CameraDialog | None:
        cam = self.station.camera(camera_id)
        if cam is None:
            self._status(self.tr("camera {camera_id} no longer exists").format(camera_id=camera_id), 5000)
            return None
        dlg = CameraDialog(self.station, self.tasks, cam, self.window)
        dlg.saved.connect(lambda c: self._camera_saved(c, self.tr("Camera {name} saved")))
        dlg.open()
        return dlg

    def edit_selected_dialog(self) -> CameraDialog | None:
        ids = self.window.selected_ids()
        return self.edit_camera_dialog(ids[0]) if ids else None

    def _camera_saved(self, cam: Any, what: str) -> None:
        self._status(what.format(name=cam.name), 5000)
        self.window.select_after_refresh(getattr(cam, "id", None))  # the new or edited camera becomes the selection
        self.reload_cameras_soon()

    def reload_cameras_soon(self) -> None:
        """Ask the station to re-read its cameras; the table follows (nothing when the window is closing:
        an answer that arrives as it closes, a removal's say, has no table to refresh)."""
        if self.tasks.closed:
            return
        self.tasks.submit("reload cameras", self.station.reload_cameras,
                          on_ok=lambda _r: self.window.schedule_refresh(), quiet=True)

    def remove_selected(self) -> None:
        self.remove_cameras(self.window.selected_ids(), confirm=True)

    def remove_cameras(self, camera_ids: list[int], *, confirm: bool = True) -> None:
        """Remove cameras (a running one is stopped first)."""
        if not camera_ids:
            return
        names = ", ".join(self.name(c) for c in camera_ids)
        delete_evidence = False
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Question, self.tr("Remove cameras"), self.tr("Remove {names}?\nRunning cameras are stopped first. Their alert rules are removed with them.").format(names=names),
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.window)
            evidence_box = QCheckBox(self.tr("Also delete their snapshots and clips now (otherwise they are kept until retention removes them)"))
            box.setCheckBox(evidence_box)
            self.window.remove_prompt = box
            answer = box.exec()
            self.window.remove_prompt = None
            if answer != QMessageBox.StandardButton.Yes:
                return
            delete_evidence = evidence_box.isChecked()

        def work() -> int:
            for cid in camera_ids:
                st = self.window.model.status(cid)
                if st is not None and st.state.is_live:
                    operation(self.station, "stop_camera")(StopCamera(cid))
                self.station.remove_camera(cid, delete_evidence=delete_evidence)
            return len(camera_ids)

        self.run_operation(self.tr("Remove {names}").format(names=names), work, on_ok=lambda _n: self.reload_cameras_soon())

    def save_clip_selected(self) -> None:
        """Record a clip of the selected camera (pre-roll + post-roll); it is listed on the Evidence page."""
        ids = self.window.selected_ids()
        if not ids:
            return
        cid = ids[0]
        name = self.name(cid)
        self._status(self.tr("Recording a clip of {name}…").format(name=name), 15000)

        def ok(ev: Any) -> None:
            self._status(self.tr("Saved a {d:.1f} s clip of {name} (Evidence page)").format(
                d=ev.duration or 0.0, name=name), 8000)

        def failed(err: BaseException) -> None:
            self._status(self.tr("No clip of {name}: {err}").format(name=name, err=err), 10000)

        self.tasks.submit(f"save clip of {name}", self.station.save_clip, cid, on_ok=ok, on_error=failed)

    def per_camera_dialog(self, cls: Callable[..., QDialog]) -> QWidget | None:
        """The dialog ``cls`` for the selected camera (none when nothing is selected)."""
        ids = self.window.selected_ids()
        if not ids:
            return None
        return self.open_camera_dialog(cls, ids[0])

    def open_camera_dialog(self, cls: Callable[..., QDialog], camera_id: int) -> QWidget:
        dlg = cls(self.station, self.tasks, camera_id, self.name(camera_id), self.window)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    # ------------------------------------------------------------ import / export

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, self.tr("Import cameras"), "", self.tr("Cameras (*.yaml *.yml);;All files (*)"))
        if not path:
            return
        replace = QMessageBox.question(
            self.window, self.tr("Import cameras"), self.tr("Remove the cameras that are not in the file?"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        self.import_cameras(Path(path), replace=replace)

    def import_cameras(self, path: Path, *, replace: bool = False) -> QProgressDialog:
        """Validate the whole file and apply it in one transaction, with a progress dialog."""
        w = self.window
        progress = QProgressDialog(self.tr("Importing {name}: checking every camera, then applying…").format(name=path.name),
                                   "", 0, 0, w)
        progress.setWindowTitle(self.tr("Import cameras"))
        progress.setCancelButton(None)  # one transaction: it cannot stop half-way
        progress.setMinimumDuration(0)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.show()
        w.import_progress = progress

        def ok(report: Any) -> None:
            progress.setRange(0, 1)
            progress.setValue(1)
            progress.close()
            summary = report.summary() if hasattr(report, "summary") else str(report)
            w.last_message = self.tr("Imported {name}: {summary}").format(name=path.name, summary=summary)
            self._status(w.last_message, 10000)
            w.schedule_refresh()
            w.operationFinished.emit(self.tr("Import {name}").format(name=path.name), True, summary)

        def failed(err: BaseException) -> None:
            progress.close()
            problems = getattr(err, "problems", None)
            text = "\n".join(problems) if problems else describe_error(err)
            w.last_message = self.tr("Import of {name} failed; nothing was changed.\n{text}").format(
                name=path.name, text=text)
            self._status(self.tr("Import of {name} failed: {0}").format(text.splitlines()[0], name=path.name), 15000)
            w.show_message(self.tr("Import failed"), w.last_message, QMessageBox.Icon.Warning)
            w.operationFinished.emit(self.tr("Import {name}").format(name=path.name), False, text)

        self.tasks.submit(f"Import {path.name}", lambda: self.station.import_file(path, replace=replace),
                          on_ok=ok, on_error=failed)
        return progress

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, self.tr("Export cameras"), "cameras.yaml", self.tr("Cameras (*.yaml *.yml)"))
        if not path:
            return
        secrets = QMessageBox.question(
            self.window, self.tr("Export cameras"), self.tr("Write passwords in source URLs in clear text?\n(No masks them as ***.)"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        self.export_cameras(Path(path), include_secrets=secrets)

    def export_cameras(self, path: Path, *, include_secrets: bool = False) -> None:
        def work() -> int:
            return self.station.export_file(path, include_secrets=include_secrets)

        masked = "" if include_secrets else self.tr(" (passwords masked)")
        self.run_operation(self.tr("Export to {name}").format(name=path.name), work,
                           on_ok=lambda n: self._status(
                               self.tr("Exported {n} cameras to {path}{masked}").format(n=n, path=path, masked=masked), 10000))
