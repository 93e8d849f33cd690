"""Stations as a rollout population, without a station: the fleet share (exact, sticky, monotonic)
on fake station ids, the fleet gate and the rollback's progress as pure functions with an injected
clock, the fleet settings' tolerance, the station's routing outside the share, and the station-side
rollback agent (app/fleet/rollback.py) with fakes for its store."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.fleet import StationInfo, StationState
from app.domain.fleet_rollout import (
    K_FLEET_SALT,
    FleetRolloutState,
    fleet_gate,
    fleet_key,
    is_inside,
    population_ids,
    rollback_progress,
    share_ids,
    station_passes,
)
from app.fleet.rollback import FleetRollback, merge_acks
from app.rollout.bucketing import Population
from app.rollout.decision import R_PERCENT_IN, R_PERCENT_OUT, decide
from app.rollout.health import Check, Checklist, Status
from app.rollout.settings import TrackSettings
from app.station.fleet import checklist_verdict

T0 = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
GONE = 20.0
SALT = "f1eet5a1t"


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


def info(sid: str, name: str, *, beat: datetime = T0, state: StationState = StationState.RUNNING,
         stages: dict[str, Any] | None = None) -> StationInfo:
    return StationInfo(id=sid, name=name, host="box", pid=1, version="0.1.0", state=state, started_at=T0,
                       heartbeat_at=beat, station_clock_at=beat, stopped_at=None, cameras_up=0, cameras_total=0,
                       stages=stages or {}, health="ok", problems=(), replaced_by=None)


def state(**tracks: dict[str, Any]) -> FleetRolloutState:
    stored: dict[str, Any] = {K_FLEET_SALT: SALT}
    for track, fields_ in tracks.items():
        for k, v in fields_.items():
            stored[fleet_key(track, k)] = v
    return FleetRolloutState.from_stored(stored)


GATE_OK = {"passed": True, "complete": False, "current": 10, "next": 25, "needs": []}
GATE_HOLD = {"passed": False, "complete": False, "current": 10, "next": 25,
             "needs": ["held 2 h of 24 h at 10 %", "3 domain calls of camera_status (10 needed)"]}


# ---------------------------------------------------------------- the fleet share


def test_ten_percent_of_twenty_stations_is_exactly_two_and_the_same_two_at_twenty_five():
    pop = ids(20)
    at10 = share_ids(SALT, pop, 10)
    at25 = share_ids(SALT, pop, 25)
    assert len(at10) == 2 and len(at25) == 5
    assert at10 <= at25  # the same 2 stay inside
    assert share_ids(SALT, list(reversed(pop)), 10) == at10  # the order they are listed in does not matter
    assert share_ids(SALT, pop, None) == frozenset(pop)  # no fleet rollout: every station
    assert share_ids(SALT, pop, 0) == frozenset() and share_ids(SALT, pop, 100) == frozenset(pop)


def test_the_share_only_grows_with_the_percent_and_is_exact_for_every_percent():
    pop = ids(37)
    prev: frozenset[str] = frozenset()
    for p in range(0, 101):
        got = share_ids(SALT, pop, p)
        assert prev <= got, f"a station left the share going to {p} %"
        want = 0 if p == 0 else max(1, (p * 37 * 2 + 100) // 200)
        assert len(got) == want, (p, len(got))
        prev = got


def test_the_share_is_the_cameras_bucketing_keyed_by_station_id_and_sticky_across_restarts():
    pop = ids(20)
    assert share_ids(SALT, pop, 25) == Population(SALT, pop).domain_keys(25)
    assert share_ids(SALT, pop, 25) == share_ids(SALT, list(pop), 25)  # same salt, same ids: same stations
    assert share_ids("another-salt", pop, 25) != share_ids(SALT, pop, 25)  # the salt is what ranks them


def test_a_station_joining_moves_at_most_one_station_across_the_cut():
    pop = ids(20)
    before = share_ids(SALT, pop, 50)
    after = share_ids(SALT, [*pop, str(uuid.UUID(int=999))], 50)  # 10 of 20 -> round(10.5) = 11 of 21
    assert len(after - before) <= 1 and len(before - after) <= 1


def test_membership_of_one_station():
    pop = ids(20)
    st = state(cameras={"percent": 10})
    inside = [s for s in pop if is_inside(st, "cameras", s, pop)]
    assert len(inside) == 2 and set(inside) == share_ids(SALT, pop, 10)
    assert all(is_inside(st, "rules", s, pop) for s in pop)  # no fleet rollout of rules: every station
    assert is_inside(st, "cameras", None, pop)  # a station outside any fleet (no id): inside
    assert not any(is_inside(state(cameras={"percent": 0}), "cameras", s, pop) for s in pop)


def test_the_replaced_stations_are_not_part_of_the_population():
    a, b, c = ids(3)
    stations = [info(a, "a"), info(b, "b", state=StationState.STOPPED), info(c, "c~old", state=StationState.REPLACED)]
    assert population_ids(stations) == [a, b]


def test_fleet_settings_that_a_hand_edit_spoiled_read_as_no_fleet_rollout():
    st = FleetRolloutState.from_stored({fleet_key("cameras", "percent"): 140, fleet_key("rules", "percent"): "10",
                                        fleet_key("cameras", "rollback"): {"generation": "2"},
                                        fleet_key("rules", "rollback"): {"generation": 3, "issued_at": "garbage"}})
    assert st.track("cameras").percent is None and st.track("rules").percent is None
    assert st.track("cameras").generation == 0
    assert st.track("rules").generation == 3 and st.track("rules").issued_at is None
    assert not st.any_share


def test_a_station_outside_the_share_routes_as_at_zero_percent():
    pop = Population("salt", [f"camera:{i}" for i in range(1, 9)])
    inside = TrackSettings("cameras", use_domain=True, percent=100)
    outside = replace(inside, fleet_in=False, fleet_percent=10)
    assert decide(inside, pop, "camera:3").reason == R_PERCENT_IN
    d = decide(outside, pop, "camera:3")
    assert d.path == "legacy" and d.reason == R_PERCENT_OUT and d.percent == 0
    assert outside.target_percent == 100 and outside.effective_percent == 0  # its own percent is kept


# ---------------------------------------------------------------- the fleet gate (pure, injected clock)


def _fleet(n: int, gates: dict[int, dict[str, Any] | None], *, beat: dict[int, datetime] | None = None,
           stopped: set[int] | None = None) -> list[StationInfo]:
    out = []
    for i, sid in enumerate(ids(n)):
        stages = {"cameras": {"stage": 10, "percent": 10, "latched": False}}
        if gates.get(i) is not None:
            stages["cameras"]["gate"] = gates[i]
        out.append(info(sid, f"s{i:02d}", beat=(beat or {}).get(i, T0), stages=stages,
                        state=StationState.STOPPED if i in (stopped or set()) else StationState.RUNNING))
    return out


def test_the_fleet_gate_passes_when_every_station_on_the_stage_passes_its_own_gate():
    st = state(cameras={"percent": 25})
    stations = _fleet(8, dict.fromkeys(range(8), GATE_OK))
    g = fleet_gate("cameras", st, stations, T0 + timedelta(seconds=5), GONE)
    assert g.passed and g.needs == []
    assert len(g.on_stage) == 2  # 25 % of 8


def test_the_fleet_gate_names_the_station_that_holds_it_and_why():
    st = state(cameras={"percent": 25})
    stations = _fleet(8, dict.fromkeys(range(8), GATE_OK))
    inside = share_ids(SALT, [s.id for s in stations], 25)
    holder = next(i for i, s in enumerate(stations) if s.id in inside)
    outsider = next(i for i, s in enumerate(stations) if s.id not in inside)
    stations[holder] = _fleet(8, {holder: GATE_HOLD})[holder]
    stations[outsider] = _fleet(8, {outsider: GATE_HOLD})[outsider]  # outside the share: does not count
    g = fleet_gate("cameras", st, stations, T0, GONE)
    assert not g.passed
    assert g.needs == [f"station s{holder:02d}: its gate at 10 % needs: held 2 h of 24 h at 10 %; "
                       "3 domain calls of camera_status (10 needed)"]


def test_a_gone_station_inside_holds_the_gate_and_a_stopped_one_does_not():
    st = state(cameras={"percent": 50})
    stations = _fleet(4, dict.fromkeys(range(4), GATE_OK))
    inside = [i for i, s in enumerate(stations) if s.id in share_ids(SALT, [x.id for x in stations], 50)]
    now = T0 + timedelta(seconds=GONE + 1)  # the injected clock: every heartbeat at T0 is older than GONE ...
    fresh = {i: now for i in range(4) if i != inside[0]}  # ... but one inside station's
    stations = _fleet(4, dict.fromkeys(range(4), GATE_OK), beat=fresh)
    g = fleet_gate("cameras", st, stations, now, GONE)
    assert [s.name for s in g.holders] == [f"s{inside[0]:02d}"] and "gone (last heartbeat 21 s ago)" in g.needs[0]
    # the same station stopped cleanly: not on the stage, nothing holds
    stations = _fleet(4, dict.fromkeys(range(4), GATE_OK), beat=fresh, stopped={inside[0]})
    assert fleet_gate("cameras", st, stations, now, GONE).passed
    # every inside station stopped: nobody was judged, the gate holds
    stations = _fleet(4, dict.fromkeys(range(4), GATE_OK), beat=fresh, stopped=set(inside))
    g = fleet_gate("cameras", st, stations, now, GONE)
    assert not g.passed and "none of their gates can be judged" in g.needs[-1]


def test_a_station_without_a_reported_gate_or_latched_holds_the_gate():
    st = state(cameras={"percent": 100})
    stations = _fleet(2, {0: GATE_OK, 1: None})
    g = fleet_gate("cameras", st, stations, T0, GONE)
    assert [s.name for s in g.holders] == ["s01"] and "has not reported its gate" in g.needs[0]
    stations[1] = replace(stations[1], stages={"cameras": {"latched": True, "gate": GATE_OK}})
    assert "rolled back (latched)" in fleet_gate("cameras", st, stations, T0, GONE).needs[0]
    assert station_passes({"passed": False, "complete": True, "current": 100, "next": None, "needs": []})[0]


def test_an_empty_share_passes():
    assert fleet_gate("cameras", state(cameras={"percent": 0}), _fleet(5, {}), T0, GONE).passed


# ---------------------------------------------------------------- the rollback's progress


def test_rollback_progress_lists_who_applied_it_and_who_applies_it_on_return():
    st = state(cameras={"rollback": {"generation": 2, "issued_at": T0.isoformat(), "reason": "drill"}})
    a, b, c = ids(3)
    applied = {"cameras": {"fleet": {"rollback": {"generation": 2, "checklist": {"complete": True}}}}}
    older = {"cameras": {"fleet": {"rollback": {"generation": 1}}}}
    stations = [info(a, "a", stages=applied), info(b, "b", stages=older),
                info(c, "c", state=StationState.STOPPED)]
    p = rollback_progress("cameras", st, stations, T0, GONE)
    assert [s.name for s, _ in p.applied] == ["a"]
    assert [(s.name, why) for s, why in p.waiting] == [("b", "up: applies it at its next heartbeat"),
                                                       ("c", "stopped: applies it when it returns")]
    assert st.track("cameras").issued_at == T0 and st.track("cameras").reason == "drill"


# ---------------------------------------------------------------- the station's rollback agent


class FakeStation:
    """The store a FleetRollback works on: the fleet settings, the rollbacks made, the audit log."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.rolled_back: list[tuple[str, str]] = []
        self.audit: list[Any] = []
        self.fail_apply = 0  # how many applies fail from now
        self.wall = 1_800_000_000.0

    def issue(self, track: str, gen: int) -> None:
        self.settings[fleet_key(track, "rollback")] = {"generation": gen, "issued_at": T0.isoformat(),
                                                       "reason": "drill"}

    def apply(self, track: str, reason: str) -> None:
        if self.fail_apply:
            self.fail_apply -= 1
            raise RuntimeError("database is locked")
        self.rolled_back.append((track, reason))

    def agent(self) -> FleetRollback:
        checklist = Checklist((Check("target_share_zero", Status.PASS, 0, 0, "ok"),
                               Check("no_domain_calls", Status.PENDING, 0, 0, "window")), "cameras")
        return FleetRollback(read=lambda: dict(self.settings), apply=self.apply,
                             checklist=lambda t: checklist_verdict(checklist),
                             audit=self.audit.append, wall=lambda: self.wall)


