"""``run_verification`` reports step n of N and stops between steps when asked (in-memory fakes)."""

from __future__ import annotations

import pytest

from app.rollout.errors import VerificationCancelled
from app.rollout.verify import SCENARIO, TOTAL_STEPS, run_verification
from tests.integration.test_verify_fakes import make_factory


def test_every_step_of_both_runs_is_reported_in_order():
    steps = []
    report = run_verification(make_factory(), on_step=steps.append, cancelled=lambda: False)
    assert report.passed, report.table()
    assert TOTAL_STEPS == 2 * len(SCENARIO)
    assert [s.number for s in steps] == list(range(1, TOTAL_STEPS + 1))
    assert {s.total for s in steps} == {TOTAL_STEPS}
    assert [s.path for s in steps] == ["legacy"] * len(SCENARIO) + ["domain"] * len(SCENARIO)
    assert [(s.op, s.case) for s in steps[len(SCENARIO):]] == [(s.op, s.case) for s in SCENARIO]
    assert steps[0].done == 0 and steps[0].text() == f"step 1 of {TOTAL_STEPS}: legacy list_status (all cameras)"


@pytest.mark.parametrize("stop_after", [3, len(SCENARIO), len(SCENARIO) + 5])
def test_a_cancel_stops_before_the_next_step_and_returns_no_report(stop_after):
    steps, builds = [], []
    stop = {"now": False}

    def on_step(s):
        steps.append(s.number)
        if s.number == stop_after:
            stop["now"] = True  # asked while step `stop_after` runs

    with pytest.raises(VerificationCancelled, match=f"before step {stop_after + 1} of {TOTAL_STEPS}"):
        run_verification(make_factory(builds=builds), on_step=on_step, cancelled=lambda: stop["now"])
    assert steps == list(range(1, stop_after + 1))  # the running step finished, no other began
    runs = 1 if stop_after <= len(SCENARIO) else 2  # cancelled between the runs: the domain run never starts
    assert len(builds) == runs
    legacy, domain = builds[-1]
    ran = stop_after - (runs - 1) * len(SCENARIO)  # steps of the last run that ran
    if ran < len(SCENARIO):  # the stations' own log: the operations of those steps and nothing after
        seen = [op for op, _ in (legacy if runs == 1 else domain).calls]
        assert seen == [st.op for st in SCENARIO[:ran]]
