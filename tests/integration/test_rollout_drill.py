"""The fault drill end to end on a scratch station (real router, real workers, real operations), and the
side-effect mark on a real spawn. The health windows run on a step clock (every call moves it 50 ms on),
so many windows pass in a few seconds; latencies are measured in real time."""

from __future__ import annotations

import io
import random
import time
from types import SimpleNamespace

import pytest

from app.domain.operations import CameraRef, SideEffectFailure, StopCamera
from app.rollout.drill import (
    FaultSpec,
    InjectedFault,
    StepClock,
    drill_on_scratch,
    drill_thresholds,
    inject,
    latch_bound_s,
    run_drill,
    scratch_router,
    workload_for,
)
from app.rollout.drill import cmd_drill as run_drill_cli
from app.rollout.metrics import DOMAIN
from app.rollout.router import Router
from app.services.operations import DomainOperations
from app.station import live_drill_station, scratch_drill_station

pytestmark = pytest.mark.slow


@pytest.fixture
def station():
    with scratch_drill_station(4) as st:
        yield st


#: the operations here take about 1 ms, so a 3 x slowdown adds about 2 ms: under the station's 5 ms floor
#: (never a regression by design). The fault drills run with a 1 ms floor so that slowdown is visible;
#: the no-fault runs use the floor a station uses (``None``: the default), since the claim they check is
#: "a station with no fault raises no alert", and a 1 ms floor on a loaded 2-core box is finer than noise.
FLOOR_MS = 1.0


def drill(station, spec, ops=("camera_status",), seed=1, floor_ms=FLOOR_MS):
    return drill_on_scratch(spec, ops=ops, station=station, clock=StepClock(0.05), rng=random.Random(seed),
                            floor_ms=floor_ms)


def test_failing_one_call_in_five_latches_within_the_bound(station):
    report = drill(station, FaultSpec(fail_rate=0.2))
    assert report.injected_failures > 0
    assert report.alerted and report.latched, report.lines()
    assert report.time_to_latch_s <= report.bound_s == 20.5
    assert "camera_status: domain error rate" in report.latch_reason
    assert report.passed


def test_slowing_one_operation_three_fold_latches_after_the_failure_limit(station):
    report = drill(station, FaultSpec(slow_factor=3.0, ops=("camera_snapshot",)),
                   ops=("camera_status", "camera_snapshot"))
    assert report.slowed_calls > 0 and report.injected_failures == 0
    assert report.latched, report.lines()
    assert "camera_snapshot: domain P95" in report.latch_reason
    assert "in 3 consecutive windows" in report.latch_reason
    assert "camera_status" not in report.latch_reason  # the other operation is not blamed
    assert 2 * report.window_s <= report.time_to_latch_s <= report.bound_s


def test_no_injection_raises_no_alert_in_ten_runs(station):
    for run in range(10):
        report = drill(station, FaultSpec(), ops=("camera_status", "camera_logs", "list_status"), seed=run,
                       floor_ms=None)
        assert not report.alerted and not report.latched, (run, report.lines(), report.reasons)
        assert report.duration_s >= report.bound_s  # it ran its full length: several windows
        assert report.passed


def test_the_injection_ends_with_the_drill_even_when_it_raises(station):
    router = scratch_router(station, drill_thresholds(), percent=100)
    try:
        with pytest.raises(RuntimeError, match="boom"), inject(router, FaultSpec(fail_rate=1.0)):
            assert router._fault is not None
            _, d = router.call_with_decision("camera_status", CameraRef(station.drill_cameras[0]))
            assert d.fallback and d.fallback_cause == InjectedFault.__name__
            raise RuntimeError("boom")
        assert router._fault is None
        _, d = router.call_with_decision("camera_status", CameraRef(station.drill_cameras[0]))
        assert d.path == DOMAIN and not d.fallback
    finally:
        router.close()


def test_the_cli_drill_reports_alert_latch_and_times(station):
    def reuse(cameras=4):
        return _reuse(station)

    out, err = io.StringIO(), io.StringIO()
    args = SimpleNamespace(fail=0.2, slow=1.0, op=["camera_status"], window=10.0, max_s=None, live=False,
                           reason="", json=False, floor_ms=None)
    assert run_drill_cli(args, out=out, err=err, make_station=reuse) == 0, err.getvalue()
    text = out.getvalue()
    assert "health alerted: after" in text and "latch fired:    after" in text and "drill PASSED" in text
    bad = SimpleNamespace(**{**vars(args), "fail": 1.5})
    assert run_drill_cli(bad, out=out, err=err, make_station=reuse) == 2
    assert "--fail 1.5 must be a share from 0 to 1" in err.getvalue()
    live = SimpleNamespace(**{**vars(args), "live": True})
    assert run_drill_cli(live, out=out, err=err, make_station=reuse, open_live=live_drill_station) == 2
    assert "--live needs --reason" in err.getvalue()


