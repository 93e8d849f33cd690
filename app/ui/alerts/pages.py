"""Alerts (active and history, acknowledge) and the alert rule editor.

The alerts page reads the station's alert engine (``alert_statuses``, ``alert_history``,
``loaded_rules``) off the GUI thread: on every alert event from the bridge and every two
seconds while visible. The rule editor creates and changes rules through the routed
operations (``create_rule``/``update_rule``) and deletes/enables them through the station;
after a change the engine reloads its rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.alerts.templates import templates
from app.domain import (
    METRICS,
    AlertRule,
    Comparator,
    NoDataPolicy,
    Notify,
    OperationError,
    Severity,
    TargetKind,
    ValidationError,
)
from app.domain.errors import FieldError
from app.domain.operations import CreateRule, UpdateRule
from app.station.port import StationPort
from app.ui.common.form_dialog import FormDialog, InlineProblems
from app.ui.common.ops import operation
from app.ui.common.refresh import RefreshWhileVisible
from app.ui.common.tasks import TaskRunner
from app.ui.common.texts import QT_TRANSLATE_NOOP

SEVERITY_COLOURS = {"info": "#e3f2fd", "warning": "#fff3e0", "critical": "#ffebee"}
REFRESH_MS = 2000


#: severities and alert states as the window shows them (the stored values stay English)
ALERT_TEXTS = (
    QT_TRANSLATE_NOOP("AlertText", "critical"), QT_TRANSLATE_NOOP("AlertText", "warning"),
    QT_TRANSLATE_NOOP("AlertText", "info"), QT_TRANSLATE_NOOP("AlertText", "firing"),
    QT_TRANSLATE_NOOP("AlertText", "pending"), QT_TRANSLATE_NOOP("AlertText", "resolved"),
    QT_TRANSLATE_NOOP("AlertText", "inactive"), QT_TRANSLATE_NOOP("AlertText", " (held)"),
    QT_TRANSLATE_NOOP("AlertText", "yes"),
)


def alert_text(value: object) -> str:
    """A severity or state in the window's language (``critical`` -> ``严重``)."""
    return QCoreApplication.translate("AlertText", str(getattr(value, "value", value)))


