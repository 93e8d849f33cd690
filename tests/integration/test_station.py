"""The station facade end to end: first start, live figures, alerts, and changes made by another process."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.domain.operations import CameraRef
from app.metrics import camera_labels
from app.platform.paths import resolve_paths
from app.station import Station, StationAlreadyRunning, StationOptions
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow



@pytest.fixture
def station(tmp_path):
    st = Station(StationOptions(paths=resolve_paths(tmp_path / "data"), autostart=False))
    st.open()
    yield st
    st.close()


def test_first_start_seeds_demo_cameras_and_rollout_rules(station):
    names = [c.name for c in station.cameras()]
    assert names == ["Lobby", "Loading dock", "Server room", "Front gate"]
    rules = station.list_rules()
    assert {r.metric for r in rules} == {"offline", "domain_error_rate", "success_rate", "p95_ratio",
                                         "health_inconclusive", "evidence_blocked"}
    (offline,) = [r for r in rules if r.metric == "offline"]
    assert offline.target.value == "all_cameras" and offline.severity.value == "critical"
    assert all(r.enabled for r in rules)
    assert [s.state.value for s in station.live_status()] == ["stopped", "stopped", "stopped", "inactive"]


def test_seeding_happens_once(tmp_path):
    paths = resolve_paths(tmp_path / "data")
    with Station(StationOptions(paths=paths, autostart=False)) as st:
        lobby = next(c for c in st.cameras() if c.name == "Lobby")
        st.parts().admin.remove_camera(lobby.id)
    with Station(StationOptions(paths=paths, autostart=False)) as st:
        assert "Lobby" not in [c.name for c in st.cameras()]
        assert len(st.list_rules()) == 6  # offline, four rollout rules, the evidence floor


def test_a_default_rule_added_in_a_later_version_reaches_a_seeded_station_once(tmp_path):
    paths = resolve_paths(tmp_path / "data")
    with Station(StationOptions(paths=paths, autostart=False)) as st:
        inconclusive = next(r for r in st.list_rules() if r.template == "rollout_inconclusive")
        latency = next(r for r in st.list_rules() if r.template == "rollout_latency")
        with st.parts().store.uow() as uow:  # as a station seeded by the version with three rules left it
            uow.rules.remove(inconclusive.id)
            uow.settings.set("alerts.default_rules_seeded", True)
            uow.commit()
        st.parts().admin.delete_rule(latency.id)  # an operator removed one of the first three
    with Station(StationOptions(paths=paths, autostart=False)) as st:
        templates = sorted(r.template for r in st.list_rules())
        assert templates == ["camera_offline", "evidence_blocked", "rollout_error_rate", "rollout_inconclusive", "rollout_success_rate"]
        st.parts().admin.delete_rule(next(r.id for r in st.list_rules() if r.template == "rollout_inconclusive"))
    with Station(StationOptions(paths=paths, autostart=False)) as st:
        assert "rollout_inconclusive" not in [r.template for r in st.list_rules()]


def test_started_camera_feeds_metrics(station):
    lobby = next(c for c in station.cameras() if c.name == "Lobby")
    station.call("start_camera", CameraRef(lobby.id), actor="test")
    fps = wait_for(lambda: station.parts().metrics.latest("fps", camera_labels(lobby.id)), 15, "an fps sample")
    assert fps > 0
    assert station.parts().metrics.latest("offline", camera_labels(lobby.id)) == 0
    assert station.parts().metrics.latest("cpu_percent") is not None  # station series


def test_second_station_on_the_same_data_dir_is_refused(station):
    with pytest.raises(StationAlreadyRunning):
        Station(StationOptions(paths=station.paths, autostart=False)).open()


def test_cli_change_in_another_process_reaches_the_running_station(station):
    events = []
    station.subscribe(lambda ev: events.append(ev.kind))
    lobby = next(c for c in station.cameras() if c.name == "Lobby")
    station.call("start_camera", CameraRef(lobby.id), actor="test")
    wait_for(lambda: station.parts().supervisor.status(lobby.id).state.value == "running", 15, "Lobby running")

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(station.paths.data_dir)],
                             capture_output=True, text=True, timeout=60, cwd=REPO)
        assert out.returncode == 0, out.stderr

    cli("cameras", "add", "Porch", "test://still")
    # The station's "cameras" event is what tells the window: wait for it, not only for
    # the database (the event comes a moment after the row is visible).
    wait_for(lambda: "cameras" in events, 10, "the station's cameras event")
    assert "Porch" in [c.name for c in station.cameras()]
    cli("cameras", "remove", "Lobby")
    wait_for(lambda: lobby.id not in [c.id for c in station.cameras()], 5, "Lobby gone")
    # Its worker is stopped: a removed camera leaves nothing running.
    wait_for(lambda: station.parts().supervisor.status(lobby.id).state.value == "stopped", 10, "Lobby's worker stopped")


def test_settings_changes_are_stored_and_audited(station):
    events = []
    station.subscribe(lambda ev: events.append(ev.kind))
    station.set_settings({"kiosk.cycle_s": 20, "api.port": 9000}, actor="tester")
    station.set_settings({"kiosk.cycle_s": 20}, actor="tester")  # unchanged: not audited again
    assert station.get_settings()["kiosk.cycle_s"] == 20
    with station.parts().store.uow() as uow:
        entries = [e for e in uow.audit.recent(op_prefix="settings.") if e.actor == "tester"]
    assert sorted((e.key, e.detail["new"], e.actor) for e in entries) == [
        ("api.port", 9000, "tester"), ("kiosk.cycle_s", 20, "tester")]
    assert "settings" in events


def test_export_through_the_facade(station, tmp_path):
    out = tmp_path / "cams.yaml"
    assert station.export_file(out) == 4
    assert "Front gate" in out.read_text()


def test_start_all_and_stop_all_are_audited_as_the_station(tmp_path):
    with Station(StationOptions(paths=resolve_paths(tmp_path / "data"), autostart=False)) as st:
        active = [c.id for c in st.cameras() if c.active]
        st.autostart()
        st.stop_all()

        def entries():
            got = [e for e in st.audit_page(200) if e.op in ("start_camera", "stop_camera")]
            return got if len(got) >= 2 * len(active) else None

        found = wait_for(entries, 10, "the start and stop of every active camera in the audit log")
        assert {e.actor for e in found} == {"station"}
        assert len([e for e in found if e.op == "start_camera"]) == len(active)
