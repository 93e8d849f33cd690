"""The rollout page: both tracks side by side, health, verification, rehearsal and rollback.

Each track (rules first, then cameras) shows its stage, percent, hold (held, left),
the stage gate checklist, the rollback latch and checklist, and the open problem
reports, with its own Advance (only when the gate passes; none at 100 %), Advance
with an override reason, Roll back, Resume (with a reason) and Report a problem.

Reads the station's rollout snapshot off the GUI thread every two seconds while
visible. Every action runs on a task thread through the station's facade
(``rollout_advance``, ``rollout_rollback``, ``rollout_resume``, ``file_report``,
``resolve_report``, ``rehearse_rollback``); verify shows its progress lines and table.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.domain import OperationError
from app.rollout.errors import VerificationCancelled
from app.rollout.metrics import DOMAIN, LEGACY
from app.rollout.verify import StepProgress, VerifyReport
from app.station.port import StationPort
from app.ui.common.formatting import fmt_clock
from app.ui.common.reasons import translate_reason, translate_status, translate_track
from app.ui.common.refresh import RefreshWhileVisible
from app.ui.common.tasks import TaskRunner
from app.ui.common.texts import QT_TRANSLATE_NOOP

STATUS_COLOURS = {"pass": "#c8e6c9", "fail": "#ffcdd2", "inconclusive": "#fff9c4", "pending": "#eceff1",
                  "ok": "#c8e6c9", "alert": "#ffcdd2"}
REFRESH_MS = 2000


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def run_verify(station: StationPort, progress: Callable[[str], None],
               on_step: Callable[[StepProgress], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> VerifyReport:
    """Run ``verify`` on a scratch station and record the result for the gate, as the operator.

    ``on_step(StepProgress)`` before each step; ``cancelled()`` asked before each step: a cancelled
    run raises :class:`~app.rollout.errors.VerificationCancelled` and records nothing."""
    return station.verify(actor="operator", progress=progress, on_step=on_step, cancelled=cancelled)


def _cell(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    if item is None:  # every cell of these tables is filled when its row is
        raise LookupError(f"no cell at row {row}, column {column}")
    return item


class _ChecksTable(QTableWidget):
    def __init__(self) -> None:
        super().__init__(0, 5)
        self.setHorizontalHeaderLabels([self.tr("Check"), self.tr("Status"), self.tr("Value"), self.tr("Limit"), self.tr("Why")])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        for c in range(4):
            self.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.setWordWrap(True)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

    def show_checks(self, checks: Any) -> None:
        checks = list(checks or ())
        self.setRowCount(len(checks))
        for r, c in enumerate(checks):
            status = str(c.status)
            limit = translate_reason(c.limit) if isinstance(c.limit, str) else _num(c.limit)
            value, value_tip = _num(c.value), ""
            if isinstance(c.value, dict) and c.value and all(isinstance(n, int) for n in c.value.values()):
                # per operation (coverage): the fewest against the limit; every operation in the tooltip
                value = _num(min(c.value.values()))
                value_tip = "\n".join(f"{op}: {n:,}" for op, n in c.value.items())
            cells = [c.name, translate_status(status), value, limit, translate_reason(c.message)]
            for col, text in enumerate(cells):
                item = self.item(r, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(r, col, item)
                if item.text() != text:
                    item.setText(text)
                tip = value_tip if col == 2 and value_tip else text  # the whole text where a cell elides it
                if item.toolTip() != tip:
                    item.setToolTip(tip)
                if col == 1:
                    item.setData(Qt.ItemDataRole.UserRole, status)
                    item.setBackground(QColor(STATUS_COLOURS.get(status, "#ffffff")))
                if col == 4:
                    item.setToolTip(text)

    def statuses(self) -> dict[str, str]:
        """check name -> status (``pass``, ``fail``, …: the check's own word, whatever the language)."""
        return {_cell(self, r, 0).text(): _cell(self, r, 1).data(Qt.ItemDataRole.UserRole)
                for r in range(self.rowCount())}


class NeedsTable(QTableWidget):
    """Per operation of one track: how many more calls health needs before it can judge it.

    Fed from the router snapshot's health (``health.as_dict()["tracks"][track]["ops"][op]["needs"]``,
    path -> more calls, ``None`` = cannot become healthy in this window). Lists only the operations
    that still need some; the panel hides it when none does or the track routes nothing to domain.
    """

    def __init__(self) -> None:
        super().__init__(0, 3)
        self.setHorizontalHeaderLabels([self.tr("Operation"), self.tr("More domain calls"),
                                        self.tr("More legacy calls")])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)  # compact: more rows in view
        self.setMaximumHeight(140)

    def _more(self, n: Any) -> str:
        if n is None:
            return self.tr("cannot become healthy in this window")
        return "–" if not n else f"{int(n):,}"

    def show_needs(self, track: dict[str, Any] | None) -> int:
        """Show the operations of ``track`` (a health track dict) that still need calls; return how many."""
        rows = []
        if track and track.get("active"):
            for op, o in sorted((track.get("ops") or {}).items()):
                needs = o.get("needs") or {}
                if any(v is None or v > 0 for v in needs.values()):
                    rows.append((op, needs))
        self.setRowCount(len(rows))
        for r, (op, needs) in enumerate(rows):
            for c, text in enumerate((op, self._more(needs.get(DOMAIN, 0)), self._more(needs.get(LEGACY, 0)))):
                item = self.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(r, c, item)
                if item.text() != text:
                    item.setText(text)
        return len(rows)

    def needs(self) -> dict[str, tuple[str, str]]:
        return {_cell(self, r, 0).text(): (_cell(self, r, 1).text(), _cell(self, r, 2).text())
                for r in range(self.rowCount())}