def _when(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _val(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def _err(err: BaseException) -> str:
    return f"{err} [{err.code}]" if isinstance(err, OperationError) else f"{type(err).__name__}: {err}"


def _fill(table: QTableWidget, rows: list[list[str]], colours: list[str | None] | None = None) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = table.item(r, c)
            if item is None:
                item = QTableWidgetItem()
                table.setItem(r, c, item)
            if item.text() != text:
                item.setText(text)
                item.setToolTip(text)  # a cell too narrow elides with "…"; the whole text is here
            if colours is not None:
                item.setBackground(QColor(colours[r]) if colours[r] else QColor(0, 0, 0, 0))


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    hh = t.horizontalHeader()
    hh.setStretchLastSection(True)
    for c in range(len(headers) - 1):
        hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    return t


def _sort_key(text: str) -> tuple[int, float, str]:
    """Numbers as numbers (also after a comparator, as in ``< 100``), any other text without case."""
    for candidate in (text, text.rsplit(" ", 1)[-1]):
        try:
            return (0, float(candidate), "")
        except ValueError:
            pass
    return (1, 0.0, text.casefold())


class TableOrder:
    """Sort and filter for a table whose rows stand for a list of items: a click on a header sorts the
    *items* by that column (again: the other way), so row ``r`` is always item ``r`` (selection,
    thumbnails and the detail pane keep working); the filter hides the rows no cell of which holds
    its text. ``changed`` is called to draw the table again."""

    def __init__(self, table: QTableWidget, filter_edit: QLineEdit, changed: Any, skip: tuple[int, ...] = ()):
        self.table, self.filter_edit, self.changed, self.skip = table, filter_edit, changed, skip
        self.column: int | None = None  # None: the page's own order
        self.descending = False
        hh = table.horizontalHeader()
        hh.setSortIndicatorShown(False)
        hh.setSectionsClickable(True)
        hh.sectionClicked.connect(self._clicked)
        filter_edit.setClearButtonEnabled(True)
        filter_edit.textChanged.connect(lambda _t: self.apply_filter())

    def _clicked(self, column: int) -> None:
        if column in self.skip:
            return
        self.descending = not self.descending if self.column == column else False
        self.column = column
        hh = self.table.horizontalHeader()
        hh.setSortIndicatorShown(True)
        hh.setSortIndicator(column, Qt.SortOrder.DescendingOrder if self.descending else Qt.SortOrder.AscendingOrder)
        self.changed()

    def order(self, rows: list[list[str]]) -> list[int]:
        """The items' indices in the order to show them (stable: ties keep the page's order)."""
        idx = list(range(len(rows)))
        if self.column is None:
            return idx
        col = self.column
        return sorted(idx, key=lambda i: _sort_key(rows[i][col]) if col < len(rows[i]) else (2, 0.0, ""),
                      reverse=self.descending)

    def apply_filter(self) -> None:
        needle = self.filter_edit.text().strip().casefold()
        for r in range(self.table.rowCount()):
            cells = (self.table.item(r, c) for c in range(self.table.columnCount()))
            hay = " ".join(i.text() for i in cells if i is not None).casefold()
            self.table.setRowHidden(r, bool(needle) and needle not in hay)


class AlertsPage(RefreshWhileVisible, QWidget):
    """Active alerts (firing and pending) with acknowledge, and the event history."""

    refreshed = Signal()
    acknowledged = Signal(bool, str)

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.active: list[Any] = []
        self.history: list[Any] = []
        self.comparators: dict[Any, str] = {}  # rule id -> "<", ">=", ... (the threshold column shows it)
        self._loading = False
        self.summary = QLabel(self.tr("Alerts: –"))
        self.ack_btn = QPushButton(self.tr("Acknowledge"))
        self.ack_btn.setShortcut("Ctrl+K")
        self.ack_btn.setToolTip(self.tr("Acknowledge the selected alerts (Ctrl+K)"))
        self.ack_btn.clicked.connect(self.acknowledge_selected)
        self.ack_all_btn = QPushButton(self.tr("Acknowledge all"))
        self.ack_all_btn.clicked.connect(self.acknowledge_all)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.ack_btn)
        top.addWidget(self.ack_all_btn)
        self.active_table = _table([self.tr("Snapshot"), self.tr("Severity"), self.tr("Rule"), self.tr("Subject"), self.tr("State"), self.tr("Value"), self.tr("Threshold"), self.tr("Since"), self.tr("Acknowledged")])
        self.active_table.setSelectionMode(QTableWidget.SelectionMode.ExtendedSelection)
        self.active_table.itemSelectionChanged.connect(self._update_buttons)
        self.history_table = _table([self.tr("Snapshot"), self.tr("Severity"), self.tr("Rule"), self.tr("Subject"), self.tr("State"), self.tr("Value"), self.tr("Fired"), self.tr("Resolved"), self.tr("Acknowledged by"), self.tr("Message")])
        self.active_filter = QLineEdit()
        self.active_filter.setPlaceholderText(self.tr("Filter by rule, subject, severity or state"))
        self.history_filter = QLineEdit()
        self.history_filter.setPlaceholderText(self.tr("Filter by rule, subject, severity or state"))
        redraw = lambda: self.show_alerts(self._active_in, self._history_in)  # noqa: E731
        self.active_order = TableOrder(self.active_table, self.active_filter, redraw, skip=(0,))
        self.history_order = TableOrder(self.history_table, self.history_filter, redraw, skip=(0,))
        self._active_in: list[Any] = []
        self._history_in: list[Any] = []
        split = QSplitter(Qt.Orientation.Vertical)
        for title, table, edit in ((self.tr("Active"), self.active_table, self.active_filter),
                                   (self.tr("History"), self.history_table, self.history_filter)):
            box = QWidget()
            bl = QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            head = QHBoxLayout()
            head.addWidget(QLabel(self.tr("<b>{title}</b>").format(title=title)), 1)
            head.addWidget(edit, 1)
            bl.addLayout(head)
            bl.addWidget(table)
            split.addWidget(box)
        # Evidence: a snapshot column in both tables and the selected alert's snapshot and clip.
        from app.ui.evidence.page import EvidencePane, ThumbnailColumn

        self.thumbs = ThumbnailColumn(station, tasks, self)
        for table in (self.active_table, self.history_table):
            ThumbnailColumn.prepare(table)
        self.detail = EvidencePane(station, tasks, self)
        self.active_table.itemSelectionChanged.connect(lambda: self._show_detail(self.active_table))
        self.history_table.itemSelectionChanged.connect(lambda: self._show_detail(self.history_table))
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(split)
        outer.addWidget(self.detail)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(outer, 1)
        self._refresh_while_visible(REFRESH_MS, self.refresh)
        self._update_buttons()

    def shutdown(self) -> None:
        self.timer.stop()
        self.detail.player.stop()

    def refresh(self) -> None:
        station = self.station
        if not station.alerts_running():
            self.summary.setText(self.tr("Alerts are not available in this station"))
            return
        if self._loading:
            return
        self._loading = True

        def read() -> tuple[list[Any], list[Any], dict[Any, str]]:
            comparators = {r.id: str(r.comparator) for r in station.loaded_rules()}
            return list(station.alert_statuses()), list(station.alert_history(200)), comparators

        def done(data: tuple[list[Any], list[Any], dict[Any, str]]) -> None:
            self._loading = False
            self.comparators = data[2]
            self.show_alerts(data[0], data[1])

        def failed(err: BaseException) -> None:
            self._loading = False
            self.summary.setText(self.tr("could not read the alerts: {0}").format(_err(err)))

        self.tasks.submit("alerts", read, on_ok=done, on_error=failed, quiet=True, owner=self)

    def show_alerts(self, active: list[Any], history: list[Any]) -> None:
        self._active_in, self._history_in = active, history
        order = {"critical": 0, "warning": 1, "info": 2}
        active = sorted(active, key=lambda a: (str(a.state) != "firing", order.get(str(a.severity), 3), a.rule_name))
        rows = [["", alert_text(a.severity), a.rule_name, a.subject,
                 alert_text(a.state) + (alert_text(" (held)") if a.inhibited else ""),
                 _val(a.value), self._threshold(a), _when(a.since), alert_text("yes") if a.acknowledged else ""]
                for a in active]
        perm = self.active_order.order(rows)
        self.active = [active[i] for i in perm]
        _fill(self.active_table, [rows[i] for i in perm], [SEVERITY_COLOURS.get(str(a.severity)) for a in self.active])
        rows = [["", alert_text(e.severity), e.rule_name, e.subject, alert_text(e.state), _val(e.value),
                 _when(e.fired_at), _when(e.resolved_at), e.acknowledged_by or "", e.message] for e in history]
        perm = self.history_order.order(rows)
        self.history = [history[i] for i in perm]
        _fill(self.history_table, [rows[i] for i in perm],
              [SEVERITY_COLOURS.get(str(e.severity)) if e.active else None for e in self.history])
        self.active_order.apply_filter()
        self.history_order.apply_filter()
        self.thumbs.apply(self.active_table, [a.event_id for a in self.active])
        self.thumbs.apply(self.history_table, [e.id for e in self.history])
        firing = [a for a in self.active if str(a.state) == "firing"]
        new = [a for a in firing if not a.acknowledged]
        self.summary.setText(self.tr("{0} firing ({1} not acknowledged), {2} pending").format(len(firing), len(new), len(self.active) - len(firing)) if self.active else self.tr("No active alerts"))
        self._update_buttons()
        self.refreshed.emit()

    def _threshold(self, a: Any) -> str:
        """``< 100``: the threshold with the rule's comparator (a bare ``100`` says nothing)."""
        cmp = self.comparators.get(getattr(a, "rule_id", None))
        return f"{cmp} {_val(a.threshold)}" if cmp else _val(a.threshold)

    def _show_detail(self, table: QTableWidget) -> None:
        """The selected alert's evidence in the detail pane."""
        rows = sorted({i.row() for i in table.selectedIndexes()})
        if not rows:
            return
        if table is self.active_table:
            if rows[0] >= len(self.active):
                return
            a = self.active[rows[0]]
            event_id, camera_id, title = a.event_id, a.camera_id, f"{a.rule_name} — {a.subject}"
        else:
            if rows[0] >= len(self.history):
                return
            e = self.history[rows[0]]
            event_id, camera_id = e.id, e.camera_id
            title = f"{e.rule_name} — {e.subject}, {_when(e.fired_at)}"
        if event_id != self.detail.event_id:
            self.detail.show_event(event_id, camera_id, title)

    def _selected(self) -> list[Any]:
        rows = sorted({i.row() for i in self.active_table.selectedIndexes()})
        return [self.active[r] for r in rows if r < len(self.active)]

    def _update_buttons(self) -> None:
        sel = [a for a in self._selected() if a.event_id is not None and not a.acknowledged]
        self.ack_btn.setEnabled(bool(sel))
        self.ack_all_btn.setEnabled(any(a.event_id is not None and not a.acknowledged for a in self.active))

    def acknowledge_selected(self) -> None:
        self._acknowledge([a.event_id for a in self._selected() if a.event_id is not None and not a.acknowledged])

    def acknowledge_all(self) -> None:
        self._acknowledge([a.event_id for a in self.active if a.event_id is not None and not a.acknowledged])

    def _acknowledge(self, event_ids: list[int], by: str = "operator") -> None:
        station = self.station
        if not station.alerts_running() or not event_ids:
            return

        def work() -> int:
            for eid in event_ids:
                station.acknowledge_alert(eid, by)
            return len(event_ids)

        def ok(n: int) -> None:
            self.acknowledged.emit(True, f"{n} acknowledged")
            self.refresh()

        def failed(err: BaseException) -> None:
            self.summary.setText(self.tr("acknowledge failed: {0}").format(_err(err)))
            self.acknowledged.emit(False, _err(err))
            self.refresh()

        self.tasks.submit("acknowledge", work, on_ok=ok, on_error=failed, owner=self)


# ---------------------------------------------------------------------------- rules


class RuleForm(InlineProblems, QWidget):
    """Every field of an alert rule, validated with ``AlertRule.problems()`` as you type."""

    changed = Signal()

    def __init__(self, station: StationPort, rule: AlertRule | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.original = rule
        r = rule or AlertRule(name="", metric="offline", comparator=Comparator.GE, threshold=1.0)
        self.name = QLineEdit(r.name)
        self.target = QComboBox()
        for t in TargetKind:
            self.target.addItem(t.value.replace("_", " "), t.value)
        self.camera = QComboBox()
        self.camera.addItem("—", None)
        for cam in sorted(station.cameras(), key=lambda c: c.name):
            self.camera.addItem(cam.name, cam.id)
        self.metric_box = QComboBox()
        for name, (_kinds, unit, text) in sorted(METRICS.items()):
            self.metric_box.addItem(f"{name} ({unit})" if unit else name, name)
            self.metric_box.setItemData(self.metric_box.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.comparator = QComboBox()
        for c in Comparator:
            self.comparator.addItem(c.value, c.value)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(-1e9, 1e9)
        self.threshold.setDecimals(3)
        self.for_seconds = _secs()
        self.keep_firing = _secs()
        self.cooldown = _secs()
        self.repeat = _secs()
        self.severity = QComboBox()
        for s in Severity:
            self.severity.addItem(s.value, s.value)
        self.no_data = QComboBox()
        for n in NoDataPolicy:
            self.no_data.addItem(n.value.replace("_", " "), n.value)
        self.schedule = QLineEdit(r.schedule)
        self.schedule.setPlaceholderText(self.tr("always, or e.g. mon-fri 08:00-18:00; sat 10:00-14:00"))
        self.enabled = QCheckBox(self.tr("enabled"))
        self.desktop = QCheckBox(self.tr("desktop notification"))
        self.sound = QCheckBox(self.tr("sound"))
        self.webhook = QLineEdit(r.notify.webhook_url or "")
        self.webhook.setPlaceholderText(self.tr("https://… (optional)"))
        self.command = QLineEdit(" ".join(r.notify.command))
        self.command.setPlaceholderText(self.tr("program and arguments, run without a shell (optional)"))
        self.description = QLineEdit(r.description)

        self.errors: dict[str, QLabel] = {}
        touch: list[tuple[QWidget, str]] = []
        form = QFormLayout(self)

        def row(label: str, widget: QWidget, key: str) -> None:
            box = QWidget()
            bl = QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.setSpacing(1)
            bl.addWidget(widget)
            err = QLabel()
            err.setStyleSheet("color: #c62828;")
            err.setWordWrap(False)  # a wrapped label in a form row gets clipped
            err.hide()
            bl.addWidget(err)
            self.errors[key] = err
            touch.append((widget, key))
            form.addRow(label, box)

        row(self.tr("&Name"), self.name, "name")
        row(self.tr("&Target"), self.target, "target")
        row(self.tr("&Camera"), self.camera, "camera_id")
        row(self.tr("&Metric"), self.metric_box, "metric")
        cond = QHBoxLayout()
        cond.addWidget(self.comparator)
        cond.addWidget(self.threshold, 1)
        cw = QWidget()
        cond.setContentsMargins(0, 0, 0, 0)
        cw.setLayout(cond)
        row(self.tr("Condition"), cw, "threshold")
        row(self.tr("For"), self.for_seconds, "for_seconds")
        row(self.tr("Keep firing for"), self.keep_firing, "keep_firing_for")
        row(self.tr("Cooldown"), self.cooldown, "cooldown")
        row(self.tr("Repeat every"), self.repeat, "repeat_interval")
        row(self.tr("Severity"), self.severity, "severity")
        row(self.tr("No data"), self.no_data, "no_data")
        row(self.tr("Schedule"), self.schedule, "schedule")
        notify = QHBoxLayout()
        for w in (self.enabled, self.desktop, self.sound):
            notify.addWidget(w)
        nw = QWidget()
        notify.setContentsMargins(0, 0, 0, 0)
        nw.setLayout(notify)
        form.addRow("", nw)
        row(self.tr("Webhook"), self.webhook, "notify.webhook_url")
        row(self.tr("Command"), self.command, "notify.command")
        row(self.tr("Description"), self.description, "description")
        self.general_error = QLabel()
        self.general_error.setStyleSheet("color: #c62828; font-weight: bold;")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        form.addRow(self.general_error)

        _select(self.target, str(r.target))
        _select(self.camera, r.camera_id)
        _select(self.metric_box, r.metric)
        _select(self.comparator, str(r.comparator))
        self.threshold.setValue(float(r.threshold))
        self.for_seconds.setValue(r.for_seconds)
        self.keep_firing.setValue(r.keep_firing_for)
        self.cooldown.setValue(r.cooldown)
        self.repeat.setValue(r.repeat_interval)
        _select(self.severity, str(r.severity))
        _select(self.no_data, str(r.no_data))
        self.enabled.setChecked(r.enabled)
        self.desktop.setChecked(r.notify.desktop)
        self.sound.setChecked(r.notify.sound)

        for line in (self.name, self.schedule, self.webhook, self.command, self.description):
            line.textChanged.connect(self._changed)
        for cb in (self.target, self.camera, self.metric_box, self.comparator, self.severity, self.no_data):
            cb.currentIndexChanged.connect(self._changed)
        for sp in (self.threshold, self.for_seconds, self.keep_firing, self.cooldown, self.repeat):
            sp.valueChanged.connect(self._changed)
        for check in (self.enabled, self.desktop, self.sound):
            check.toggled.connect(self._changed)
        self.problems: list[FieldError] = []
        for widget, key in touch:  # after the initial values: a message shows once its field is edited
            self.touch_on_edit(widget, key)
        self._changed()

    def rule(self) -> AlertRule:
        base = self.original or AlertRule(name="", metric="offline", comparator=Comparator.GE, threshold=1.0)
        target = self.target.currentData()
        return base.with_changes(
            name=self.name.text().strip(), target=TargetKind(target),
            camera_id=self.camera.currentData() if target == TargetKind.CAMERA else None,
            metric=self.metric_box.currentData(), comparator=Comparator(self.comparator.currentData()),
            threshold=self.threshold.value(), for_seconds=self.for_seconds.value(),
            keep_firing_for=self.keep_firing.value(), cooldown=self.cooldown.value(),
            repeat_interval=self.repeat.value(), severity=Severity(self.severity.currentData()),
            no_data=NoDataPolicy(self.no_data.currentData()), schedule=self.schedule.text().strip(),
            enabled=self.enabled.isChecked(), description=self.description.text().strip(),
            notify=Notify(webhook_url=self.webhook.text().strip() or None,
                          command=tuple(self.command.text().split()), desktop=self.desktop.isChecked(),
                          sound=self.sound.isChecked()),
        )

    def _changed(self) -> None:
        self.camera.setEnabled(self.target.currentData() == TargetKind.CAMERA)
        self.problems = self.rule().problems()
        self.show_problems(self.problems)
        self.changed.emit()



def _secs() -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(0, 7 * 86400)
    s.setDecimals(0)
    s.setSuffix(QCoreApplication.translate("alerts_page", " s"))
    return s


def _select(box: QComboBox, data: Any) -> None:
    i = box.findData(data)
    if i >= 0:
        box.setCurrentIndex(i)


class RuleDialog(FormDialog):
    """Create (``rule=None`` or a template) or change an alert rule through the routed operations.

    Emits ``saved(AlertRule)`` after the station stored it.
    """

    def __init__(self, station: StationPort, tasks: TaskRunner, rule: AlertRule | None = None,
                 parent: QWidget | None = None):
        super().__init__(station, tasks, parent)
        self.editing = rule is not None and rule.id is not None
        self.original = rule
        self.setWindowTitle(self.tr("Edit rule — {name}").format(name=rule.name) if self.editing and rule else self.tr("New alert rule"))
        self._set_form(RuleForm(station, rule))

    def save(self) -> None:
        if self.form.problems or self._saving:
            return
        rule = self.form.rule()
        if self.editing and self.original is not None:
            changes = {f: getattr(rule, f) for f in (
                "name", "target", "camera_id", "metric", "comparator", "threshold", "for_seconds",
                "keep_firing_for", "cooldown", "repeat_interval", "severity", "no_data", "schedule",
                "enabled", "notify", "description") if getattr(rule, f) != getattr(self.original, f)}
            if not changes:
                self.accept()
                return
            req: Any = UpdateRule(self.original.id, changes, expected_version=self.original.version)  # type: ignore[arg-type]
            fn = operation(self.station, "update_rule")
        else:
            req, fn = CreateRule(rule.with_changes(id=None, version=1)), operation(self.station, "create_rule")

        def work() -> Any:
            result = fn(req)
            self.station.reload_rules()
            return result

        self._submit("save rule", work)

    def _saved_value(self, result: Any) -> Any:
        return result.rule

    def _problems_for(self, err: BaseException) -> tuple[list[FieldError], str]:
        if isinstance(err, ValidationError):
            return list(err.errors), ""
        return [], _err(err)


class RulesPage(QWidget):
    """The station's alert rules: new (blank or from a template), edit, enable/disable, delete."""

    refreshed = Signal()
    actionFinished = Signal(str, bool, str)

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station, self.tasks = station, tasks
        self.rules: list[AlertRule] = []
        self._select_after: str | None = None
        self.table = _table([self.tr("On"), self.tr("Name"), self.tr("Target"), self.tr("Condition"), self.tr("For"), self.tr("Severity"), self.tr("Notify"), self.tr("Version")])
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)  # edit/toggle/delete act on one rule
        self.table.doubleClicked.connect(lambda _i: self.edit_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.template = QComboBox()
        self.template.addItem(self.tr("blank rule"), None)
        for key in templates():
            self.template.addItem(key.replace("_", " "), key)
        self.new_btn = QPushButton(self.tr("New…"))
        self.new_btn.clicked.connect(lambda: self.new_rule(self.template.currentData()))
        self.edit_btn = QPushButton(self.tr("Edit…"))
        self.edit_btn.clicked.connect(self.edit_selected)
        self.toggle_btn = QPushButton(self.tr("Disable"))
        self.toggle_btn.clicked.connect(self.toggle_selected)
        self.delete_btn = QPushButton(self.tr("Delete"))
        self.delete_btn.clicked.connect(lambda: self.delete_selected())
        self.message = QLabel()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(self.tr("Filter rules by name, target or condition"))
        self._rules_in: list[AlertRule] = []
        self._reads = 0  # the number of the newest read of the rules
        self.order = TableOrder(self.table, self.filter_edit, lambda: self.show_rules(self._rules_in))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(self.tr("Template:")))
        bar.addWidget(self.template)
        for b in (self.new_btn, self.edit_btn, self.toggle_btn, self.delete_btn):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.filter_edit, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.message)
        self._update_buttons()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        # Reads run on task threads and may finish out of order: only the newest read is shown, so a
        # read begun before a delete cannot bring the deleted rule back after the read that followed it.
        self._reads += 1
        seq = self._reads

        def done(rules: list[AlertRule]) -> None:
            if seq == self._reads:
                self.show_rules(rules)

        self.tasks.submit("rules", self.station.list_rules, on_ok=done,
                          on_error=lambda e: self.message.setText(self.tr("could not read the rules: {0}").format(_err(e))),
                          quiet=True, owner=self)

    def show_rules(self, rules: list[AlertRule]) -> None:
        before = self.selected()  # keep the operator's selection on the same rule, not the same row
        self._rules_in = rules
        ordered = sorted(rules, key=lambda r: r.name.lower())
        names = {c.id: c.name for c in self.station.cameras()}

        def target(r: AlertRule) -> str:
            if r.target == TargetKind.CAMERA:
                return self.tr("camera {name}").format(name=names.get(r.camera_id, r.camera_id))
            return str(r.target).replace("_", " ")

        def notify(r: AlertRule) -> str:
            parts = [p for p, on in ((self.tr("desktop"), r.notify.desktop), (self.tr("sound"), r.notify.sound),
                                     (self.tr("webhook"), bool(r.notify.webhook_url)),
                                     (self.tr("command"), bool(r.notify.command)))
                     if on]
            return ", ".join(parts)

        rows = [["✔" if r.enabled else "", r.name, target(r), f"{r.metric} {r.comparator} {r.threshold:g}",
                 f"{r.for_seconds:g} s", alert_text(r.severity), notify(r), str(r.version)] for r in ordered]
        perm = self.order.order(rows)
        self.rules = [ordered[i] for i in perm]
        _fill(self.table, [rows[i] for i in perm], [None if r.enabled else "#eeeeee" for r in self.rules])
        self.order.apply_filter()
        if self._select_after is not None and any(r.name == self._select_after for r in self.rules):
            self.select_rule(self._select_after)
            self._select_after = None
        elif before is not None:
            for i, r in enumerate(self.rules):
                if r.id == before.id:
                    self.table.selectRow(i)
        self._update_buttons()
        self.refreshed.emit()

    def selected(self) -> AlertRule | None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return self.rules[rows[0]] if rows and rows[0] < len(self.rules) else None

    def select_rule(self, name: str) -> None:
        for i, r in enumerate(self.rules):
            if r.name == name:
                self.table.selectRow(i)

    def _update_buttons(self) -> None:
        r = self.selected()
        for b in (self.edit_btn, self.toggle_btn, self.delete_btn):
            b.setEnabled(r is not None)
        self.toggle_btn.setText(self.tr("Enable") if r is not None and not r.enabled else self.tr("Disable"))

    def new_rule(self, template: str | None = None) -> RuleDialog:
        rule = None
        if template:
            rule = templates()[template]()
        dlg = RuleDialog(self.station, self.tasks, rule, self)
        dlg.saved.connect(lambda r: self._done(self.tr("rule {name} saved").format(name=r.name), select=r.name))
        dlg.open()
        return dlg

    def edit_selected(self) -> RuleDialog | None:
        r = self.selected()
        if r is None:
            return None
        dlg = RuleDialog(self.station, self.tasks, r, self)
        dlg.saved.connect(lambda rr: self._done(self.tr("rule {name} saved").format(name=rr.name), select=rr.name))
        dlg.open()
        return dlg

    def toggle_selected(self) -> None:
        r = self.selected()
        if r is None or r.id is None:
            return
        rid, want = r.id, not r.enabled
        self._run((self.tr("enable {name}") if want else self.tr("disable {name}")).format(name=r.name),
                  lambda: self.station.set_rule_enabled(rid, want))

    def delete_selected(self, *, confirm: bool = True) -> None:
        r = self.selected()
        if r is None or r.id is None:
            return
        rid = r.id
        if confirm:
            from PySide6.QtWidgets import QMessageBox

            if QMessageBox.question(self, self.tr("Delete rule"), self.tr("Delete the rule {name!r}?").format(name=r.name)) != \
                    QMessageBox.StandardButton.Yes:
                return
        self._run(self.tr("delete {name}").format(name=r.name), lambda: self.station.delete_rule(rid))

    def _run(self, what: str, fn: Callable[[], object]) -> None:
        def work() -> None:
            fn()  # the station reloads the engine's rules

        def failed(err: BaseException) -> None:
            self.message.setText(self.tr("{what} failed: {0}").format(_err(err), what=what))
            self.actionFinished.emit(what, False, _err(err))
            self.refresh()

        self.tasks.submit(what, work, on_ok=lambda _r: self._done(what), on_error=failed, owner=self)

    def _done(self, what: str, select: str | None = None) -> None:
        if select is not None:
            self._select_after = select  # a saved rule becomes the selection once the list is read again
        self.message.setText(self.tr("{what}: done").format(what=what))
        self.actionFinished.emit(what, True, "")
        self.refresh()
