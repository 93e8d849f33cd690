"""A camera station alerts on a lost camera out of the box (defect 6)."""

from __future__ import annotations

import pytest

from app.domain import Camera
from app.domain.operations import CameraRef, StopCamera
from app.platform.paths import resolve_paths
from app.station import SETTING_OFFLINE_SEEDED, SETTING_RULES_SEEDED, Station, StationOptions
from app.supervisor import RestartPolicy
from tests.support.stream_server import StreamServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow



def test_a_fresh_station_fires_camera_offline_when_a_source_dies(tmp_path):
    st = Station(StationOptions(paths=resolve_paths(tmp_path / "data"), seed_demo=False, autostart=False,
                                policy=RestartPolicy(stop_timeout=3.0)))
    st.open()
    try:
        (rule,) = [r for r in st.parts().admin.list_rules() if r.metric == "offline"]
        assert rule.enabled and rule.target.value == "all_cameras"
        with StreamServer() as server:
            cam = st.parts().admin.add_camera(Camera(name="Gate", source=server.url, stall_timeout=60))
            st.reload_cameras()
            st.call("start_camera", CameraRef(cam.id))
            wait_for(lambda: st.parts().supervisor.status(cam.id).source == "up", 30, "video from the camera")
            server.stop()
            firing = wait_for(lambda: [a for a in st.parts().alerts.firing() if a.camera_id == cam.id], 40,
                              "the camera offline alert")
        assert firing[0].rule_name == rule.name and firing[0].severity.value == "critical"
        st.call("stop_camera", StopCamera(cam.id))
    finally:
        st.close()


def test_a_station_started_before_the_rule_shipped_gets_it_once(tmp_path):
    paths = resolve_paths(tmp_path / "data")
    with Station(StationOptions(paths=paths, seed_demo=False, autostart=False)) as st:
        (rule,) = [r for r in st.parts().admin.list_rules() if r.metric == "offline"]
        st.parts().admin.delete_rule(rule.id)
        with st.parts().store.uow() as uow:
            uow.settings.set(SETTING_OFFLINE_SEEDED, None)  # as a station of the previous release left it:
            uow.settings.set(SETTING_RULES_SEEDED, True)  # seeded, before the seeded templates were listed
            uow.commit()
    with Station(StationOptions(paths=paths, seed_demo=False, autostart=False)) as st:
        (rule,) = [r for r in st.parts().admin.list_rules() if r.metric == "offline"]
        st.parts().admin.delete_rule(rule.id)  # the operator does not want it
    with Station(StationOptions(paths=paths, seed_demo=False, autostart=False)) as st:
        assert not [r for r in st.parts().admin.list_rules() if r.metric == "offline"]