def test_the_agent_applies_a_newer_generation_once_and_reports_it():
    st = FakeStation()
    agent = st.agent()
    agent.resume_from(info(ids(1)[0], "a"))  # a station the fleet knew, with nothing applied yet
    assert agent.check() == [] and st.rolled_back == []
    st.issue("cameras", 1)
    assert agent.check() == ["cameras"]
    assert st.rolled_back == [("cameras", "fleet rollback 1: drill")]
    assert agent.check() == [] and len(st.rolled_back) == 1  # applied once
    ack = agent.acks()["cameras"]
    assert ack["generation"] == 1 and ack["on_return"] is False
    assert ack["checklist"]["complete"] is False and ack["checklist"]["open"] == ["no_domain_calls: pending"]
    assert [e.reason for e in st.audit] == ["generation 1"]
    merged = merge_acks({"cameras": {"stage": 0}, "rules": {"stage": 0}}, agent.acks())
    assert merged["cameras"] == {"stage": 0, "fleet": {"rollback": ack}} and merged["rules"] == {"stage": 0}


def test_a_station_returning_applies_it_and_says_so_and_a_new_station_takes_it_as_baseline():
    st = FakeStation()
    st.issue("cameras", 3)
    back = st.agent()
    back.resume_from(info(ids(1)[0], "a", stages={"cameras": {"fleet": {"rollback": {"generation": 2}}}}))
    assert back.check(on_return=True) == ["cameras"]
    assert back.acks()["cameras"]["on_return"] is True
    assert st.audit[-1].reason == "on return, generation 3"
    assert st.audit[-1].detail["message"] == ("fleet rollback of the cameras track applied on return, generation 3 "
                                              "issued at 2026-12-03 08:00:00 UTC (drill)")
    new = st.agent()
    new.resume_from(None)  # not registered before: the rollback predates it
    assert new.check(on_return=True) == [] and len(st.rolled_back) == 1
    assert new.acks()["cameras"] == {"generation": 3, "baseline": True, "issued_at": T0.isoformat()}