def _dur(s: float | None) -> str:
    if s is None:
        return "–"
    s = max(float(s), 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


TRACK_TITLES = {"rules": QT_TRANSLATE_NOOP("TrackPanel", "Rules track (alert-rule writes, first)"),
                "cameras": QT_TRANSLATE_NOOP("TrackPanel", "Cameras track (camera operations, second)")}


class TrackPanel(QGroupBox):
    """One rollout track: stage, percent, hold, gate checklist, latch, reports and the track's actions."""

    def __init__(self, track: str, page: RolloutPage):
        super().__init__(QCoreApplication.translate("TrackPanel", TRACK_TITLES.get(track, track)))
        self.track = track
        self.page = page
        self.setObjectName(f"track_{track}")
        self.gate: Any = None
        self.settings: Any = None
        self.state_label = QLabel("–")
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.state_label.setFont(f)
        self.hold_label = QLabel()
        self.keys_label = QLabel()
        self.keys_label.setWordWrap(True)
        self.lock_label = QLabel()
        self.lock_label.setStyleSheet("color: #6d4c41; font-style: italic;")
        self.lock_label.setWordWrap(True)
        self.lock_label.hide()
        self.advance_btn = QPushButton(self.tr("Advance"))
        self.advance_btn.clicked.connect(lambda: self.page.advance(self.track))
        self.override_btn = QPushButton(self.tr("Advance with override…"))
        self.override_btn.clicked.connect(lambda: self.page.advance(self.track, ask_override=True))
        self.rollback_btn = QPushButton(self.tr("Roll back"))
        self.rollback_btn.setStyleSheet("QPushButton { color: #b71c1c; font-weight: bold; }")
        self.rollback_btn.clicked.connect(lambda: self.page.rollback(self.track, confirm=True))
        self.resume_btn = QPushButton(self.tr("Resume…"))
        self.resume_btn.clicked.connect(lambda: self.page.resume(self.track, reason=None))
        self.resume_btn.hide()
        self.report_btn = QPushButton(self.tr("Report a problem…"))
        self.report_btn.clicked.connect(lambda: self.page.file_report(self.track, text=None))
        btns = QHBoxLayout()
        for b in (self.advance_btn, self.override_btn, self.report_btn):
            btns.addWidget(b)
        btns.addStretch(1)
        btns.addWidget(self.resume_btn)
        btns.addWidget(self.rollback_btn)
        self.gate_label = QLabel(self.tr("Stage gate: –"))
        self.gate_label.setWordWrap(True)
        self.gate_table = _ChecksTable()
        self.checklist_label = QLabel()
        self.checklist_table = _ChecksTable()
        self.checklist_label.hide()
        self.checklist_table.hide()
        self.needs_label = QLabel()
        self.needs_label.setWordWrap(True)
        self.needs_table = NeedsTable()
        self.needs_label.hide()
        self.needs_table.hide()
        self.reports_label = QLabel(self.tr("Open problem reports: none"))
        self.reports_table = QTableWidget(0, 4)
        self.reports_table.setHorizontalHeaderLabels([self.tr("#"), self.tr("Stage"), self.tr("By"), self.tr("Problem")])
        self.reports_table.verticalHeader().setVisible(False)
        self.reports_table.horizontalHeader().setStretchLastSection(True)
        self.reports_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.reports_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.reports_table.setMaximumHeight(110)
        self.resolve_btn = QPushButton(self.tr("Resolve selected report…"))
        self.resolve_btn.clicked.connect(self._resolve_selected)
        lay = QVBoxLayout(self)
        lay.addWidget(self.state_label)
        lay.addWidget(self.hold_label)
        lay.addWidget(self.keys_label)
        lay.addWidget(self.lock_label)
        lay.addLayout(btns)
        lay.addWidget(self.gate_label)
        lay.addWidget(self.gate_table, 3)
        lay.addWidget(self.needs_label)
        lay.addWidget(self.needs_table, 1)
        lay.addWidget(self.checklist_label)
        lay.addWidget(self.checklist_table, 2)
        lay.addWidget(self.reports_label)
        lay.addWidget(self.reports_table)
        lay.addWidget(self.resolve_btn)

    def show_track(self, snap: Any) -> None:
        s = snap.settings.track(self.track)
        self.settings = s
        g = snap.gates.get(self.track)
        self.gate = g
        if s.latched:
            self.state_label.setText(self.tr("ROLLED BACK — every call on legacy"))
            self.state_label.setStyleSheet("color: #b71c1c;")
        elif g is not None and g.complete:
            self.state_label.setText(self.tr("COMPLETE at 100 % — legacy may be retired"))
            self.state_label.setStyleSheet("color: #1b5e20;")
        elif s.target_percent == 0:
            self.state_label.setText(self.tr("legacy (stage 0 %)"))
            self.state_label.setStyleSheet("")
        else:
            self.state_label.setText(self.tr("stage {stage} % · domain {percent} %").format(
                stage=s.stage, percent=s.target_percent))
            self.state_label.setStyleSheet("color: #4a148c;")
        hold = []
        if s.latched:
            hold.append(self.tr("latched {when}: {reason}").format(
                when=fmt_clock(s.latched_at), reason=s.latch_reason or "–"))
        elif g is not None and g.current > 0:
            hold.append(self.tr("held {held} of {hold} · {left} left").format(
                held=_dur(g.held_s), hold=_dur(g.hold_s), left=_dur(g.left_s)))
        self.hold_label.setText(" ".join(hold))
        self.hold_label.setVisible(bool(hold))
        share = snap.track_share(self.track) if hasattr(snap, "track_share") else None
        keys = [self.tr("actual call share {share}").format(share=_pct(share))]
        for pop, ks in (snap.key_share or {}).get(self.track, {}).items():
            if ks.get("keys"):
                keys.append(self.tr("{population}: {domain}/{keys} keys on domain").format(
                    population=pop, domain=ks.get("domain", 0), keys=ks.get("keys", 0)))
        self.keys_label.setText(" · ".join(keys))
        if s.overrides:
            self.lock_label.setText(self.tr("🔒 set by the environment: {variables}").format(
                variables=", ".join(sorted(s.overrides.values()))))
        self.lock_label.setVisible(bool(s.overrides))
        if g is None:
            self.gate_label.setText(self.tr("Stage gate: –"))
            self.gate_table.show_checks(())
        else:
            checks = [c for c in g.checks if c.name != "next_stage"]
            if g.next is None:
                head = self.tr("Stage gate at 100 %: complete") if g.complete else self.tr(
                    "Stage gate at 100 %: holding until the track is complete")
            else:
                verdict = self.tr("PASSED") if g.passed else self.tr("holding")
                head = self.tr("Stage gate {current} % → {next} %: {verdict}").format(
                    current=g.current, next=g.next, verdict=verdict)
            if g.needs:
                head += " — " + self.tr("still needs {n} item(s)").format(n=len(g.needs))
            self.gate_label.setText(head)
            self.gate_table.show_checks(checks)
        self.show_needs(snap.health)
        cl = snap.checklists.get(self.track)
        self.checklist_label.setVisible(cl is not None)
        self.checklist_table.setVisible(cl is not None)
        if cl is not None:
            state = self.tr("complete") if cl.complete else (self.tr("FAILED") if cl.failed else self.tr("in progress"))
            self.checklist_label.setText(self.tr("Rollback checklist (verified): {state}").format(state=state))
            self.checklist_table.show_checks(cl.checks)
        reps = (getattr(snap, "reports", None) or {}).get(self.track, [])
        self.reports_label.setText(self.tr("Open problem reports: {n} (they hold the gate)").format(n=len(reps))
                                   if reps else self.tr("Open problem reports: none"))
        self.reports_table.setRowCount(len(reps))
        for r, rep in enumerate(reps):
            for c, text in enumerate((str(rep["id"]), f"{rep['stage']} %", rep.get("operator") or "–", rep["text"])):
                item = self.reports_table.item(r, c)
                if item is None:
                    self.reports_table.setItem(r, c, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)
        self.resolve_btn.setEnabled(bool(reps))
        self.update_buttons(snap)

    def show_needs(self, health: Any) -> None:
        """The calls each operation still needs before health can judge it (hidden when none does)."""
        tracks = (health.as_dict() if hasattr(health, "as_dict") else dict(health or {})).get("tracks") or {}
        n = self.needs_table.show_needs(tracks.get(self.track))
        self.needs_label.setText(self.tr("Health cannot judge {n} operation(s) yet: calls still needed "
                                         "in one window").format(n=n))
        self.needs_label.setVisible(n > 0)
        self.needs_table.setVisible(n > 0)

    def update_buttons(self, snap: Any) -> None:
        s, g = self.settings, self.gate
        has = s is not None
        locked = bool(s is not None and {"use_domain", "percent"} & set(s.locked_fields()))
        at_end = g is not None and g.next is None
        self.advance_btn.setVisible(not at_end)  # no "Advance to 10 %" on a track at 100 %
        self.override_btn.setVisible(not at_end)
        if g is not None and g.next is not None:
            self.advance_btn.setText(self.tr("Advance to {0} %").format(g.next))
        ok = bool(has and g is not None and g.passed and not locked and not s.latched)
        self.advance_btn.setEnabled(ok)
        self.advance_btn.setToolTip(self.tr("locked by the environment") if locked else
                                    "" if ok else self.tr("the stage gate holds: see the checks"))
        self.override_btn.setEnabled(bool(has and g is not None and not ok and not locked and not s.latched))
        latched = bool(s is not None and s.latched)
        self.rollback_btn.setEnabled(has and not latched)
        self.resume_btn.setVisible(latched)
        self.resume_btn.setEnabled(has and latched)
        self.report_btn.setEnabled(has)

    def _resolve_selected(self) -> None:
        rows = sorted({i.row() for i in self.reports_table.selectedItems()})
        if not rows:
            rows = [0] if self.reports_table.rowCount() else []
        for r in rows:
            item = self.reports_table.item(r, 0)
            if item is not None:
                self.page.resolve_report(int(item.text()), note=None)


class RolloutPage(RefreshWhileVisible, QWidget):
    """What the integrator needs to move the station between implementations, track by track."""

    snapshotShown = Signal(object)
    actionFinished = Signal(str, bool, str)  # what, ok, message
    verifyFinished = Signal(object)  # VerifyReport or error text
    verifyProgress = Signal(object)  # StepProgress of the step now running
    rehearseFinished = Signal(object)  # RehearsalResult or error text

    def __init__(self, station: StationPort, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.snapshot: Any = None
        self._loading = False
        self.verifying = False
        self.rehearsing = False

        self.stage_label = QLabel(self.tr("Rollout: –"))
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        self.stage_label.setFont(f)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        self.verify_btn = QPushButton(self.tr("Run verification"))
        self.verify_btn.clicked.connect(self.verify)
        self.rehearse_btn = QPushButton(self.tr("Rehearse a cameras rollback"))
        self.rehearse_btn.setToolTip(self.tr("decision point 2: roll the cameras track back on a scratch station "
                                             "and verify that no domain code runs afterwards"))
        self.rehearse_btn.clicked.connect(lambda: self.rehearse("cameras"))
        self.rollback_all_btn = QPushButton(self.tr("Roll back all tracks"))
        self.rollback_all_btn.setStyleSheet("QPushButton { color: #b71c1c; font-weight: bold; }")
        self.rollback_all_btn.clicked.connect(lambda: self.rollback("all", confirm=True))
        head = QVBoxLayout()
        head.addWidget(self.stage_label)
        head.addWidget(self.detail_label)
        btns = QHBoxLayout()
        btns.addWidget(self.verify_btn)
        btns.addWidget(self.rehearse_btn)
        btns.addStretch(1)
        btns.addWidget(self.rollback_all_btn)
        head.addLayout(btns)

        self.panels = {t: TrackPanel(t, self) for t in ("rules", "cameras")}
        tracks = QWidget()
        tl = QHBoxLayout(tracks)
        tl.setContentsMargins(0, 0, 0, 0)
        for p in self.panels.values():
            tl.addWidget(p, 1)

        self.health_label = QLabel(self.tr("Health: –"))
        self.health_table = _ChecksTable()
        self.ops_table = QTableWidget(0, 8)
        self.ops_table.setHorizontalHeaderLabels([self.tr("Operation"), self.tr("Path"), self.tr("Calls"), self.tr("Errors"), self.tr("Fallbacks"),
                                                  self.tr("P50 ms"), self.tr("P95 ms"), self.tr("P99 ms")])
        self.ops_table.verticalHeader().setVisible(False)
        self.ops_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.ops_table.horizontalHeader().setStretchLastSection(True)
        self.ops_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.verify_progress = QProgressBar()
        self.verify_progress.setRange(0, 0)
        self.verify_progress.hide()
        self.verify_step_label = QLabel()
        self.verify_step_label.hide()
        self.cancel_verify_btn = QPushButton(self.tr("Cancel"))
        self.cancel_verify_btn.setToolTip(self.tr("stop the verification before its next step; nothing is recorded"))
        self.cancel_verify_btn.clicked.connect(self.cancel_verify)
        self.cancel_verify_btn.hide()
        self._verify_task: Any = None
        self.verify_out = QPlainTextEdit()
        self.verify_out.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.verify_out.setFont(mono)
        self.verify_out.setPlaceholderText(self.tr("Verification runs every operation on a scratch station, forced to legacy and to domain, and compares the answers."))
        self.last_verify_label = QLabel()
        self.last_verify_label.setWordWrap(True)

        bottom_left = QWidget()
        bl = QVBoxLayout(bottom_left)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.health_label)
        bl.addWidget(self.health_table, 1)
        bl.addWidget(QLabel(self.tr("Calls in the health window")))
        bl.addWidget(self.ops_table, 1)
        bottom_right = QWidget()
        br = QVBoxLayout(bottom_right)
        br.setContentsMargins(0, 0, 0, 0)
        br.addWidget(self.last_verify_label)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.verify_progress, 1)
        progress_row.addWidget(self.cancel_verify_btn)
        br.addLayout(progress_row)
        br.addWidget(self.verify_step_label)
        br.addWidget(self.verify_out, 1)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(bottom_left)
        bottom.addWidget(bottom_right)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(tracks)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addWidget(split, 1)

        self._refresh_while_visible(REFRESH_MS, self.refresh)
        self._update_buttons()

    # ------------------------------------------------------------ refresh

    def _read_snapshot(self) -> Any:
        return self.station.rollout_snapshot()

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True

        def done(snap: Any) -> None:
            self._loading = False
            self.show_snapshot(snap)

        def failed(err: BaseException) -> None:
            self._loading = False
            self.detail_label.setText(self.tr("could not read the rollout state: {err}").format(err=err))

        self.tasks.submit("rollout snapshot", self._read_snapshot, on_ok=done, on_error=failed, quiet=True,
                          owner=self)

    def show_snapshot(self, snap: Any) -> None:
        self.snapshot = snap
        s = snap.settings
        parts = []
        for name in ("rules", "cameras"):
            t = s.track(name)
            if t.latched:
                parts.append(self.tr("{track} ROLLED BACK").format(track=translate_track(name)))
            elif t.target_percent == 0:
                parts.append(self.tr("{track} legacy").format(track=translate_track(name)))
            else:
                parts.append(self.tr("{track} {percent} %").format(track=translate_track(name), percent=t.target_percent))
        self.stage_label.setText(self.tr("Rollout: {tracks}").format(tracks=" · ".join(parts)))
        self.stage_label.setStyleSheet("color: #b71c1c;" if s.latched else "")
        detail = [self.tr("auto-rollback on") if s.auto_rollback else self.tr("auto-rollback off"),
                  self.tr("canary {rate} calls/min").format(rate=f"{s.canary_rate:g}") if s.canary_rate
                  else self.tr("canary off"),
                  self.tr("shadow rate {rate}").format(rate=f"{s.shadow_rate:g}")]
        lr = s.last_rehearsal
        if lr:
            detail.append(self.tr("last rehearsal: {ok} at {when}").format(
                ok=self.tr("passed") if lr.get("passed") else self.tr("FAILED"), when=fmt_clock(lr.get("at"))))
        else:
            detail.append(self.tr("no rollback rehearsal yet"))
        self.detail_label.setText(" · ".join(detail))
        for p in self.panels.values():
            p.show_track(snap)

        h = snap.health
        if h.analysis is not None and not any(t.active for t in h.analysis.tracks.values()):
            # as `rollout status` says it: with no track routing calls to the domain path there is nothing to judge
            self.health_label.setText(self.tr("Health over {0:.0f} s: not judged, no track routes calls to the "
                                              "domain path").format(snap.window.window_s))
            self.health_label.setStyleSheet("background: #eeeeee; padding: 3px;")
        else:
            self.health_label.setText(self.tr("Health over {0:.0f} s: {1}").format(
                snap.window.window_s, translate_status(str(h.verdict)).upper()))
            self.health_label.setStyleSheet(f"background: {STATUS_COLOURS.get(str(h.verdict), '#fff')}; padding: 3px;")
        self.health_table.show_checks(h.checks)
        rows = []
        for op, paths in sorted(snap.window.per_op.items()):
            for path, st in sorted(paths.items()):
                rows.append((op, path, st))
        self.ops_table.setRowCount(len(rows))
        for r, (op, path, st) in enumerate(rows):
            for c, text in enumerate((op, path, str(st.calls), str(st.errors), str(st.fallbacks),
                                      _num(st.p50_ms), _num(st.p95_ms), _num(st.p99_ms))):
                item = self.ops_table.item(r, c)
                if item is None:
                    self.ops_table.setItem(r, c, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)
        lv = s.last_verify
        if lv:
            ok = self.tr("passed") if lv.get("passed") else self.tr("FAILED")
            self.last_verify_label.setText(
                self.tr("Last verification: {ok} at {0} ({1} mismatches, {2} failures)").format(fmt_clock(lv.get('at')), lv.get('mismatches', 0), lv.get('failures', 0), ok=ok))
        else:
            self.last_verify_label.setText(self.tr("Last verification: never (the gate needs one)"))
        self._update_buttons()
        self.snapshotShown.emit(snap)

    def _update_buttons(self) -> None:
        self.verify_btn.setEnabled(not self.verifying)
        self.rehearse_btn.setEnabled(not self.rehearsing)
        snap = self.snapshot
        self.rollback_all_btn.setEnabled(not (snap and all(t.latched for t in snap.settings.tracks.values())))
        if snap is not None:
            for p in self.panels.values():
                p.update_buttons(snap)

    # ------------------------------------------------------------ actions

    def _finish(self, what: str) -> tuple[Callable[[Any], None], Callable[[BaseException], None]]:
        def ok(_r: Any) -> None:
            self.actionFinished.emit(what, True, "")
            self.refresh()

        def failed(err: BaseException) -> None:
            text = f"{err} [{err.code}]" if isinstance(err, OperationError) else str(err)
            self.detail_label.setText(self.tr("{what} failed: {text}").format(what=what, text=text))
            self.actionFinished.emit(what, False, text)
            self.refresh()

        return ok, failed

    def _ask(self, title: str, label: str) -> str | None:
        text, ok = QInputDialog.getText(self, title, label)
        return text.strip() if ok and text.strip() else None

    def advance(self, track: str, *, ask_override: bool = False, override_reason: str | None = None) -> None:
        """Advance ``track`` a stage; with an override reason (asked for, or given) although its gate holds."""
        if ask_override and override_reason is None:
            override_reason = self._ask(self.tr("Advance with an override"),
                                        self.tr("The stage gate holds. Why advance anyway? (recorded in the audit log)"))
            if override_reason is None:
                return
        ok, failed = self._finish("advance")
        self.tasks.submit("advance rollout", lambda: self.station.rollout_advance(
            track=track, override_reason=override_reason, actor="operator"), on_ok=ok, on_error=failed, owner=self)

    def rollback(self, track: str = "all", *, confirm: bool = True,
                 reason: str = "manual rollback from the window") -> None:
        if confirm and QMessageBox.question(
                self, self.tr("Roll back"), self.tr("Send every call of the {track} track(s) to the legacy implementation now?\nThe rollback is recorded and its checklist verified.").format(track=track)) != QMessageBox.StandardButton.Yes:
            return
        ok, failed = self._finish("rollback")
        self.tasks.submit("roll back", lambda: self.station.rollout_rollback(track=track, actor="operator",
                                                                              reason=reason),
                          on_ok=ok, on_error=failed, owner=self)

    def resume(self, track: str, *, reason: str | None) -> None:
        """Clear ``track``'s rollback latch (audited with ``reason``, asked for when None)."""
        if reason is None:
            reason = self._ask(self.tr("Resume the {track} track").format(track=track),
                               self.tr("What was found and fixed? (recorded in the audit log)"))
            if reason is None:
                return
        ok, failed = self._finish("resume")
        self.tasks.submit("resume rollout", lambda: self.station.rollout_resume(track=track, reason=reason,
                                                                                 actor="operator"),
                          on_ok=ok, on_error=failed, owner=self)

    def file_report(self, track: str, *, text: str | None, camera_id: int | None = None,
                    operator: str = "operator") -> None:
        """File a problem report against ``track``'s current stage (asked for when ``text`` is None)."""
        if text is None:
            text = self._ask(self.tr("Report a problem ({track} track)").format(track=track),
                             self.tr("What went wrong? (the track's gate holds until the report is resolved)"))
            if text is None:
                return
        ok, failed = self._finish("report")
        self.tasks.submit("file report", lambda: self.station.file_report(
            track=track, text=text, camera_id=camera_id, operator=operator), on_ok=ok, on_error=failed, owner=self)

    def resolve_report(self, report_id: int, *, note: str | None, operator: str = "operator") -> None:
        if note is None:
            note = self._ask(self.tr("Resolve report #{id}").format(id=report_id),
                             self.tr("What was found or done?"))
            if note is None:
                return
        ok, failed = self._finish("resolve")
        self.tasks.submit("resolve report", lambda: self.station.resolve_report(report_id, note=note,
                                                                                 operator=operator),
                          on_ok=ok, on_error=failed, owner=self)

    def rehearse(self, track: str = "cameras") -> None:
        if self.rehearsing:
            return
        self.rehearsing = True
        self._update_buttons()
        self.verify_out.clear()
        self.verify_progress.show()
        lines = _LineSink(self)
        lines.line.connect(self.verify_out.appendPlainText)

        def ok(result: Any) -> None:
            self.rehearsing = False
            self.verify_progress.hide()
            self.verify_out.appendPlainText(result.table())
            self.rehearseFinished.emit(result)
            self.refresh()

        def failed(err: BaseException) -> None:
            self.rehearsing = False
            self.verify_progress.hide()
            self.verify_out.appendPlainText(self.tr("the rehearsal could not run: {error}").format(error=err))
            self.rehearseFinished.emit(str(err))
            self._update_buttons()

        self.tasks.submit("rehearse rollback", lambda: self.station.rehearse_rollback(
            track=track, actor="operator", progress=lines.emit_line), on_ok=ok, on_error=failed, owner=self)

    def verify(self) -> None:
        """Run the verification on a task thread: step n of N shown, Cancel stops it between steps."""
        if self.verifying:
            return
        self.verifying = True
        self._update_buttons()
        self.verify_out.clear()
        self.verify_progress.setRange(0, 0)
        self.verify_progress.show()
        self.verify_step_label.setText(self.tr("preparing the scratch station…"))
        self.verify_step_label.show()
        self.cancel_verify_btn.setText(self.tr("Cancel"))
        self.cancel_verify_btn.setEnabled(True)
        self.cancel_verify_btn.show()
        lines = _LineSink(self)
        lines.line.connect(self.verify_out.appendPlainText)
        lines.step.connect(self._show_verify_step)

        def end() -> None:
            self.verifying = False
            self._verify_task = None
            self.verify_progress.hide()
            self.cancel_verify_btn.hide()
            self.verify_step_label.hide()

        def ok(report: Any) -> None:
            end()
            self.verify_out.appendPlainText(report.table())
            self.verifyFinished.emit(report)
            self.refresh()

        def failed(err: BaseException) -> None:
            end()
            if isinstance(err, VerificationCancelled | CancelledError):
                self.verify_out.appendPlainText(self.tr("verification cancelled: nothing was recorded for the gate"))
            else:
                self.verify_out.appendPlainText(self.tr("verification could not run: {error}").format(error=err))
            self.verifyFinished.emit(str(err))
            self._update_buttons()

        def work(task: Any) -> Any:
            return run_verify(self.station, lines.emit_line, lines.emit_step, task.cancel_event.is_set)

        self._verify_task = self.tasks.submit("verify", work, on_ok=ok, on_error=failed, owner=self, pass_task=True)

    def _show_verify_step(self, step: Any) -> None:
        if not self.verifying:
            return
        self.verify_progress.setRange(0, step.total)
        self.verify_progress.setValue(step.done)
        self.verify_step_label.setText(self.tr("step {number} of {total}: {path} {operation} ({case})").format(
            number=step.number, total=step.total, path=step.path, operation=step.op, case=step.case))
        self.verifyProgress.emit(step)

    def cancel_verify(self) -> None:
        """Stop the running verification before its next step (nothing is recorded for the gate)."""
        if self._verify_task is None:
            return
        self._verify_task.cancel_event.set()
        self.cancel_verify_btn.setEnabled(False)
        self.cancel_verify_btn.setText(self.tr("Cancelling…"))


class _LineSink(QObject):
    """Carries progress lines and steps from the verify thread to the GUI thread (queued signals)."""

    line = Signal(str)
    step = Signal(object)  # app.rollout.verify.StepProgress

    def emit_line(self, text: str) -> None:
        self.line.emit(text)

    def emit_step(self, step: Any) -> None:
        self.step.emit(step)
