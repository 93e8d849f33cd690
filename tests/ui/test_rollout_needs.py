"""The rollout page lists, per track and per operation, the calls health still needs to judge it.

A real router (fake implementations, an injectable clock) fills its health window call by call;
the page is fed each new snapshot and must show exactly what the snapshot says is still needed.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.rollout.metrics import DOMAIN, LEGACY
from app.ui.common.tasks import TaskRunner
from app.ui.rollout.page import RolloutPage
from tests.unit.test_rollout_router_health import Clock, scratch_router

BOTH = {"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "50"}
RULES_ONLY = {"USE_DOMAIN_SERVICE_RULES": "1", "ROLLOUT_PERCENT_RULES": "50"}


@pytest.fixture
def page_and_router(qtbot, request):
    r, _, _ = scratch_router(env=getattr(request, "param", BOTH), clock=Clock())
    tasks = TaskRunner()
    page = RolloutPage(SimpleNamespace(rollout_snapshot=r.snapshot), tasks)  # the one read the page makes
    qtbot.addWidget(page)
    page.resize(1400, 900)
    page.show()
    yield page, r
    tasks.shutdown()
    r.close()


def _show(page, r):
    snap = r.snapshot()
    page.show_snapshot(snap)
    return snap.health.as_dict()


def test_needs_follow_the_health_window_per_track_and_operation(qtbot, page_and_router):
    page, r = page_and_router
    rules, cams = page.panels["rules"], page.panels["cameras"]
    h = _show(page, r)
    # nothing called yet: every operation of both active tracks still needs domain calls
    for panel in (rules, cams):
        ops = h["tracks"][panel.track]["ops"]
        assert panel.needs_table.isVisibleTo(panel) and panel.needs_label.isVisibleTo(panel)
        assert set(panel.needs_table.needs()) == {op for op, o in ops.items()
                                                  if any(v is None or v > 0 for v in o["needs"].values())}
        assert set(panel.needs_table.needs()) == set(ops)
    need = h["tracks"]["rules"]["ops"]["create_rule"]["needs"][DOMAIN]
    assert need > 0 and rules.needs_table.needs()["create_rule"][0] == f"{need:,}"

    # one call short of what the page said: still listed, with what is left
    for _ in range(need - 1):
        r.metrics.record("create_rule", DOMAIN, 0.002)
    h = _show(page, r)
    left = h["tracks"]["rules"]["ops"]["create_rule"]["needs"][DOMAIN]
    assert left and rules.needs_table.needs()["create_rule"][0] == f"{left:,}"
    for _ in range(left):
        r.metrics.record("create_rule", DOMAIN, 0.002)
    _show(page, r)
    assert "create_rule" not in rules.needs_table.needs()
    assert "update_rule" in rules.needs_table.needs() and rules.needs_table.isVisibleTo(rules)
    assert set(cams.needs_table.needs()) == set(h["tracks"]["cameras"]["ops"])  # the other track unchanged

    # the last rule operation judged: nothing is needed on the rules track, so its list goes away
    while (n := r.snapshot().health.as_dict()["tracks"]["rules"]["ops"]["update_rule"]["needs"].get(DOMAIN)):
        for _ in range(n):
            r.metrics.record("update_rule", DOMAIN, 0.002)
    _show(page, r)
    assert rules.needs_table.rowCount() == 0
    assert not rules.needs_table.isVisibleTo(rules) and not rules.needs_label.isVisibleTo(rules)
    assert cams.needs_table.isVisibleTo(cams)

    # a camera operation with a legacy baseline short of the latency sample: legacy calls are named too
    for _ in range(3):
        r.metrics.record("camera_logs", LEGACY, 0.002)
    h = _show(page, r)
    legacy_left = h["tracks"]["cameras"]["ops"]["camera_logs"]["needs"].get(LEGACY)
    if legacy_left:
        assert cams.needs_table.needs()["camera_logs"][1] == f"{legacy_left:,}"
    page.grab().save("/tmp/shots-rollout/needs_en.png")


@pytest.mark.parametrize("page_and_router", [RULES_ONLY], indirect=True)
def test_a_track_at_legacy_lists_no_needs(qtbot, page_and_router):
    page, r = page_and_router
    assert r.settings.track("cameras").target_percent == 0
    _show(page, r)
    cams = page.panels["cameras"]
    assert cams.needs_table.rowCount() == 0 and not cams.needs_table.isVisibleTo(cams)
    assert page.panels["rules"].needs_table.rowCount() > 0


def test_a_per_operation_value_shows_its_fewest_calls_and_every_operation_in_the_tooltip(qtbot):
    from app.rollout.health import Check, Status
    from app.ui.rollout.page import _ChecksTable

    table = _ChecksTable()
    qtbot.addWidget(table)
    counts = {"start_camera": 16, "stop_camera": 3, "camera_status": 240}
    table.show_checks([Check("coverage", Status.PENDING, counts, 10, "coverage: need 10 ... too few: stop_camera 3")])
    value = table.item(0, 2)
    assert value.text() == "3"  # the fewest, against the limit 10 beside it (not the whole dictionary)
    assert value.toolTip().splitlines() == ["start_camera: 16", "stop_camera: 3", "camera_status: 240"]
    assert table.item(0, 4).toolTip() == table.item(0, 4).text()  # a cut reason shows whole on hover
