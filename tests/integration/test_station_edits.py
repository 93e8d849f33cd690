"""Edits reach running workers (defect 2): a changed camera restarts once, audited; an added one starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from app.domain.camera import Camera
from app.domain.operations import StopCamera
from app.platform.paths import resolve_paths
from app.station import EDIT_ACTOR, Station, StationOptions
from app.supervisor import RestartPolicy
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow



def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def running_pid(station: Station, cid: int) -> int | None:
    st = station.parts().supervisor.status(cid)
    return st.pid if st.state.value == "running" else None


def edit_restarts(station: Station, cid: int) -> list:
    station.parts().router.audit.flush()
    with station.parts().store.uow() as uow:
        entries = uow.audit.recent(500)
    return [e for e in entries if e.op == "restart_camera" and e.actor == EDIT_ACTOR and e.key == f"camera:{cid}"]


@pytest.fixture
def station(tmp_path):
    st = Station(StationOptions(paths=resolve_paths(tmp_path / "data"), seed_demo=False, autostart=True,
                                watch_interval=0.2, policy=RestartPolicy(stop_timeout=3.0)))
    st.open()
    yield st
    st.close()


def test_an_edit_restarts_the_running_worker_once_and_is_audited(station):
    cam = station.parts().admin.add_camera(Camera(name="Yard", source="test://moving?size=320x180&rate=15"))
    station.reload_cameras()  # added as active while the station runs: it starts
    pid = wait_for(lambda: running_pid(station, cam.id), 30, "the added camera to run")
    station.parts().admin.update_camera(cam.id, {"max_fps": 5.0})
    station.reload_cameras()
    new_pid = wait_for(lambda: (p := running_pid(station, cam.id)) and p != pid and p, 30, "a restarted worker")
    argv = psutil.Process(new_pid).cmdline()
    assert argv[argv.index("--max-fps") + 1] in ("5", "5.0"), "the new worker runs with the new fps cap"
    station.reload_cameras()  # nothing changed since: no second restart
    assert len(edit_restarts(station, cam.id)) == 1
    # A change a worker does not read (the location) restarts nothing.
    station.parts().admin.update_camera(cam.id, {"location": "North"})
    station.reload_cameras()
    assert running_pid(station, cam.id) == new_pid
    assert len(edit_restarts(station, cam.id)) == 1
    station.call("stop_camera", StopCamera(cam.id))


def test_cli_add_and_import_reach_the_running_station(station, tmp_path):
    data_dir = station.paths.data_dir
    out = cli(data_dir, "cameras", "add", "Dock", "test://bars?size=320x180&rate=15")
    assert out.returncode == 0, out.stderr
    cid = wait_for(lambda: next((c.id for c in station.cameras() if c.name == "Dock"), None), 10, "the CLI's camera")
    pid = wait_for(lambda: running_pid(station, cid), 30, "the camera added by the CLI to start")
    f = tmp_path / "cams.yaml"
    f.write_text("version: 1\ncameras:\n  - name: Dock\n    source: test://bars?size=320x180&rate=15\n"
                 "    stall_timeout: 20\n", encoding="utf-8")
    out = cli(data_dir, "import", str(f))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: (p := running_pid(station, cid)) and p != pid, 30, "the imported change to restart the worker")
    assert len(edit_restarts(station, cid)) == 1
    station.call("stop_camera", StopCamera(cid))
