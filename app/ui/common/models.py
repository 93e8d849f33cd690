"""Item models over the station's live snapshot (no operations, no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.domain import mask_secrets
from app.domain.operations import CameraStatus
from app.ui.common.formatting import fmt_duration, fmt_fps, fmt_motion, view_colour, view_state
from app.ui.common.texts import QT_TRANSLATE_NOOP

#: the worker states as the window shows them (STATE_ROLE keeps the raw value)
STATE_TEXTS = (
    QT_TRANSLATE_NOOP("CameraState", "inactive"), QT_TRANSLATE_NOOP("CameraState", "stopped"),
    QT_TRANSLATE_NOOP("CameraState", "starting"), QT_TRANSLATE_NOOP("CameraState", "running"),
    QT_TRANSLATE_NOOP("CameraState", "stalled"), QT_TRANSLATE_NOOP("CameraState", "backoff"),
    QT_TRANSLATE_NOOP("CameraState", "stopping"), QT_TRANSLATE_NOOP("CameraState", "failed"),
)


def state_label(state: object) -> str:
    """A worker state in the window's language (``running`` -> ``运行中``)."""
    return QCoreApplication.translate("CameraState", str(state))


#: what the window shows for a camera (see app.ui.common.formatting.view_state)
VIEW_TEXTS = {
    "live": QT_TRANSLATE_NOOP("CameraView", "running"),
    "no_frames": QT_TRANSLATE_NOOP("CameraView", "no frames yet"),
    "source_down": QT_TRANSLATE_NOOP("CameraView", "source down"),
}


def view_label(view: str) -> str:
    """The text of a :func:`~app.ui.common.formatting.view_state` in the window's language."""
    if view in VIEW_TEXTS:
        return QCoreApplication.translate("CameraView", VIEW_TEXTS[view])
    return state_label(view)


CAMERA_ID_ROLE = Qt.ItemDataRole.UserRole + 1
STATE_ROLE = Qt.ItemDataRole.UserRole + 2
#: what a column sorts by: numbers as numbers, text case-insensitively
SORT_ROLE = Qt.ItemDataRole.UserRole + 3

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class _Row:
    status: CameraStatus
    cells: tuple[str, ...]
    tooltip: str