def test_a_rollback_that_cannot_be_applied_is_tried_again_at_once_then_at_the_next_check():
    st = FakeStation()
    agent = st.agent()
    agent.resume_from(info(ids(1)[0], "a"))
    st.issue("rules", 1)
    st.fail_apply = 1  # one failure (another station wrote the same setting at that instant): tried again at once
    assert agent.check() == ["rules"] and st.rolled_back == [("rules", "fleet rollback 1: drill")]
    st.issue("rules", 2)
    st.fail_apply = 2  # still failing: given up until the next check
    assert agent.check() == [] and agent.acks()["rules"]["generation"] == 1
    assert agent.check() == ["rules"] and agent.acks()["rules"]["generation"] == 2


@pytest.mark.parametrize("bad", [{"generation": True}, {"generation": -1}, "3", None])
def test_a_spoiled_rollback_record_is_no_rollback(bad):
    st = FakeStation()
    st.settings[fleet_key("cameras", "rollback")] = bad
    agent = st.agent()
    agent.resume_from(info(ids(1)[0], "a"))
    assert agent.check() == [] and st.rolled_back == []


class FlakyRegistry:
    """A registry whose database can go away: what a FleetMember heartbeats into."""

    def __init__(self, fake: FakeStation) -> None:
        self.fake = fake
        self.down = False
        self.reports: list[Any] = []
        self.row = info(ids(1)[0], "a")

    def read(self) -> dict[str, Any]:
        if self.down:
            raise OSError("connection refused")
        return dict(self.fake.settings)

    def get(self, station_id: str) -> StationInfo:
        return self.row  # registered before: nothing applied yet

    def claim(self, station_id: str, name: str, **kw: Any) -> Any:
        from app.store.stations import Claim

        return Claim(self.row)

    def heartbeat(self, station_id: str, report: Any) -> Any:
        from app.store.stations import Beat

        if self.down:
            raise OSError("connection refused")
        self.reports.append(report)
        return Beat(True)


