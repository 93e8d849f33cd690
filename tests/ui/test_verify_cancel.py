"""Verify from the rollout page: step n of N, and Cancel stops it between steps with nothing recorded.

A real station and the real scratch station (synthetic cameras, real workers).
"""

from __future__ import annotations

import re

import pytest

from app.rollout.verify import TOTAL_STEPS

pytestmark = pytest.mark.slow


def test_verify_shows_its_step_and_cancel_records_nothing(qtbot, window, station):
    page = window.show_page("rollout")
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
    assert station.parts().router.reload().last_verify is None
    steps = []
    page.verifyProgress.connect(lambda s: steps.append(s.number))
    page.verify()
    assert page.cancel_verify_btn.isVisibleTo(page) and page.cancel_verify_btn.isEnabled()
    assert not page.verify_btn.isEnabled()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=60_000)
    # the page says which step of how many is running
    assert page.verify_progress.maximum() == TOTAL_STEPS and page.verify_progress.value() == steps[-1] - 1
    assert re.match(rf"step {steps[-1]} of {TOTAL_STEPS}: legacy ", page.verify_step_label.text()), \
        page.verify_step_label.text()
    page.grab().save("/tmp/shots-rollout/verify_progress_en.png")  # looked at for the change
    with qtbot.waitSignal(page.verifyFinished, timeout=60_000) as sig:
        page.cancel_verify_btn.click()
        assert not page.cancel_verify_btn.isEnabled()
    msg = sig.args[0]
    assert isinstance(msg, str) and "verification cancelled" in msg, msg
    m = re.search(r"cancelled (before|in) step (\d+) of", msg)
    assert m, msg
    last = int(m.group(2)) - (m.group(1) == "before")  # the last step that began
    assert steps == list(range(1, last + 1))  # no step began after the one it stopped in or before
    assert last < TOTAL_STEPS
    assert "nothing was recorded" in page.verify_out.toPlainText()
    # nothing half-recorded: no verification for the gate, the gate still asks for one
    assert station.parts().router.reload().last_verify is None
    assert {c.name: c.status for c in station.rollout_gate("rules").checks}["verification"] == "fail"
    assert page.verify_btn.isEnabled() and not page.cancel_verify_btn.isVisibleTo(page)
    assert not page.verify_progress.isVisibleTo(page)
