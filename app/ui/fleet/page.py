"""The Fleet page: every station on this station's database, as ``edge-station fleet`` shows them.

The window shows the page only while the database holds more than one station (it appears when a
second station registers). The station's :class:`~app.fleet.view.FleetView` reads the registry on
a thread of its own at the heartbeat interval; :class:`FleetBridge` brings each snapshot to the GUI
thread as a queued signal, and the page shows it: a summary line (the counts of ``fleet status``'s
first line), the rest of ``fleet status`` under it, and a table of the stations (the cells of
``fleet stations``; state, heartbeat and health in the window's language). Gone stations are red,
stopped and replaced ones grey, this station in bold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.domain.fleet import Liveness
from app.fleet.cli import STATION_COLUMNS, age_parts
from app.fleet.view import STATE_ORDER, FleetSnapshot, FleetStation, FleetView
from app.ui.common.texts import QT_TRANSLATE_NOOP

log = logging.getLogger("edge_station.ui.fleet")

__all__ = ["FleetBridge", "FleetPage", "FleetTableModel", "liveness_label", "summary_text"]

_Index = QModelIndex | QPersistentModelIndex

#: the stations' states and health verdicts, as the window says them
LIVENESS_TEXTS = (
    QT_TRANSLATE_NOOP("FleetText", "up"), QT_TRANSLATE_NOOP("FleetText", "gone"),
    QT_TRANSLATE_NOOP("FleetText", "stopped"), QT_TRANSLATE_NOOP("FleetText", "replaced"),
)
HEALTH_TEXTS = (
    QT_TRANSLATE_NOOP("FleetText", "ok"), QT_TRANSLATE_NOOP("FleetText", "degraded"),
    QT_TRANSLATE_NOOP("FleetText", "down"), QT_TRANSLATE_NOOP("FleetText", "unknown"),
)
#: "{n} up", "{n} gone"... in a summary
COUNT_TEXTS = {
    Liveness.UP.value: QT_TRANSLATE_NOOP("FleetText", "{n} up"),
    Liveness.GONE.value: QT_TRANSLATE_NOOP("FleetText", "{n} gone"),
    Liveness.STOPPED.value: QT_TRANSLATE_NOOP("FleetText", "{n} stopped"),
    Liveness.REPLACED.value: QT_TRANSLATE_NOOP("FleetText", "{n} replaced"),
}
AGE_TEXTS = {
    "s": QT_TRANSLATE_NOOP("FleetText", "{n} s ago"), "min": QT_TRANSLATE_NOOP("FleetText", "{n} min ago"),
    "h": QT_TRANSLATE_NOOP("FleetText", "{n} h ago"), "d": QT_TRANSLATE_NOOP("FleetText", "{n} d ago"),
}

#: row colours: gone stations stand out, the ones that left cleanly fade
GONE_BACKGROUND = "#ffcdd2"
GONE_STATE = "#c62828"
UP_STATE = "#66bb6a"
FADED_TEXT = "#757575"
HEALTH_COLOURS = {"ok": "#c8e6c9", "degraded": "#fff9c4", "down": "#ffcdd2"}


def _t(text: str) -> str:
    return QCoreApplication.translate("FleetText", text)


def liveness_label(live: Liveness | str) -> str:
    """``up`` / ``gone`` / ``stopped`` / ``replaced`` in the window's language."""
    return _t(str(getattr(live, "value", live)))


def age_label(seconds: float) -> str:
    """A heartbeat's age as ``fleet stations`` says it (``2 s ago``), in the window's language."""
    n, unit = age_parts(seconds)
    return _t(AGE_TEXTS[unit]).format(n=n)


def summary_text(snap: FleetSnapshot) -> str:
    """The first line of ``fleet status`` in the window's language: stations, their states, the
    threshold and the database time they were judged at."""
    states = QCoreApplication.translate("FleetPage", ", ").join(
        _t(COUNT_TEXTS[k.value]).format(n=snap.counts[k.value]) for k in STATE_ORDER if snap.counts.get(k.value))
    if states:
        text = QCoreApplication.translate("FleetPage", "Fleet on {where}: {n} stations: {states}").format(
            where=snap.where, n=len(snap.stations), states=states)
    else:
        text = QCoreApplication.translate("FleetPage", "Fleet on {where}: {n} stations").format(
            where=snap.where, n=len(snap.stations))
    return text + QCoreApplication.translate(
        "FleetPage", " (gone after {s} s without a heartbeat; database time {t} UTC)").format(
        s=f"{snap.gone_after:g}", t=f"{snap.now:%Y-%m-%d %H:%M:%S}")


