"""A real worker on a real RTSP camera (GStreamer's RTSP server on 127.0.0.1): running with frames,
then the server dies and the camera shows source down, not green."""

from __future__ import annotations

import selectors
import socket
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.domain.camera import Camera
from app.domain.operations import CameraRef, StopCamera
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions
from app.supervisor import RestartPolicy
from app.ui.common.formatting import VIEW_COLOURS
from app.ui.common.models import CameraTableModel
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve().parents[1] / "support" / "rtsp_server.py"
PACKAGES = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-ugly gstreamer1.0-rtsp")
GREEN = QColor(VIEW_COLOURS["live"])


def _require_gstreamer_rtsp() -> None:
    """Fail (never skip) with what to install when the RTSP server cannot run on this machine."""
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay') if Gst.ElementFactory.find(e) is None]; "
             "print(' '.join(missing)); raise SystemExit(1 if missing else 0)")
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.fail(f"{SYSTEM_PYTHON} is missing: the RTSP test server runs on the system Python "
                    f"(apt-get install {PACKAGES})")
    if r.returncode:
        pytest.fail(f"GStreamer's RTSP server cannot run here ({(r.stdout + r.stderr).strip()[-300:]}): "
                    f"apt-get install {PACKAGES}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline() if sel.select(timeout=20) else ""
    sel.close()
    if not line.startswith("ready"):
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        pytest.fail(f"the RTSP test server did not start on port {port}: {line!r}")
    return proc



def _state(model: CameraTableModel, cid: int) -> tuple[str, QColor]:
    idx = model.index(model.row_of(cid), CameraTableModel.COL_STATE)
    return idx.data(), idx.data(Qt.ItemDataRole.BackgroundRole)


def test_a_dead_rtsp_camera_shows_source_down_not_green(qapp, tmp_path):
    _require_gstreamer_rtsp()
    port = _free_port()
    url = f"rtsp://127.0.0.1:{port}/test"
    server = _start_server(port)
    st = Station(StationOptions(paths=resolve_paths(tmp_path / "data"), seed_demo=False, autostart=False,
                                policy=RestartPolicy(stop_timeout=3.0)))
    st.open()
    try:
        cam = st.parts().admin.add_camera(Camera(name="Gate", source=url, stall_timeout=60))
        st.reload_cameras()
        st.call("start_camera", CameraRef(cam.id))
        model = CameraTableModel()

        def shown():
            model.update([st.call("camera_status", CameraRef(cam.id))], {cam.id: url})
            return _state(model, cam.id)

        status = wait_for(lambda: (s := st.parts().supervisor.status(cam.id)).source == "up" and s.fps and s, 40,
                          "frames from the RTSP camera")
        assert status.codec == "h264" and (status.width, status.height) == (320, 240)
        assert shown() == ("running", GREEN)
        server.kill()  # the camera's server vanishes; the worker stays up and reports its source down
        server.wait(10)
        status = wait_for(lambda: (s := st.parts().supervisor.status(cam.id)).source == "down" and s, 30,
                          "the RTSP camera's source down")
        text, colour = shown()
        assert text == "source down" and colour != GREEN, f"the table shows {text!r} in {colour.name()}"
        assert "127.0.0.1" in (status.error or ""), status.error
        st.call("stop_camera", StopCamera(cam.id))
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        server.stdout.close()
        st.close()
