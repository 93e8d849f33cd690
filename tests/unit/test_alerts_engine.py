"""The alert engine on a fake clock: every state change is reached by ``tick(now)``, no sleeps.

Events go to a real SQLite store (a file in the test's temporary directory).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.alerts import AlertEngine
from app.domain.alerts import AlertChange, AlertState, ChangeKind, EventState
from app.domain.errors import NotFound, ValidationError
from app.domain.rules import AlertRule, Comparator, NoDataPolicy, Severity, TargetKind
from app.metrics import MetricsRegistry, camera_labels
from app.store import Store, open_store
from app.store.alert_events import AlertEventRepository

T0 = 1_800_000_000.0  # a fixed unix time


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    yield s
    s.dispose()


class Rig:
    """A registry, an engine on a fake clock, and the changes it emitted."""

    def __init__(self, store: Store | None, rules: list[AlertRule], cameras=(1, 2)):
        self.now = T0
        self.reg = MetricsRegistry(clock=lambda: self.now)
        self.cams = list(cameras)
        self.changes: list[AlertChange] = []
        self.store = store
        if store is not None:
            # Rule rows exist for the events' foreign key.
            with store.uow() as uow:
                rules = [uow.rules.add(r.validated()) for r in rules]
                uow.commit()
        self.rules = rules
        self.engine = AlertEngine(self.reg, store=store, clock=lambda: self.now, cameras=lambda: self.cams,
                                  tz=UTC, rules=rules)
        self.engine.subscribe(self.changes.append)

    def put(self, metric: str, value: float, camera: int | None = 1) -> None:
        labels = camera_labels(camera) if camera is not None else ()
        self.reg.record(metric, value, labels, ts=self.now)

    def tick(self, at: float | None = None) -> None:
        if at is not None:
            self.now = at
        self.engine.tick(self.now)
        assert self.engine.flush(10), "events not stored in time"

    def state(self, camera: int | None = 1, rule: int = 0) -> AlertState:
        name = self.rules[rule].name
        for s in self.engine.statuses(include_inactive=True):
            if s.rule_name == name and s.camera_id == camera:
                return s.state
        return AlertState.INACTIVE

    def kinds(self) -> list[ChangeKind]:
        return [c.kind for c in self.changes]

    def notified(self) -> list[ChangeKind]:
        return [c.kind for c in self.changes if c.notify]

    def events(self):
        with self.store.uow() as uow:
            return AlertEventRepository(uow.session).recent(100)


def low_fps(**kw) -> AlertRule:
    base = dict(name="low fps", metric="fps", comparator=Comparator.LT, threshold=5.0,
                target=TargetKind.CAMERA, camera_id=1, for_seconds=10.0, cooldown=0.0)
    base.update(kw)
    return AlertRule(**base)


def cameras(store: Store, *ids: int) -> None:
    from app.domain import Camera

    with store.uow() as uow:
        for i in ids:
            uow.cameras.add(Camera(name=f"cam{i}", source="test://moving"))
        uow.commit()


def test_pending_then_firing_exactly_at_for(store: Store) -> None:
    cameras(store, 1, 2)
    rig = Rig(store, [low_fps()])
    for i in range(10):
        rig.now = T0 + i
        rig.put("fps", 2.0)
        rig.tick()
        assert rig.state() is AlertState.PENDING, f"at +{i} s"
    rig.now = T0 + 9.999
    rig.put("fps", 2.0)
    rig.tick()
    assert rig.state() is AlertState.PENDING
    rig.now = T0 + 10
    rig.put("fps", 2.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING
    assert rig.kinds() == [ChangeKind.PENDING, ChangeKind.FIRING]
    assert rig.notified() == [ChangeKind.FIRING]
    (ev,) = rig.events()
    assert ev.state is EventState.FIRING
    assert ev.value == 2.0 and ev.threshold == 5.0
    assert ev.started_at == datetime.fromtimestamp(T0, UTC)
    assert ev.fired_at == datetime.fromtimestamp(T0 + 10, UTC)
    assert ev.rule_id == rig.rules[0].id and ev.camera_id == 1
    assert ev.severity is Severity.WARNING
    assert rig.changes[0].event is None  # pending: nothing stored yet
    assert rig.changes[1].event == ev  # the firing carries the stored event (with its id)
    # The other camera has no rule and nothing happened to it.
    assert rig.state(camera=2) is AlertState.INACTIVE


def test_pending_clears_when_the_condition_stops(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps()], cameras=[1])
    rig.put("fps", 1.0)
    rig.tick()
    rig.now += 5
    rig.put("fps", 25.0)
    rig.tick()
    assert rig.state() is AlertState.INACTIVE
    assert rig.kinds() == [ChangeKind.PENDING, ChangeKind.CLEARED]
    # A new pending period starts from scratch.
    rig.now += 1
    rig.put("fps", 1.0)
    rig.tick()
    rig.now += 9
    rig.put("fps", 1.0)
    rig.tick()
    assert rig.state() is AlertState.PENDING
    assert rig.events() == []


def test_keep_firing_for_then_resolved_and_stored(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, keep_firing_for=5.0)], cameras=[1])
    for i in range(3):  # holds at +0, +1, +2
        rig.now = T0 + i
        rig.put("fps", 1.0)
        rig.tick()
    assert rig.state() is AlertState.FIRING
    for i in range(3, 7):  # +3..+6: fine again, but within keep_firing_for of +2
        rig.now = T0 + i
        rig.put("fps", 20.0)
        rig.tick()
        assert rig.state() is AlertState.FIRING, f"at +{i}"
    rig.now = T0 + 7  # 5 s after the last time it held
    rig.put("fps", 20.0)
    rig.tick()
    assert rig.state() is AlertState.RESOLVED
    (ev,) = rig.events()
    assert ev.state is EventState.RESOLVED
    assert ev.resolved_at == datetime.fromtimestamp(T0 + 7, UTC)
    assert ev.value == 20.0  # the last value seen
    assert rig.notified() == [ChangeKind.FIRING, ChangeKind.RESOLVED]
    # Holding again after a resolve starts a new pending period and a new event.
    rig.now = T0 + 8
    rig.put("fps", 1.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING  # for = 0
    assert [e.state for e in rig.events()] == [EventState.FIRING, EventState.RESOLVED]


def test_cooldown_suppresses_duplicate_notifications(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, cooldown=60.0)], cameras=[1])

    def flap(at: float) -> None:
        rig.now = at
        rig.put("fps", 1.0)
        rig.tick()
        rig.now = at + 1
        rig.put("fps", 30.0)
        rig.tick()

    flap(T0)  # announced
    flap(T0 + 10)  # inside the cooldown: stored, not announced
    flap(T0 + 59)  # still inside
    flap(T0 + 60)  # 60 s after the last announcement: announced
    firing = [c for c in rig.changes if c.kind is ChangeKind.FIRING]
    assert [c.notify for c in firing] == [True, False, False, True]
    resolved = [c for c in rig.changes if c.kind is ChangeKind.RESOLVED]
    assert [c.notify for c in resolved] == [True, False, False, True]
    assert len(rig.events()) == 4  # every firing is stored


def test_repeat_interval_until_acknowledged(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, cooldown=10.0, repeat_interval=30.0)], cameras=[1])
    for i in range(0, 100):
        rig.now = T0 + i
        rig.put("fps", 1.0)
        rig.tick()
        if i == 65:
            (ev,) = rig.events()
            acked = rig.engine.acknowledge(ev.id, "operator", at=rig.now)
            assert acked.acknowledged_by == "operator"
    announced = [(c.kind, c.at.timestamp() - T0) for c in rig.changes if c.notify]
    assert announced == [(ChangeKind.FIRING, 0), (ChangeKind.REPEAT, 30), (ChangeKind.REPEAT, 60)]
    assert ChangeKind.ACKNOWLEDGED in rig.kinds()


def test_acknowledgement_is_stored_and_validated(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0)], cameras=[1])
    rig.put("fps", 1.0)
    rig.tick()
    (ev,) = rig.events()
    assert not ev.acknowledged
    with pytest.raises(ValidationError) as e:
        rig.engine.acknowledge(ev.id, "  ")
    assert e.value.errors[0].field == "by"
    with pytest.raises(NotFound):
        rig.engine.acknowledge(ev.id + 100, "operator")
    rig.engine.acknowledge(ev.id, "night shift", at=T0 + 3)
    again = rig.engine.acknowledge(ev.id, "someone else", at=T0 + 4)
    assert again.acknowledged_by == "night shift"  # the first acknowledgement stays
    (stored,) = rig.events()
    assert stored.acknowledged_by == "night shift"
    assert stored.acknowledged_at == datetime.fromtimestamp(T0 + 3, UTC)
    (st,) = rig.engine.firing()
    assert st.acknowledged and st.event_id == ev.id


def test_offline_camera_inhibits_its_other_rules(store: Store) -> None:
    cameras(store, 1, 2)
    offline = AlertRule(name="offline", metric="offline", comparator=Comparator.GE, threshold=1,
                        target=TargetKind.ALL_CAMERAS, for_seconds=3.0, no_data=NoDataPolicy.OK, cooldown=0)
    fps = low_fps(target=TargetKind.ALL_CAMERAS, camera_id=None, for_seconds=2.0)
    rig = Rig(store, [offline, fps], cameras=[1, 2])
    # Camera 2 goes slow first and fires; camera 1 goes slow and then offline.
    for i in range(3):
        rig.now = T0 + i
        for cam in (1, 2):
            rig.put("offline", 0.0, cam)
            rig.put("fps", 1.0, cam)
        rig.tick()
    assert rig.state(1, rule=1) is AlertState.FIRING
    assert rig.state(2, rule=1) is AlertState.FIRING
    rig.changes.clear()
    for i in range(3, 20):
        rig.now = T0 + i
        rig.put("offline", 1.0, 1)
        rig.put("fps", 0.0, 1)
        rig.put("offline", 0.0, 2)
        rig.put("fps", 1.0, 2)
        rig.tick()
    assert rig.state(1, rule=0) is AlertState.FIRING  # camera offline fires...
    assert rig.state(1, rule=1) is AlertState.FIRING  # ...the fps alert is held, neither resolved nor re-announced
    inhibited = {s.camera_id: s.inhibited for s in rig.engine.statuses() if s.rule_name == "low fps"}
    assert inhibited == {1: True, 2: False}
    assert [(c.rule_name, c.kind) for c in rig.changes if c.notify] == [("offline", ChangeKind.FIRING)]
    # A fresh slow period on an offline camera never even goes pending.
    rig2 = Rig(None, [offline, fps], cameras=[1])
    for i in range(10):
        rig2.now = T0 + i
        rig2.put("offline", 1.0, 1)
        rig2.put("fps", 0.0, 1)
        rig2.tick()
    assert rig2.state(1, rule=1) is AlertState.INACTIVE
    assert all(c.rule_name == "offline" for c in rig2.changes)


def test_no_data_alerting(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=4.0, no_data=NoDataPolicy.ALERTING)], cameras=[1])
    rig.put("fps", 30.0)
    rig.tick()
    assert rig.state() is AlertState.INACTIVE
    # No more samples: after stale_after (5 s) it is "no data", which counts as alerting.
    for i in range(1, 11):
        rig.tick(T0 + i)
    assert rig.state() is AlertState.FIRING
    (ev,) = rig.events()
    assert ev.started_at == datetime.fromtimestamp(T0 + 6, UTC)  # first tick with stale data
    assert ev.fired_at == datetime.fromtimestamp(T0 + 10, UTC)
    assert "no data" in ev.message


def test_no_data_ok_resolves(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, no_data=NoDataPolicy.OK)], cameras=[1])
    rig.put("fps", 1.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING
    rig.tick(T0 + 5)  # the sample is 5 s old: still data
    assert rig.state() is AlertState.FIRING
    rig.tick(T0 + 6)
    assert rig.state() is AlertState.RESOLVED


def test_no_data_keep_last_holds_the_state(store: Store) -> None:
    cameras(store, 1, 2)
    rules = [low_fps(for_seconds=0.0, no_data=NoDataPolicy.KEEP_LAST),
             low_fps(name="pending one", camera_id=2, for_seconds=30.0, no_data=NoDataPolicy.KEEP_LAST)]
    rig = Rig(store, rules)
    rig.put("fps", 1.0, 1)
    rig.put("fps", 1.0, 2)
    rig.tick()
    assert rig.state(1, rule=0) is AlertState.FIRING
    assert rig.state(2, rule=1) is AlertState.PENDING
    for i in range(1, 120):
        rig.tick(T0 + i)
    assert rig.state(1, rule=0) is AlertState.FIRING  # not resolved by silence
    assert rig.state(2, rule=1) is AlertState.PENDING  # nor advanced by it
    # Data returns: it goes on from where it was.
    rig.now = T0 + 120
    rig.put("fps", 1.0, 2)
    rig.put("fps", 30.0, 1)
    rig.tick()
    assert rig.state(2, rule=1) is AlertState.FIRING
    assert rig.state(1, rule=0) is AlertState.RESOLVED


def test_schedule_boundaries(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, schedule="mon 08:00-09:00")], cameras=[1])
    monday_8 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(monday_8, UTC).weekday() == 0

    def at(offset: float) -> AlertState:
        rig.now = monday_8 + offset
        rig.put("fps", 1.0)
        rig.tick()
        return rig.state()

    assert at(-1) is AlertState.INACTIVE  # 07:59:59
    assert at(0) is AlertState.FIRING  # 08:00:00
    assert at(3599) is AlertState.FIRING  # 08:59:59
    assert at(3600) is AlertState.RESOLVED  # 09:00:00: outside, the firing resolves
    resolved = [c for c in rig.changes if c.kind is ChangeKind.RESOLVED]
    assert "schedule" in resolved[0].message
    (ev,) = rig.events()
    assert ev.state is EventState.RESOLVED and "schedule" in ev.message
    # Next Monday 07:59 still out; Tuesday 08:30 out.
    assert at(7 * 86400 - 60) is AlertState.RESOLVED
    assert at(86400 + 1800) is AlertState.RESOLVED


def test_station_and_rollout_targets(store: Store) -> None:
    rules = [
        AlertRule(name="cpu", metric="cpu_percent", comparator=Comparator.GT, threshold=90,
                  target=TargetKind.STATION, for_seconds=2.0),
        AlertRule(name="errors", metric="domain_error_rate", comparator=Comparator.GT, threshold=0.05,
                  target=TargetKind.ROLLOUT),
    ]
    rig = Rig(store, rules, cameras=[])
    for i in range(3):
        rig.now = T0 + i
        rig.put("cpu_percent", 99.0, camera=None)
        rig.put("cpu_percent", 1.0, camera=1)  # a camera's CPU is another series
        rig.put("domain_error_rate", 0.01, camera=None)
        rig.tick()
    assert rig.state(None, rule=0) is AlertState.FIRING
    assert rig.state(None, rule=1) is AlertState.INACTIVE
    subjects = {e.subject for e in rig.events()}
    assert subjects == {"station"}


def test_removed_rule_and_gone_camera_resolve(store: Store) -> None:
    cameras(store, 1, 2)
    rig = Rig(store, [low_fps(target=TargetKind.ALL_CAMERAS, camera_id=None, for_seconds=0.0)])
    for cam in (1, 2):
        rig.put("fps", 1.0, cam)
    rig.tick()
    assert {e.camera_id for e in rig.events() if e.state is EventState.FIRING} == {1, 2}
    rig.cams = [1]  # camera 2 stopped on purpose
    rig.now += 1
    rig.put("fps", 1.0, 1)
    rig.tick()
    assert {e.camera_id for e in rig.events() if e.state is EventState.FIRING} == {1}
    rig.engine.set_rules([])
    rig.tick(rig.now + 1)
    assert all(e.state is EventState.RESOLVED for e in rig.events())
    assert rig.engine.statuses(include_inactive=True) == []


def test_restart_adopts_firing_events_without_announcing_again(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0, cooldown=600.0)], cameras=[1])
    rig.put("fps", 1.0)
    rig.tick()
    assert rig.notified() == [ChangeKind.FIRING]
    # A new engine on the same database (the station restarted).
    later: list[AlertChange] = []
    eng = AlertEngine(rig.reg, store=store, clock=lambda: rig.now, cameras=lambda: [1], tz=UTC)
    eng.load_rules()
    eng.subscribe(later.append)
    rig.now += 30
    rig.put("fps", 1.0)
    eng.tick(rig.now)
    eng.flush()
    assert [s.state for s in eng.statuses()] == [AlertState.FIRING]
    assert later == []  # still the same firing: nothing new to say
    rig.now += 1
    rig.put("fps", 30.0)
    eng.tick(rig.now)
    eng.flush()
    (ev,) = rig.events()
    assert ev.state is EventState.RESOLVED
    assert [c.kind for c in later] == [ChangeKind.RESOLVED]


def test_disabled_rules_are_not_evaluated() -> None:
    rig = Rig(None, [low_fps(for_seconds=0.0, enabled=False)], cameras=[1])
    rig.put("fps", 1.0)
    rig.tick()
    assert rig.engine.statuses(include_inactive=True) == []
    assert rig.engine.rules() == []


def test_pending_counts_from_when_the_value_appeared_not_from_the_tick() -> None:
    rule = AlertRule(name="offline", metric="offline", comparator=Comparator.GE, threshold=1,
                     target=TargetKind.CAMERA, camera_id=1, for_seconds=3.0, no_data=NoDataPolicy.OK)
    rig = Rig(None, [rule], cameras=[1])
    rig.put("offline", 0.0)
    rig.tick()
    rig.now = T0 + 0.3  # an event-driven sample between two ticks...
    rig.put("offline", 1.0)
    rig.now = T0 + 0.9  # ...refreshed by the per-second poll
    rig.put("offline", 1.0)
    rig.tick(T0 + 1.0)
    (st,) = rig.engine.statuses()
    assert st.state is AlertState.PENDING and st.since == datetime.fromtimestamp(T0 + 0.3, UTC)
    assert rig.engine._next_due == pytest.approx(T0 + 3.3)  # the engine thread wakes for it
    rig.tick(T0 + 3.29)
    assert rig.state() is AlertState.PENDING
    rig.tick(T0 + 3.3)
    assert rig.state() is AlertState.FIRING


def test_no_backdating_across_an_inhibition() -> None:
    offline = AlertRule(name="offline", metric="offline", comparator=Comparator.GE, threshold=1,
                        target=TargetKind.CAMERA, camera_id=1, for_seconds=60.0, no_data=NoDataPolicy.OK)
    fps = low_fps(for_seconds=5.0)
    rig = Rig(None, [fps, offline], cameras=[1])
    for i in range(30):
        rig.now = T0 + i
        rig.put("fps", 0.0)  # 0 from T0 on: one unchanged value
        rig.put("offline", 1.0)
        rig.tick()
    assert rig.state(rule=0) is AlertState.INACTIVE  # inhibited all along
    for i in range(30, 36):
        rig.now = T0 + i
        rig.put("fps", 0.0)
        rig.put("offline", 0.0)
        rig.tick()
        if i == 30:  # not firing at once: the 30 s it held while inhibited do not count
            assert rig.state(rule=0) is AlertState.PENDING
        if i == 34:
            assert rig.state(rule=0) is AlertState.PENDING
    assert rig.state(rule=0) is AlertState.FIRING


def test_a_locked_database_does_not_hold_up_evaluation(store: Store, tmp_path: Path) -> None:
    import sqlite3
    import time

    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0)], cameras=[1])
    blocker = sqlite3.connect(tmp_path / "station.db", timeout=0.1)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        rig.put("fps", 1.0)
        t = time.perf_counter()
        rig.engine.tick(rig.now)
        assert time.perf_counter() - t < 0.5  # evaluated without waiting for the database
        assert rig.state() is AlertState.FIRING
        assert not rig.engine.flush(0.3)  # still waiting to be stored
        assert rig.changes == []  # announced only once stored (with the event's id)
    finally:
        blocker.rollback()
        blocker.close()
    assert rig.engine.flush(15)
    (ev,) = rig.events()
    assert ev.state is EventState.FIRING
    firing = [c for c in rig.changes if c.kind is ChangeKind.FIRING]
    assert firing[0].event is not None and firing[0].event.id == ev.id
    rig.engine.close()


def test_synchronous_mode_stores_and_announces_within_the_tick(store: Store) -> None:
    cameras(store, 1)
    with store.uow() as uow:
        rule = uow.rules.add(low_fps(for_seconds=0.0).validated())
        uow.commit()
    reg = MetricsRegistry()
    changes: list[AlertChange] = []
    eng = AlertEngine(reg, store=store, cameras=lambda: [1], tz=UTC, rules=[rule], async_writes=False)
    eng.subscribe(changes.append)
    reg.record("fps", 1.0, camera_labels(1), ts=T0)
    eng.tick(T0)
    assert [c.kind for c in changes] == [ChangeKind.PENDING, ChangeKind.FIRING]
    assert changes[1].event is not None and changes[1].event.id is not None
    reg.record("fps", 20.0, camera_labels(1), ts=T0 + 1)
    eng.tick(T0 + 1)
    assert changes[-1].kind is ChangeKind.RESOLVED and changes[-1].event.id == changes[1].event.id
    with store.uow() as uow:
        (ev,) = AlertEventRepository(uow.session).recent()
    assert ev.state is EventState.RESOLVED


def test_changing_a_rule_keeps_or_restarts_its_instances(store: Store) -> None:
    cameras(store, 1)
    rig = Rig(store, [low_fps(for_seconds=0.0)], cameras=[1])
    rig.put("fps", 3.0)
    rig.put("dropped_rate", 0.0)
    rig.tick()
    (rule,) = rig.rules
    # A new threshold (same metric and camera): the firing goes on, judged by the new threshold.
    rig.engine.set_rules([rule.with_changes(threshold=4.0, version=2)])
    rig.now += 1
    rig.put("fps", 3.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING
    assert len(rig.events()) == 1
    rig.engine.set_rules([rule.with_changes(threshold=2.0, version=3)])
    rig.now += 1
    rig.put("fps", 3.0)
    rig.tick()
    assert rig.state() is AlertState.RESOLVED
    # Another metric: the old instance ends, the new one watches the new series.
    rig.now += 1
    rig.put("fps", 1.0)
    rig.put("dropped_rate", 0.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING
    retargeted = rule.with_changes(metric="dropped_rate", comparator=Comparator.GT, threshold=5.0, version=4)
    rig.engine.set_rules([retargeted])
    rig.now += 1
    rig.put("fps", 1.0)
    rig.put("dropped_rate", 0.0)
    rig.tick()
    assert [s.state for s in rig.engine.statuses(include_inactive=True)] == [AlertState.INACTIVE]
    newest = rig.events()[0]
    assert newest.state is EventState.RESOLVED and "rule was changed" in newest.message
    rig.now += 1
    rig.put("dropped_rate", 9.0)
    rig.tick()
    assert rig.state() is AlertState.FIRING