def test_a_station_cut_off_from_the_database_applies_the_rollback_when_it_answers_again_and_says_so(caplog):
    from app.domain.fleet import StationReport
    from app.fleet.member import FleetMember

    fake = FakeStation()
    reg = FlakyRegistry(fake)
    agent = FleetRollback(read=reg.read, apply=fake.apply, checklist=lambda t: {"complete": True, "failed": False,
                                                                               "open": []},
                          audit=fake.audit.append, wall=lambda: fake.wall)
    member = FleetMember(reg, station_id=reg.row.id, name="a", report=lambda: StationReport(stages={"rules": {}}),
                         interval=1.0, gone_after=3.0, rollback=agent)  # type: ignore[arg-type]
    member.register()
    assert member.beat_now() is not None and "fleet" not in reg.reports[-1].stages["rules"]
    reg.down = True
    fake.issue("rules", 1)  # issued while this station cannot see it
    with caplog.at_level(logging.WARNING, logger="edge_station.fleet"):
        assert member.beat_now() is None and member.beat_now() is None
    assert len([r for r in caplog.records if "fleet rollbacks could not be read" in r.getMessage()]) == 1
    assert fake.rolled_back == []
    reg.down = False
    assert member.beat_now() is not None
    ack = reg.reports[-1].stages["rules"]["fleet"]["rollback"]  # in the very heartbeat that follows
    assert ack["generation"] == 1 and ack["on_return"] is True and ack["checklist"]["complete"] is True
    assert fake.rolled_back == [("rules", "fleet rollback 1: drill")] and fake.audit[-1].reason.startswith("on return")


