"""The rollout window in Chinese: threshold labels, health reasons, check states, chart legends.

English screenshots are taken too, for a side-by-side look (saved under /tmp/shots-rollout/).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QFormLayout, QLabel

from app.rollout.metrics import DOMAIN, LEGACY
from app.rollout.settings import Thresholds
from app.ui.charts.page import PLOTS
from app.ui.common.reasons import translate_reason
from app.ui.common.tasks import TaskRunner
from app.ui.rollout.page import RolloutPage
from app.ui.window.settings_dialog import _THRESHOLD_LABELS, SettingsDialog
from app.ui.window.sysinfo import rollout_text
from tests.ui.test_i18n import catalogue_dir, chinese  # noqa: F401  (fixtures)
from tests.unit.test_rollout_router_health import Clock, scratch_router

SHOTS = Path("/tmp/shots-rollout")


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _rollout_labels(dlg: SettingsDialog) -> dict[str, str]:
    """threshold name -> the label the Rollout tab shows next to its field."""
    out = {}
    for name, w in dlg.thresholds.items():
        form = w.parentWidget().layout()
        assert isinstance(form, QFormLayout)
        row, _ = form.getWidgetPosition(w)
        label = form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
        assert isinstance(label, QLabel)
        out[name] = label.text()
    return out


def _page_with_health(qtbot):
    r, _, _ = scratch_router(env={"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "50"}, clock=Clock())
    for _ in range(80):  # camera_logs: judged on both paths; create_rule: 1 error in 12 (inconclusive)
        r.metrics.record("camera_logs", DOMAIN, 0.004)
        r.metrics.record("camera_logs", LEGACY, 0.004)
    for i in range(12):
        r.metrics.record("create_rule", DOMAIN, 0.002, error=i == 0)
    tasks = TaskRunner()
    page = RolloutPage(SimpleNamespace(rollout_snapshot=r.snapshot), tasks)  # the one read the page makes
    qtbot.addWidget(page)
    page.resize(1400, 900)
    page.show()
    page.show_snapshot(r.snapshot())
    return page, r, tasks


def _grab(widget, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert widget.grab().save(str(SHOTS / name))


def test_every_rollout_threshold_has_a_human_label():
    assert set(Thresholds._LIMITS) <= set(_THRESHOLD_LABELS)
    for name in ("failure_limit", "latency_floor_ms", "min_failures", "inconclusive_warn_s"):
        assert _THRESHOLD_LABELS[name][0] != name


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_rollout_window_speaks_the_language(qtbot, request, language):
    if language == "zh_CN":
        request.getfixturevalue("chinese")
    window = request.getfixturevalue("window")  # after the translation: the window is built in the language
    dlg = window.settings_dialog()
    qtbot.waitUntil(lambda: dlg._rollout_loaded is not None, timeout=10_000)
    assert isinstance(dlg, SettingsDialog) and dlg.thresholds
    assert all(w.isEnabled() for w in dlg.thresholds.values()), "the rollout tab is editable"
    labels = _rollout_labels(dlg)
    assert {"failure_limit", "latency_floor_ms", "min_failures", "inconclusive_warn_s"} <= set(labels)
    for name, text in labels.items():
        assert text != name, f"{name} has no label"
        if language == "zh_CN":
            assert _has_cjk(text), f"{name}: {text!r} is not translated"
        else:
            assert text == _THRESHOLD_LABELS[name][0]
    dlg.tabs.setCurrentIndex(0)
    dlg.resize(900, 1000)
    _grab(dlg, f"settings_rollout_{language}.png")

    page, r, tasks = _page_with_health(qtbot)
    try:
        table = page.health_table
        rows = {table.item(i, 0).text(): (table.item(i, 1).text(), table.item(i, 4).text())
                for i in range(table.rowCount())}
        assert table.statuses()["camera_logs: latency"] == "pass"  # the check's own word in any language
        status, why = rows["camera_logs: latency"]
        err_status, err_why = rows["create_rule: error_rate"]
        if language == "zh_CN":
            assert status == "通过" and "领域 P95" in why and "在界限内" in why
            limit = table.item([table.item(i, 0).text() for i in range(table.rowCount())].index(
                "camera_logs: latency"), 3).text()
            assert limit.startswith("领域 P95 <= 1.5 倍旧实现 P95"), limit
            assert "尚无定论" in err_why and "1/12" in err_why  # the numbers kept
            assert page.panels["cameras"].needs_table.horizontalHeaderItem(1).text() == "还需领域调用"
        else:
            assert status == "pass" and why.startswith("camera_logs: domain P95") and "within the bound" in why
            assert "inconclusive" in err_why and "1/12" in err_why
        assert err_status in ("inconclusive", "无定论")
        verdict = page.health_label.text()
        assert ("INCONCLUSIVE" not in verdict) if language == "zh_CN" else verdict.endswith("INCONCLUSIVE"), verdict
        _grab(page, f"rollout_page_{language}.png")
    finally:
        tasks.shutdown()
        r.close()

    # the stage gate's reasons on the station's own rollout page
    rp = window.show_page("rollout")
    qtbot.waitUntil(lambda: rp.snapshot is not None, timeout=10_000)
    gt = rp.panels["rules"].gate_table
    why = {gt.item(i, 0).text(): gt.item(i, 4).text() for i in range(gt.rowCount())}
    if language == "zh_CN":
        assert why["rollback_latch"] == "未锁定回滚" and "尚未通过" in why["verification"]
        assert why["open_reports"] == "没有未解决的问题报告"
        header = rp.stage_label.text()
        assert "规则" in header and "摄像头" in header and "rules" not in header and "cameras" not in header, header
    else:
        assert why["rollback_latch"] == "no rollback latched" and "has not passed yet" in why["verification"]
    # the status bar's rollout text and tooltip
    s = rp.snapshot.settings
    text, tip = rollout_text(s.with_track("cameras", latched=True, latch_reason="manual rollback"))
    if language == "zh_CN":
        assert rollout_text(s)[0] == "旧实现"
        assert text == "规则 旧实现 · 摄像头 已回滚", text
        assert tip == "规则：所有调用都走旧实现; 摄像头：回滚已锁定：manual rollback", tip
    else:
        assert rollout_text(s)[0] == "legacy" and text == "rules legacy · cameras ROLLED BACK"

    legends = [QCoreApplication.translate("ChartsPage", line.legend) for spec in PLOTS
               if spec.key in ("latency", "tracks", "track_latency") for line in spec.lines]
    assert len(legends) == 14
    if language == "zh_CN":
        assert "领域 P50" in legends and all(_has_cjk(t) for t in legends)
    else:
        assert "domain P50" in legends and "cameras legacy P95" in legends


def test_an_unknown_reason_is_shown_as_it_is(qapp):
    assert translate_reason("something the window has no template for") == "something the window has no template for"


# ---------------------------------------------------------------- every stage-gate and checklist text


def _gate_and_checklist_texts(store) -> list[str]:
    """The reasons and limits the rollout code writes for the gate, decision point 2 and the rollback
    checklist, from real states (a store, a router, synthetic windows), in English."""
    from app import __version__
    from app.rollout.health import GateEvidence, RollbackEvidence, evaluate_gate, rollback_checklist
    from app.rollout.metrics import PathStats
    from app.rollout.settings import DAY
    from tests.unit.test_rollout_gate import (
        NOW,
        VERIFIED,
        Clock,
        every,
        make,
        rules_at_100_complete,
        settings_at,
        window,
    )

    texts: list[str] = []

    def add(checks) -> None:
        for c in checks:
            texts.append(c.message)
            if isinstance(c.limit, str) and c.limit.startswith("<"):  # not a version number
                texts.append(c.limit)

    # the cameras track at 0 %, latched, two open reports, verified and rehearsed on another version
    old = {**VERIFIED, "version": "0.0.1"}
    s = settings_at("rules", 10, 3600, last_verify=old,
                    last_rehearsal={"at": NOW - 5, "passed": True, "track": "cameras", "version": "0.0.1"})
    s = s.with_track("cameras", latched=True, latch_reason="auto-rollback (cameras): camera_logs: no domain calls")
    r, control, *_ = make(store, wall=Clock())
    dp2 = control.decision_point_2(s, None)
    g = evaluate_gate(s, "cameras", GateEvidence(window({}), open_reports=("a", "b"), version=__version__,
                                                 decision_point_2=dp2), NOW)
    add(g.checks)
    for lr in (None, {"at": NOW, "passed": False, "track": "cameras", "failed": ["keys_on_domain_zero"]},
               {"at": NOW - 100, "passed": True, "track": "cameras", "version": control.version},
               {"at": NOW, "passed": True, "track": "cameras", "version": control.version}):
        add([control.rehearsal_check(s.with_changes(last_rehearsal=lr), NOW - 50)])
    add(control.decision_point_2(s.with_changes(last_verify=VERIFIED), None))
    # the rules track at 10 %: one open report, errors in few calls (some by the canary), then in many
    s = settings_at("rules", 10, 3600, last_verify=VERIFIED)
    add(evaluate_gate(s, "rules", GateEvidence(window({"create_rule": (3, 3)}, d_err=1), canary_calls=2,
                                               open_reports=("a",), version=__version__), NOW).checks)
    add(evaluate_gate(s, "rules", GateEvidence(window(every("rules", 60, 60), d_err=3, d_ms=80.0),
                                               version=__version__), NOW).checks)
    add(evaluate_gate(s, "rules", GateEvidence(window(every("rules", 60, 60)), version=__version__), NOW).checks)
    s100 = settings_at("rules", 100, 3600, last_verify=VERIFIED)
    add(evaluate_gate(s100, "rules", GateEvidence(window(every("rules", 60, 0)), version=__version__), NOW).checks)
    # the rollback checklist: failing, pending (applied late, calls in flight), passed, legacy unjudged
    lat = s.with_track("cameras", latched=True)
    bad = PathStats(calls=40, errors=20)
    add(rollback_checklist(s.with_track("cameras", percent=10, use_domain=True), "cameras",
                           RollbackEvidence(3, 4, 2, bad, 10.0)).checks)
    add(rollback_checklist(lat, "cameras", RollbackEvidence(0, 0, 0, PathStats(calls=2), 10.0, 3, 1.5)).checks)
    add(rollback_checklist(lat, "cameras", RollbackEvidence(0, 0, 0, PathStats(calls=40), 1e6, 0, 0.5)).checks)
    add(rollback_checklist(lat, "cameras", RollbackEvidence(0, 0, 0, PathStats(), 1e6)).checks)
    r.close()
    # decision point 2 with the rules track complete (its plan held at 100 %)
    r, control, _, _, _, wall = make(store)
    rules_at_100_complete(r, control, wall)
    wall.t += 7 * DAY + 1
    add(control.decision_point_2())
    r.close()
    return texts


NEW_TEMPLATES = [t for t in __import__("app.ui.common.reasons", fromlist=["TEMPLATES"]).TEMPLATES
                 if t.startswith(("{msg}", "a rollback of", "1 open", "{n} open", "{k} errors", "domain error rate {rate}",
                                  "domain P95 {d} ms is", "no legacy baseline", "decision point 2",
                                  "the rules track is", "the last `edge-station verify` ran", "target domain",
                                  "{n} current", "{n} domain calls", "no domain calls", "{n} shadow", "no shadow",
                                  "legacy error rate", "{n} legacy", "<", "<="))]


def _templates_used(text: str):
    """The templates the window translates ``text`` by, the nested reasons' included."""
    from app.ui.common.reasons import _NESTED, TEMPLATES, _pattern

    for t in TEMPLATES:
        m = _pattern(t).match(text)
        if m:
            yield t
            for name in _NESTED & m.groupdict().keys():
                parts, i = m.group(name).split("; "), 0
                while i < len(parts):  # the longest run of parts that is one known reason, as the window does
                    j = next((j for j in range(len(parts), i, -1) if list(_templates_used("; ".join(parts[i:j])))),
                             i + 1)
                    yield from _templates_used("; ".join(parts[i:j]))
                    i = j
            return


@pytest.mark.usefixtures("chinese")
def test_every_gate_and_checklist_text_is_shown_translated(tmp_path):
    from app.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    try:
        texts = _gate_and_checklist_texts(store)
    finally:
        store.dispose()
    assert len(NEW_TEMPLATES) >= 30
    used = {t for x in texts for t in _templates_used(x)}
    unmatched = [t for t in NEW_TEMPLATES if t not in used]
    assert not unmatched, f"no reason of the rollout code produced these templates: {unmatched}"
    for text in texts:
        shown = translate_reason(text)
        assert _has_cjk(shown), f"shown in English in zh_CN: {text!r}"
        assert "rules track" not in shown and "cameras track" not in shown, shown
        for command in __import__("re").findall(r"`[^`]+`", text):
            assert command in shown, f"the command {command} changed in {shown!r}"
        for number in __import__("re").findall(r"\d+(?:\.\d+)?", text):
            assert number in shown, f"{number} lost from {text!r}: {shown!r}"
