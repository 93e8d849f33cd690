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
from app.ui.charts import PLOTS
from app.ui.reasons import translate_reason
from app.ui.rollout_page import RolloutPage
from app.ui.settings_dialog import _THRESHOLD_LABELS, SettingsDialog
from app.ui.tasks import TaskRunner
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
    page = RolloutPage(SimpleNamespace(router=r), tasks)
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
    assert isinstance(dlg, SettingsDialog) and dlg.router is not None
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
    else:
        assert why["rollback_latch"] == "no rollback latched" and "has not passed yet" in why["verification"]

    legends = [QCoreApplication.translate("ChartsPage", line.legend) for spec in PLOTS
               if spec.key in ("latency", "tracks", "track_latency") for line in spec.lines]
    assert len(legends) == 14
    if language == "zh_CN":
        assert "领域 P50" in legends and all(_has_cjk(t) for t in legends)
    else:
        assert "domain P50" in legends and "cameras legacy P95" in legends


def test_an_unknown_reason_is_shown_as_it_is(qapp):
    assert translate_reason("something the window has no template for") == "something the window has no template for"