def test_fleet_status_of_a_large_fleet_counts_the_applied_and_names_the_failed_and_the_missing():
    from app.fleet.rollout_cli import rollout_status_lines

    st = state(cameras={"percent": 25, "rollback": {"generation": 1, "issued_at": T0.isoformat()}})

    def ack(i: int) -> dict[str, Any]:
        cl = {"complete": i % 2 == 0, "failed": i == 7, "open": ["legacy_healthy: fail"] if i == 7 else []}
        return {"cameras": {"gate": GATE_OK, "fleet": {"rollback": {"generation": 1, "checklist": cl}}}}

    stations = [info(s, f"s{i:03d}", stages=ack(i) if i != 5 else {}) for i, s in enumerate(ids(100))]
    lines = rollout_status_lines(st, stations, T0, GONE)
    assert "fleet rollback: generation 1 issued at 2026-12-03 08:00:00 UTC: applied by 99, not yet 1" in lines[2]
    assert lines[3:] == ["    checklists: 50 complete, 1 failed, 48 pending",
                         "    applied by s007: checklist FAILED: legacy_healthy: fail",
                         "    not yet: s005 (up: applies it at its next heartbeat)"]
    few = rollout_status_lines(st, stations[:4], T0, GONE)
    assert sum("applied by s00" in x for x in few) == 4  # a small fleet: every station named
