"""A form dialog with inline problems and Save / Cancel (the camera and the rule dialogs).

Save is enabled only while the form reports no problems and nothing is being
saved; the save runs on the task runner; a refusal is shown inside the form
(field by field when the station says which field), and the dialog stays open.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.domain import OperationError, ValidationError
from app.domain.errors import FieldError
from app.station.port import StationPort
from app.ui.common.tasks import TaskRunner
from app.ui.common.texts import QT_TRANSLATE_NOOP

#: the domain's field messages as the window shows them (in its language)
FIELD_MESSAGES = (
    QT_TRANSLATE_NOOP("FieldError", "must not be empty"),
    QT_TRANSLATE_NOOP("FieldError", "must be at most 64 characters"),
    QT_TRANSLATE_NOOP("FieldError", "must be at most 100 characters"),
    QT_TRANSLATE_NOOP("FieldError", "may contain letters, digits, spaces and . - _ ( ) # /"),
    QT_TRANSLATE_NOOP("FieldError", "must be a finite number"),
    QT_TRANSLATE_NOOP("FieldError", "must be between 0 and 1 (exclusive)"),
    QT_TRANSLATE_NOOP("FieldError", "must be greater than 0 and at most 240"),
    QT_TRANSLATE_NOOP("FieldError", "must be greater than 0 and at most 3600 seconds"),
    QT_TRANSLATE_NOOP("FieldError", "is required when the target is one camera"),
    QT_TRANSLATE_NOOP("FieldError", "is only allowed when the target is one camera"),
    QT_TRANSLATE_NOOP("FieldError", "must be an http:// or https:// URL with a host"),
)


def field_message(message: str) -> str:
    return QCoreApplication.translate("FieldError", message)


class InlineProblems:
    """Mixin for a form widget: a label under each field (``errors``) and one for the rest
    (``general_error``), filled from a list of :class:`FieldError`.

    Messages show once the user has edited the form (or the station refused it), not on a
    form just opened; the message line keeps
    its room when empty, so the fields below never move.
    """

    errors: dict[str, QLabel]
    general_error: QLabel

    def touch_on_edit(self, widget: QWidget, key: str) -> None:
        """Show ``key``'s problems after ``widget`` was first edited."""
        self.__dict__["_touched_tracking"] = True
        for name in ("textChanged", "valueChanged", "currentIndexChanged", "toggled"):
            signal = getattr(widget, name, None)
            if signal is not None:
                signal.connect(lambda *_a, k=key: self._touch(k))
                return

    def _touch(self, key: str) -> None:
        touched = self.__dict__.setdefault("_touched", set())
        if key not in touched:
            touched.add(key)
            self.show_problems(getattr(self, "problems", []), getattr(self, "_general", ""))

    def reveal_problems(self) -> None:
        """Show every problem (a save was tried, or the station answered)."""
        self.__dict__["_reveal"] = True
        self.show_problems(getattr(self, "problems", []), getattr(self, "_general", ""))

    def _shown(self, key: str) -> bool:
        # Once the user has edited the form, every message shows (a target set to "one camera"
        # makes the camera field's problem); a form just opened shows none yet.
        return bool(self.__dict__.get("_reveal")) or bool(self.__dict__.get("_touched")) \
            or "_touched_tracking" not in self.__dict__

    def _problem_key(self, field: str) -> str:
        """The ``errors`` key a problem's field belongs to (a list item's field to its list, say)."""
        return field

    def show_problems(self, problems: list[FieldError], general: str = "") -> None:
        self.__dict__["_general"] = general
        if general:
            self.__dict__["_reveal"] = True  # the station answered: show it all
        by_field: dict[str, list[str]] = {}
        for p in problems:
            key = self._problem_key(p.field)
            if key in self.errors:
                if self._shown(key):
                    by_field.setdefault(key, []).append(field_message(p.message))
            elif self._shown(key):
                general = "; ".join(filter(None, [general, str(p)]))
        for key, label in self.errors.items():
            msgs = by_field.get(key)
            label.setText("; ".join(msgs) if msgs else "")
            sp = label.sizePolicy()
            if not sp.retainSizeWhenHidden():  # an empty message line keeps its room: nothing moves
                sp.setRetainSizeWhenHidden(True)
                label.setSizePolicy(sp)
            label.setVisible(bool(msgs))
        self.general_error.setText(general)
        self.general_error.setVisible(bool(general))

    def error_text(self, key: str) -> str:
        label = self.errors[key]
        return label.text() if not label.isHidden() else ""


class FormDialog(QDialog):
    """Subclasses call :meth:`_set_form` once, then :meth:`_submit` from their ``save``.

    The form needs ``problems`` (a list; empty when it can be saved), a ``changed``
    signal and ``show_problems(problems: list[FieldError], general: str = "")``.
    """

    saved = Signal(object)

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station, self.tasks = station, tasks
        self._saving = False

    def _set_form(self, form: Any, *below: QWidget) -> None:
        self.form = form
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # grow with inline messages
        lay.addWidget(form)
        for w in below:
            lay.addWidget(w)
        lay.addWidget(self.buttons)
        form.changed.connect(self._update_save)
        self._update_save()
        self.resize(560, self.sizeHint().height())

    @property
    def save_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def _update_save(self) -> None:
        self.save_button.setEnabled(not self.form.problems and not self._saving)

    def save(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _submit(self, label: str, fn: Any, *args: Any) -> None:
        self._saving = True
        self._update_save()
        self.tasks.submit(label, fn, *args, on_ok=self._saved, on_error=self._failed, owner=self)

    def _saved_value(self, result: Any) -> Any:
        """What ``saved`` carries for the operation's result (the result itself by default)."""
        return result

    def _saved(self, result: Any) -> None:
        self._saving = False
        self.saved.emit(self._saved_value(result))
        self.accept()

    def _problems_for(self, err: BaseException) -> tuple[list[FieldError], str]:
        """(field problems, general message) to show for a refused save."""
        if isinstance(err, ValidationError):
            return list(err.errors), ""
        if isinstance(err, OperationError):
            return [], f"{err} [{err.code}]"
        return [], f"could not save: {type(err).__name__}: {err}"

    def _failed(self, err: BaseException) -> None:
        self._saving = False
        reveal = getattr(self.form, "reveal_problems", None)
        if reveal is not None:
            self.form.__dict__["_reveal"] = True  # the station's answer is shown whatever was edited
        self.form.show_problems(*self._problems_for(err))
        self._update_save()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not self.save_button.isEnabled():
            return
        super().keyPressEvent(event)