def test_a_cli_drill_without_a_station_factory_says_so():
    out, err = io.StringIO(), io.StringIO()
    args = SimpleNamespace(fail=0.2, slow=1.0, op=["camera_status"], window=10.0, max_s=None, live=False,
                           reason="drill check", json=False, floor_ms=None)
    assert run_drill_cli(args, out=out, err=err) == 1
    assert "no scratch station available here" in err.getvalue()
    assert run_drill_cli(SimpleNamespace(**{**vars(args), "live": True}), out=out, err=err) == 1
    assert "no live station available here" in err.getvalue()
    assert out.getvalue() == ""


def test_a_rolled_back_rules_track_does_not_end_a_drill_of_the_cameras_track(station):
    """The drill watches the latch of its operations' track: a rules track rolled back before it is
    not the drill's latch (the drill used to stop at once, after 0 calls, and report a missed bound)."""
    clock = StepClock(0.05)
    th = drill_thresholds(latency_floor_ms=FLOOR_MS)
    router = scratch_router(station, th, clock=clock)
    try:
        router.rollback(track="rules", reason="rules rolled back earlier")
        spec = FaultSpec(fail_rate=0.2)
        report = run_drill(router, workload_for(("camera_status",), station.drill_cameras), spec,
                           bound_s=latch_bound_s(spec, th, 0.5), clock=clock, rng=random.Random(1))
    finally:
        router.close()
    assert report.calls > 0 and report.injected_failures > 0, report.lines()
    assert report.alerted and report.latched and report.time_to_latch_s <= report.bound_s, report.lines()
    assert report.latch_reason.startswith("cameras: ") and "rules rolled back earlier" not in report.latch_reason
    assert report.passed


def test_a_live_drill_of_a_track_that_routes_nothing_to_the_domain_path_is_refused(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    args = SimpleNamespace(fail=0.2, slow=1.0, op=["camera_status"], window=10.0, max_s=None, live=True,
                           reason="drill check", json=False, floor_ms=None, data_dir=tmp_path, db=None)
    assert run_drill_cli(args, out=out, err=err, open_live=live_drill_station) == 1
    assert "the cameras track routes no call to the domain path" in err.getvalue(), err.getvalue()
    assert out.getvalue() == ""


def test_a_live_drill_while_the_station_runs_is_refused_before_anything_is_drilled(tmp_path):
    from app.platform.paths import resolve_paths
    from app.station import Station, StationOptions

    running = Station(StationOptions(paths=resolve_paths(tmp_path, None), seed_demo=False, autostart=False))
    running.open()
    try:
        out, err = io.StringIO(), io.StringIO()
        args = SimpleNamespace(fail=0.2, slow=1.0, op=["camera_status"], window=10.0, max_s=None, live=True,
                               reason="drill check", json=False, floor_ms=None, data_dir=tmp_path, db=None)
        assert run_drill_cli(args, out=out, err=err, open_live=live_drill_station) == 1
        assert "a live drill injects into the router of this process, so stop the station first" in err.getvalue()
        assert out.getvalue() == ""
    finally:
        running.close()


class _reuse:
    def __init__(self, station):
        self.station = station

    def __enter__(self):
        return self.station

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- the side-effect mark on a real spawn


class SpawnsThenFails:
    """The real supervisor, except that ``start_worker`` raises after it has spawned the worker."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def start_worker(self, spec):
        self._real.start_worker(spec)
        raise RuntimeError("the supervisor answered garbage after the spawn")


def test_a_domain_start_that_spawned_and_then_failed_is_not_retried_and_reports_the_truth():
    with scratch_drill_station(1) as st:
        cam = st.drill_cameras[0]
        st.legacy_ops.stop_camera(StopCamera(cam))
        domain = DomainOperations(st.station.parts().store, SpawnsThenFails(st.station.parts().supervisor), st.station.parts().probe_runner,
                                  st.station.parts().history)
        router = Router(st.legacy_ops, domain, None, keys_provider=lambda: {"camera": [f"camera:{cam}"]},
                        env={"USE_DOMAIN_SERVICE": "1", "ROLLOUT_PERCENT": "100"})
        calls = []
        real_legacy_start = st.legacy_ops.start_camera
        st.legacy_ops.start_camera = lambda req: calls.append(req) or real_legacy_start(req)
        try:
            with pytest.raises(SideEffectFailure) as ei:
                router.start_camera(CameraRef(cam))
            assert calls == []  # never retried on legacy (which would have answered "already starting")
            assert ei.value.effects == (f"spawn: the worker of camera {cam}",)
            assert "garbage after the spawn" in str(ei.value)
            d = router.last_decision
            assert d.path == DOMAIN and not d.fallback
            # the truth: the worker runs, and both paths say so
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and router.camera_status(CameraRef(cam)).state.value != "running":
                time.sleep(0.05)
            assert router.camera_status(CameraRef(cam)).state.value == "running"
            assert st.legacy_ops.camera_status(CameraRef(cam)).pid == st.station.parts().supervisor.status(cam).pid is not None
            s = router.metrics.summary().per_op["start_camera"][DOMAIN]
            assert (s.calls, s.errors, s.fallbacks, s.successes) == (1, 1, 0, 0)
        finally:
            st.legacy_ops.start_camera = real_legacy_start
            router.close()
