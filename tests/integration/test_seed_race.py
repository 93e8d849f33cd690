"""Two stations starting on one new database seed the fleet-wide rules at the same moment: the one whose
insert loses the race (its look found no rule, the other's commit landed first) carries on, and the
rules stand once."""

from __future__ import annotations

import pytest

from app.platform.paths import sqlite_url
from app.station.wiring import seed_default_rules, seed_evidence_rule
from app.store import open_store
from app.store.repositories import RuleRepository


@pytest.mark.parametrize("seed", [seed_default_rules, seed_evidence_rule])
def test_the_station_that_loses_the_seeding_race_starts_and_the_rules_stand_once(seed, tmp_path, monkeypatch):
    url = sqlite_url(tmp_path / "fleet.db")
    first = open_store(url, station_id="00000000-0000-4000-8000-00000000000a")
    second = first.for_station("00000000-0000-4000-8000-00000000000b")
    try:
        seed(first)
        with first.uow() as uow:
            before = sorted(r.name for r in uow.rules.list())
            # the second station decided to seed before the first one's commit landed
            for key in ("alerts.default_rules_seeded", "alerts.camera_offline_seeded", "evidence.rule_seeded"):
                uow.settings.set(key, None)
            uow.commit()
        assert before
        monkeypatch.setattr(RuleRepository, "get_by_name", lambda self, name: None)
        seed(second)  # its insert hits the fleet's unique names: not an error
        monkeypatch.undo()
        with second.uow() as uow:
            assert sorted(r.name for r in uow.rules.list()) == before
    finally:
        first.dispose()
