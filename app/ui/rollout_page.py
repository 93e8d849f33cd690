"""The rollout page: stage, shares, health, the stage gate, verification and rollback.

Reads ``station.router.snapshot()`` off the GUI thread every two seconds while
visible. Advance, rollback and verify run on task threads; verify shows its
progress lines and the comparison table.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
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
from app.ui.formatting import fmt_clock
from app.ui.refresh import RefreshWhileVisible
from app.ui.tasks import TaskRunner

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


def run_verify(station: Any, progress) -> Any:
    """Run ``verify`` on a scratch station and record the result for the gate (Qt-free helper)."""
    verify = getattr(station, "verify", None)
    if verify is not None:
        return verify(progress=progress)
    from app.rollout.verify import run_verification
    from app.station import scratch_station

    report = run_verification(scratch_station, progress=progress)
    control = getattr(getattr(station, "router", None), "control", None)
    if control is not None:
        d = report.as_dict()
        control.record_verification(report.passed, len(report.mismatches), len(report.failures),
                                    actor="operator", detail={"mismatches": d.get("mismatches"),
                                                              "failures": d.get("failures"),
                                                              "errors": report.errors})
        station.router.reload()
    return report


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
            cells = [c.name, status, _num(c.value), _num(c.limit), c.message]
            for col, text in enumerate(cells):
                item = self.item(r, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(r, col, item)
                if item.text() != text:
                    item.setText(text)
                if col == 1:
                    item.setBackground(QColor(STATUS_COLOURS.get(status, "#ffffff")))

    def statuses(self) -> dict[str, str]:
        return {self.item(r, 0).text(): self.item(r, 1).text() for r in range(self.rowCount())}


class RolloutPage(RefreshWhileVisible, QWidget):
    """What the integrator needs to move the station between implementations, with evidence."""

    snapshotShown = Signal(object)
    actionFinished = Signal(str, bool, str)  # what, ok, message
    verifyFinished = Signal(object)  # VerifyReport or error text

    def __init__(self, station: Any, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = station
        self.tasks = tasks
        self.snapshot: Any = None
        self._loading = False
        self.verifying = False

        self.stage_label = QLabel(self.tr("Rollout: –"))
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        self.stage_label.setFont(f)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        self.lock_label = QLabel()
        self.lock_label.setStyleSheet("color: #6d4c41; font-style: italic;")
        self.lock_label.hide()
        self.advance_btn = QPushButton(self.tr("Advance to next stage"))
        self.advance_btn.clicked.connect(lambda: self.advance())
        self.rollback_btn = QPushButton(self.tr("Roll back now"))
        self.rollback_btn.setStyleSheet("QPushButton { color: #b71c1c; font-weight: bold; }")
        self.rollback_btn.clicked.connect(lambda: self.rollback(confirm=True))
        self.verify_btn = QPushButton(self.tr("Run verification"))
        self.verify_btn.clicked.connect(self.verify)
        head = QVBoxLayout()
        head.addWidget(self.stage_label)
        head.addWidget(self.detail_label)
        head.addWidget(self.lock_label)
        btns = QHBoxLayout()
        btns.addWidget(self.advance_btn)
        btns.addWidget(self.verify_btn)
        btns.addStretch(1)
        btns.addWidget(self.rollback_btn)
        head.addLayout(btns)

        self.health_label = QLabel(self.tr("Health: –"))
        self.health_table = _ChecksTable()
        self.gate_label = QLabel(self.tr("Stage gate: –"))
        self.gate_table = _ChecksTable()
        self.checklist_box = QGroupBox(self.tr("Rollback checklist (verified)"))
        self.checklist_table = _ChecksTable()
        QVBoxLayout(self.checklist_box).addWidget(self.checklist_table)
        self.checklist_box.hide()
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
        self.verify_out = QPlainTextEdit()
        self.verify_out.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.verify_out.setFont(mono)
        self.verify_out.setPlaceholderText(self.tr("Verification runs every operation on a scratch station, forced to legacy and to domain, and compares the answers."))
        self.last_verify_label = QLabel()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.health_label)
        ll.addWidget(self.health_table, 1)
        ll.addWidget(self.gate_label)
        ll.addWidget(self.gate_table, 1)
        ll.addWidget(self.checklist_box, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel(self.tr("Calls in the health window")))
        rl.addWidget(self.ops_table, 2)
        rl.addWidget(self.last_verify_label)
        rl.addWidget(self.verify_progress)
        rl.addWidget(self.verify_out, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addWidget(split, 1)

        self._refresh_while_visible(REFRESH_MS, self.refresh)
        self._update_buttons()

    @property
    def router(self) -> Any:
        return getattr(self.station, "router", None)

    # ------------------------------------------------------------ refresh

    def refresh(self) -> None:
        router = self.router
        if router is None:
            self.stage_label.setText(self.tr("Rollout: not available in this station"))
            return
        if self._loading:
            return
        self._loading = True

        def done(snap: Any) -> None:
            self._loading = False
            self.show_snapshot(snap)

        def failed(err: BaseException) -> None:
            self._loading = False
            self.detail_label.setText(self.tr("could not read the rollout state: {err}").format(err=err))

        self.tasks.submit("rollout snapshot", router.snapshot, on_ok=done, on_error=failed, quiet=True, owner=self)

    def show_snapshot(self, snap: Any) -> None:
        self.snapshot = snap
        s = snap.settings
        if s.latched:
            self.stage_label.setText(self.tr("Rollout: ROLLED BACK — every call on legacy"))
            self.stage_label.setStyleSheet("color: #b71c1c;")
        elif not s.use_domain:
            self.stage_label.setText(self.tr("Rollout: legacy (domain path off)"))
            self.stage_label.setStyleSheet("")
        else:
            self.stage_label.setText(self.tr("Rollout: domain {percent} % (stage {stage} %)").format(percent=s.percent, stage=snap.stage))
            self.stage_label.setStyleSheet("color: #4a148c;")
        shares = [self.tr("target {percent} % of keys").format(percent=snap.target_percent),
                  self.tr("actual call share {share}").format(share=_pct(snap.actual_call_share))]
        for pop, ks in (snap.key_share or {}).items():
            shares.append(self.tr("{population}: {domain}/{keys} keys on domain").format(
                population=pop, domain=ks.get("domain", 0), keys=ks.get("keys", 0)))
        since = s.latched_at if s.latched else s.stage_entered_at
        if since:
            shares.append(self.tr("since {time}").format(
                time=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))))
        if s.latched and s.latch_reason:
            shares.append(self.tr("reason: {reason}").format(reason=s.latch_reason))
        shares.append(self.tr("auto-rollback on") if s.auto_rollback else self.tr("auto-rollback off"))
        self.detail_label.setText(" · ".join(shares))
        locked = s.locked_fields()
        if locked:
            self.lock_label.setText(self.tr("🔒 set by the environment: {variables}").format(
                variables=", ".join(sorted(s.overrides.values()))))
        self.lock_label.setVisible(bool(locked))

        h = snap.health
        self.health_label.setText(self.tr("Health over {0:.0f} s: {1}").format(snap.window.window_s, str(h.verdict).upper()))
        self.health_label.setStyleSheet(f"background: {STATUS_COLOURS.get(str(h.verdict), '#fff')}; padding: 3px;")
        self.health_table.show_checks(h.checks)
        g = snap.gate
        if g is None:
            self.gate_label.setText(self.tr("Stage gate: –"))
            self.gate_table.show_checks(())
        elif g.next is None:
            self.gate_label.setText(self.tr("Stage gate: at {current} % — the last stage").format(current=g.current))
            self.gate_table.show_checks(g.checks)
        else:
            verdict = self.tr("PASSED") if g.passed else self.tr("holding")
            self.gate_label.setText(self.tr("Stage gate {current} % → {next} %: {verdict}").format(current=g.current, next=g.next, verdict=verdict))
            self.gate_table.show_checks(g.checks)
        cl = snap.checklist
        self.checklist_box.setVisible(cl is not None)
        if cl is not None:
            state = self.tr("complete") if cl.complete else (self.tr("FAILED") if cl.failed else self.tr("in progress"))
            self.checklist_box.setTitle(self.tr("Rollback checklist (verified): {state}").format(state=state))
            self.checklist_table.show_checks(cl.checks)
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
        snap = self.snapshot
        has = self.router is not None
        locked = bool(snap and {"use_domain", "percent"} & set(snap.settings.locked_fields()))
        gate_ok = bool(snap and snap.gate and snap.gate.passed)
        self.advance_btn.setEnabled(has and gate_ok and not locked)
        if snap and snap.gate and snap.gate.next is not None:
            self.advance_btn.setText(self.tr("Advance to {0} %").format(snap.gate.next))
        self.advance_btn.setToolTip(self.tr("locked by the environment") if locked else
                                    "" if gate_ok else self.tr("the stage gate holds: see the checks"))
        self.rollback_btn.setEnabled(has and not (snap and snap.settings.latched))
        self.verify_btn.setEnabled(has and not self.verifying)

    # ------------------------------------------------------------ actions

    def _finish(self, what: str) -> tuple:
        def ok(_r: Any) -> None:
            self.actionFinished.emit(what, True, "")
            self.refresh()

        def failed(err: BaseException) -> None:
            text = f"{err} [{err.code}]" if isinstance(err, OperationError) else str(err)
            self.detail_label.setText(self.tr("{what} failed: {text}").format(what=what, text=text))
            self.actionFinished.emit(what, False, text)
            self.refresh()

        return ok, failed

    def advance(self) -> None:
        router = self.router
        if router is None:
            return
        ok, failed = self._finish("advance")
        self.tasks.submit("advance rollout", lambda: router.advance(actor="operator"),
                          on_ok=ok, on_error=failed, owner=self)

    def rollback(self, *, confirm: bool = True, reason: str = "manual rollback from the window") -> None:
        router = self.router
        if router is None:
            return
        if confirm and QMessageBox.question(
                self, self.tr("Roll back"), self.tr("Send every call to the legacy implementation now?\nThe rollback is recorded and its checklist verified.")) != QMessageBox.StandardButton.Yes:
            return
        ok, failed = self._finish("rollback")
        self.tasks.submit("roll back", lambda: router.rollback(actor="operator", reason=reason),
                          on_ok=ok, on_error=failed, owner=self)

    def verify(self) -> None:
        if self.verifying or self.router is None:
            return
        self.verifying = True
        self._update_buttons()
        self.verify_out.clear()
        self.verify_progress.show()
        lines = _LineSink(self)
        lines.line.connect(self.verify_out.appendPlainText)

        def ok(report: Any) -> None:
            self.verifying = False
            self.verify_progress.hide()
            self.verify_out.appendPlainText(report.table())
            self.verifyFinished.emit(report)
            self.refresh()

        def failed(err: BaseException) -> None:
            self.verifying = False
            self.verify_progress.hide()
            self.verify_out.appendPlainText(self.tr("verification could not run: {error}").format(error=err))
            self.verifyFinished.emit(str(err))
            self._update_buttons()

        self.tasks.submit("verify", run_verify, self.station, lines.emit_line, on_ok=ok, on_error=failed,
                          owner=self)


class _LineSink(QObject):
    """Carries progress lines from the verify thread to the GUI thread (a queued signal)."""

    line = Signal(str)

    def emit_line(self, text: str) -> None:
        self.line.emit(text)