class FleetBridge(QObject):
    """Brings a :class:`FleetView`'s snapshots (its thread) to the GUI thread; keeps the latest."""

    snapshotChanged = Signal(object)  # FleetSnapshot, on the GUI thread
    _incoming = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.latest: FleetSnapshot | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._incoming.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def attached(self) -> bool:
        return self._unsubscribe is not None

    def attach(self, view: FleetView) -> None:
        """Listen to ``view`` (it starts reading); a bridge listens to one view at a time."""
        self.detach()
        self._unsubscribe = view.subscribe(self._on_snapshot)

    def detach(self) -> None:
        """Stop listening (the view stops reading when nobody else listens)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _on_snapshot(self, snap: FleetSnapshot) -> None:  # the view's thread
        try:
            self._incoming.emit(snap)
        except RuntimeError:  # the bridge was deleted while the view still read
            log.debug("fleet snapshot after the bridge was deleted", exc_info=True)

    def _deliver(self, snap: FleetSnapshot) -> None:  # GUI thread
        if self._unsubscribe is None:
            return  # detached meanwhile: a read that was in flight
        self.latest = snap
        self.snapshotChanged.emit(snap)


class FleetTableModel(QAbstractTableModel):
    """One row per station, in the registry's order (by name), as ``fleet stations`` lists them."""

    COLUMNS = (
        QT_TRANSLATE_NOOP("FleetTableModel", "Station"), QT_TRANSLATE_NOOP("FleetTableModel", "State"),
        QT_TRANSLATE_NOOP("FleetTableModel", "Version"), QT_TRANSLATE_NOOP("FleetTableModel", "Host"),
        QT_TRANSLATE_NOOP("FleetTableModel", "Up since (UTC)"),
        QT_TRANSLATE_NOOP("FleetTableModel", "Last heartbeat"), QT_TRANSLATE_NOOP("FleetTableModel", "Cameras"),
        QT_TRANSLATE_NOOP("FleetTableModel", "Rollout"), QT_TRANSLATE_NOOP("FleetTableModel", "Health"),
        QT_TRANSLATE_NOOP("FleetTableModel", "Clock skew"), QT_TRANSLATE_NOOP("FleetTableModel", "Problems"),
    )
    (COL_NAME, COL_STATE, COL_VERSION, COL_HOST, COL_SINCE, COL_HEARTBEAT, COL_CAMERAS, COL_ROLLOUT, COL_HEALTH,
     COL_SKEW, COL_PROBLEMS) = range(11)
    #: the page's columns that show a ``fleet stations`` cell as it is
    SAME_AS_CLI = {COL_VERSION: "VERSION", COL_HOST: "HOST", COL_SINCE: "UP SINCE (UTC)", COL_CAMERAS: "CAMERAS",
                   COL_ROLLOUT: "ROLLOUT"}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[FleetStation] = []
        self._cells: list[tuple[str, ...]] = []

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return QCoreApplication.translate("FleetTableModel", self.COLUMNS[section])
        return None

    def station(self, row: int) -> FleetStation:
        return self._rows[row]

    def row_of(self, name: str) -> int:
        return next((i for i, s in enumerate(self._rows) if s.name == name), -1)

    def text(self, row: int, col: int) -> str:
        return self._cells[row][col]

    def update(self, stations: tuple[FleetStation, ...]) -> bool:
        """Show ``stations``: the rows whose text or state changed are redrawn; a station that came or
        went resets the model. True when the rows changed (the page then fits its columns again)."""
        cells = [self._cells_of(s) for s in stations]
        if [s.info.id for s in stations] != [s.info.id for s in self._rows]:
            self.beginResetModel()
            self._rows, self._cells = list(stations), cells
            self.endResetModel()
            return True
        old_rows, old_cells = self._rows, self._cells
        self._rows, self._cells = list(stations), cells
        changed = [r for r, (new, old) in enumerate(zip(stations, old_rows, strict=True))
                   if cells[r] != old_cells[r] or (new.liveness, new.info.health, new.mine) != (
                       old.liveness, old.info.health, old.mine)]
        if changed:  # one span: the view repaints it once
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], len(self.COLUMNS) - 1))
        return False

    def _cells_of(self, s: FleetStation) -> tuple[str, ...]:
        cli = dict(zip(STATION_COLUMNS, s.cells, strict=True))
        name = s.name
        if s.mine:
            name = QCoreApplication.translate("FleetTableModel", "{name} (this station)").format(name=s.name)
        health = _t(s.info.health) if s.up and s.info.health in HEALTH_TEXTS else (s.info.health if s.up else "–")
        skew = f"{s.skew_s:+.1f} s" if s.skew_worth_saying and s.skew_s is not None else ""
        if s.up:
            problems = "; ".join(s.info.problems)
        elif s.liveness is Liveness.REPLACED and s.info.replaced_by:
            problems = QCoreApplication.translate("FleetTableModel", "name taken over by {id}").format(
                id=s.info.replaced_by[:8])
        elif s.liveness is Liveness.GONE:
            problems = QCoreApplication.translate("FleetTableModel", "no heartbeat since {t} UTC").format(
                t=f"{s.info.heartbeat_at:%Y-%m-%d %H:%M:%S}")
        else:
            problems = ""
        by_col = {self.COL_NAME: name, self.COL_STATE: liveness_label(s.liveness),
                  self.COL_HEARTBEAT: age_label(s.age_s), self.COL_HEALTH: health, self.COL_SKEW: skew,
                  self.COL_PROBLEMS: problems}
        for col, key in self.SAME_AS_CLI.items():
            by_col[col] = cli[key]
        return tuple(by_col[c] for c in range(len(self.COLUMNS)))

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells[index.row()][col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(index.row(), col)
        if role == Qt.ItemDataRole.FontRole and (s.mine or col == self.COL_STATE and s.liveness is Liveness.GONE):
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.BackgroundRole:
            if col == self.COL_STATE and s.liveness in (Liveness.GONE, Liveness.UP):
                return QColor(GONE_STATE if s.liveness is Liveness.GONE else UP_STATE)
            if col == self.COL_HEALTH and s.up and s.info.health in HEALTH_COLOURS:
                return QColor(HEALTH_COLOURS[s.info.health])
            if s.liveness is Liveness.GONE:
                return QColor(GONE_BACKGROUND)
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_STATE and s.liveness is Liveness.GONE:
                return QColor("#ffffff")
            if col == self.COL_STATE and s.up or col == self.COL_HEALTH and s.up:
                return QColor("#000000")
            if s.liveness is Liveness.GONE:
                return QColor("#000000")
            if s.liveness in (Liveness.STOPPED, Liveness.REPLACED):
                return QColor(FADED_TEXT)
        return None

    def _tooltip(self, row: int, col: int) -> str:
        s = self._rows[row]
        if col == self.COL_NAME:
            return QCoreApplication.translate("FleetTableModel", "station {id} on host {host}, process {pid}").format(
                id=s.info.id, host=s.info.host or "?", pid=s.info.pid if s.info.pid is not None else "?")
        if col in (self.COL_STATE, self.COL_HEARTBEAT):
            return QCoreApplication.translate("FleetTableModel", "last heartbeat {t} UTC (database time)").format(
                t=f"{s.info.heartbeat_at:%Y-%m-%d %H:%M:%S}")
        if col == self.COL_SKEW and s.skew_s is not None:
            return QCoreApplication.translate(
                "FleetTableModel",
                "the station's clock vs the database's: {s} s (liveness uses the database's clock)",
            ).format(s=f"{s.skew_s:+.3f}")
        if col == self.COL_PROBLEMS:
            return "\n".join(s.info.problems) if s.up else ""
        return self._cells[row][col]


class FleetPage(QWidget):
    """The Fleet page over a :class:`FleetBridge` (it shows the bridge's latest snapshot at once)."""

    def __init__(self, bridge: FleetBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.snapshot: FleetSnapshot | None = None
        self.summary = QLabel()
        self.summary.setObjectName("fleetSummary")
        self.summary.setWordWrap(True)
        f = self.summary.font()
        f.setBold(True)
        self.summary.setFont(f)
        self.details = QLabel()
        self.details.setObjectName("fleetDetails")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setToolTip(self.tr("As 'edge-station fleet status' prints it"))
        self.error = QLabel()
        self.error.setObjectName("fleetError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c62828;")
        self.error.hide()
        self.model = FleetTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("fleetTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        # fitted to the cells when stations come or go, not at every read (fitting asks every cell)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 0)
        lay.setSpacing(4)
        lay.addWidget(self.summary)
        lay.addWidget(self.details)
        lay.addWidget(self.error)
        lay.addWidget(self.table, 1)
        self.summary.setText(self.tr("Reading the fleet registry…"))
        bridge.snapshotChanged.connect(self.set_snapshot)
        if bridge.latest is not None:
            self.set_snapshot(bridge.latest)

    def set_snapshot(self, snap: FleetSnapshot) -> None:
        """Show one snapshot (the bridge calls it for every read)."""
        self.snapshot = snap
        if snap.stations or snap.error is None:
            self.summary.setText(summary_text(snap))
            self.details.setText("\n".join(snap.status_lines[1:]))
        if snap.error is not None:
            self.error.setText(self.tr("The fleet registry cannot be read now; the table shows the last read. "
                                       "{error}").format(error=snap.error))
        self.error.setVisible(snap.error is not None)
        if self.model.update(snap.stations):
            self.table.resizeColumnsToContents()