class CameraTableModel(QAbstractTableModel):
    """One row per camera: name, state (coloured), fps, motion, uptime, restarts, source.

    :meth:`update` takes a fresh snapshot and emits the smallest set of
    ``dataChanged`` (per row, the span of columns whose text changed), and
    row inserts/removes when cameras come and go.
    """

    COLUMNS = (QT_TRANSLATE_NOOP("CameraTableModel", "Name"), QT_TRANSLATE_NOOP("CameraTableModel", "State"),
               QT_TRANSLATE_NOOP("CameraTableModel", "FPS"), QT_TRANSLATE_NOOP("CameraTableModel", "Motion"),
               QT_TRANSLATE_NOOP("CameraTableModel", "Uptime"), QT_TRANSLATE_NOOP("CameraTableModel", "Restarts"),
               QT_TRANSLATE_NOOP("CameraTableModel", "Source"))
    COL_NAME, COL_STATE, COL_FPS, COL_MOTION, COL_UPTIME, COL_RESTARTS, COL_SOURCE = range(7)
    _NUMERIC = frozenset({COL_FPS, COL_MOTION, COL_UPTIME, COL_RESTARTS})

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []
        self._colours: dict[str, QColor] = {}
        #: number of dataChanged emissions since creation (the tests and the benchmark read it)
        self.changed_cells = 0

    # ------------------------------------------------------------ Qt API

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return QCoreApplication.translate("CameraTableModel", self.COLUMNS[section])
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[col]
        if role == CAMERA_ID_ROLE:
            return row.status.camera_id
        if role == STATE_ROLE:
            return str(row.status.state)
        if role == SORT_ROLE:
            return self._sort_key(row, col)
        if role == Qt.ItemDataRole.BackgroundRole and col == self.COL_STATE:
            return self._colour(view_state(row.status))
        if role == Qt.ItemDataRole.ForegroundRole and col == self.COL_STATE:
            return QColor("#000000")
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tooltip or None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in self._NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _sort_key(self, row: _Row, col: int) -> Any:
        st = row.status
        numbers = {self.COL_FPS: st.fps, self.COL_MOTION: st.motion, self.COL_UPTIME: st.uptime,
                   self.COL_RESTARTS: st.restarts}
        if col in numbers:
            value = numbers[col]
            return -1.0 if value is None else float(value)
        return row.cells[col].casefold()

    # ------------------------------------------------------------ snapshot

    def camera_id(self, row: int) -> int | None:
        return self._rows[row].status.camera_id if 0 <= row < len(self._rows) else None

    def status(self, camera_id: int) -> CameraStatus | None:
        for r in self._rows:
            if r.status.camera_id == camera_id:
                return r.status
        return None

    def row_of(self, camera_id: int) -> int:
        for i, r in enumerate(self._rows):
            if r.status.camera_id == camera_id:
                return i
        return -1

    def statuses(self) -> list[CameraStatus]:
        return [r.status for r in self._rows]

    def update(self, statuses: Sequence[CameraStatus], sources: Mapping[int, str]) -> None:
        new_rows = [self._make_row(s, sources.get(s.camera_id, "")) for s in statuses]
        old_ids = [r.status.camera_id for r in self._rows]
        new_ids = [r.status.camera_id for r in new_rows]
        if old_ids != new_ids:
            self._apply_membership(old_ids, new_ids, new_rows)
            return
        for i, (old, new) in enumerate(zip(self._rows, new_rows, strict=True)):
            self._rows[i] = new
            changed = [c for c in range(len(self.COLUMNS)) if old.cells[c] != new.cells[c]]
            if view_state(old.status) != view_state(new.status) and self.COL_STATE not in changed:
                changed.append(self.COL_STATE)
            if old.tooltip != new.tooltip:
                changed = list(range(len(self.COLUMNS)))
            if changed:
                self.changed_cells += max(changed) - min(changed) + 1
                self.dataChanged.emit(self.index(i, min(changed)), self.index(i, max(changed)))

    def _apply_membership(self, old_ids: list[int], new_ids: list[int], new_rows: list[_Row]) -> None:
        new_set = set(new_ids)
        # Remove rows that are gone (from the bottom so indexes stay right).
        for i in range(len(old_ids) - 1, -1, -1):
            if old_ids[i] not in new_set:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                del old_ids[i]
                self.endRemoveRows()
        kept = [i for i in new_ids if i in set(old_ids)]
        if kept != old_ids:  # reordered: a reset is the honest signal
            self.beginResetModel()
            self._rows = new_rows
            self.endResetModel()
            return
        # Insert new rows where they belong, then refresh the kept ones.
        by_id = {r.status.camera_id: r for r in new_rows}
        for pos, cid in enumerate(new_ids):
            if pos >= len(self._rows) or self._rows[pos].status.camera_id != cid:
                self.beginInsertRows(QModelIndex(), pos, pos)
                self._rows.insert(pos, by_id[cid])
                self.endInsertRows()
        self.update([r.status for r in new_rows], {r.status.camera_id: r.cells[self.COL_SOURCE] for r in new_rows})

    # ------------------------------------------------------------ helpers

    def _colour(self, state: str) -> QColor:
        c = self._colours.get(state)
        if c is None:
            c = self._colours[state] = QColor(view_colour(state))
        return c

    @staticmethod
    def _make_row(s: CameraStatus, source: str) -> _Row:
        state = view_label(view_state(s))
        cells = (
            s.name,
            state,
            fmt_fps(s.fps),
            fmt_motion(s.motion, s.motion_active),
            fmt_duration(s.uptime),
            str(s.restarts),
            mask_secrets(source),
        )
        tips = []
        if s.error:
            tips.append(QCoreApplication.translate("CameraTableModel", "error: {error}").format(error=s.error))
        if s.last_exit is not None:
            tips.append(QCoreApplication.translate("CameraTableModel", "last exit: {reason}").format(
                reason=s.last_exit.reason))
        if s.pid:
            tips.append(QCoreApplication.translate("CameraTableModel", "pid {pid}").format(pid=s.pid))
        return _Row(s, cells, "\n".join(tips))


class StateDelegate(QStyledItemDelegate):
    """Keeps a state cell's colour visible when its row is selected (a frame marks the selection)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        colour = index.data(Qt.ItemDataRole.BackgroundRole)
        if not (option.state & QStyle.StateFlag.State_Selected) or not isinstance(colour, QColor):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.state &= ~QStyle.StateFlag.State_Selected
        opt.backgroundBrush = QBrush(colour)
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        painter.save()
        painter.setPen(QPen(option.palette.highlight().color(), 2))
        painter.drawRect(option.rect.adjusted(1, 1, -1, -1))
        painter.restore()
