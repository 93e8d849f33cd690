"""The charts page on a real metrics registry fed by the station's supervisor and router."""

from __future__ import annotations

import numpy as np
import pytest

from app.ui.charts.page import ChartsPage
from tests.ui.conftest import START_TIMEOUT_MS, camera_id

pytestmark = pytest.mark.slow


@pytest.fixture
def metrics(station, window):
    """The opened station's registry, fed by its supervisor, station and rollout feeds."""
    assert station.parts().metrics is not None
    return station.parts().metrics


def test_charts_show_camera_fps_and_station_load(qtbot, window, station, metrics):
    page = ChartsPage(station, metrics)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    cid = camera_id(station, "Lobby")
    window.start_camera(cid)

    def fps_curve_has_data() -> bool:
        c = page.curve("fps", "fps", {"camera": str(cid)})
        if c is None:
            return False
        _x, y = c.getData()
        return y is not None and len(y) > 0 and float(np.nanmax(y)) > 0

    qtbot.waitUntil(fps_curve_has_data, timeout=START_TIMEOUT_MS)
    items = {(k, key): id(c.item) for k, p in page.plots.items() for key, c in p.curves.items()}
    station_cpu = page.curve("station", "cpu_percent")
    qtbot.waitUntil(lambda: station_cpu.getData()[1] is not None and len(station_cpu.getData()[1]) > 0,
                    timeout=10_000)
    # The legend names the camera, and curves are made once: more refreshes keep every curve's item (a
    # series that only now has its first sample, such as a camera's CPU, may add a curve of its own).
    legend = page.plots["fps"].legend
    assert legend is not None and "Lobby" in legend.names()
    for _ in range(3):
        page.refresh()
    now = {(k, key): id(c.item) for k, p in page.plots.items() for key, c in p.curves.items()}
    assert {key: now.get(key) for key in items} == items
    # An unchanged series is not redrawn.
    c = page.plots["fps"].curves[("fps", (("camera", str(cid)),))]
    before = c.updates
    page.refresh()
    page.refresh()
    assert c.updates - before <= 1
    window.stop_camera(cid)


def test_charts_without_metrics_say_so(qtbot, station):
    class NoMetrics:
        def metrics_reader(self) -> None:
            return None

    page = ChartsPage(NoMetrics())
    qtbot.addWidget(page)
    assert page.refresh() == 0
    assert "not available" in page.note.text()


def test_the_per_track_charts_plot_each_track_on_its_own(qtbot, window, station, metrics):
    from app.domain.operations import CameraRef

    page = ChartsPage(station, metrics)
    qtbot.addWidget(page)
    page.resize(1000, 900)
    page.show()
    # the cameras track at 50 %, the rules track off: camera calls feed the cameras track's curves only
    station.parts().router.set(track="cameras", use_domain=True, percent=50, actor="test",
                               override_reason="test setup")
    cams = [c.id for c in station.cameras()]  # 50 % of the cameras' keys: some on each path

    def has_data(plot: str, name: str, labels: dict[str, str]) -> bool:
        c = page.curve(plot, name, labels)
        if c is None:
            return False
        _x, y = c.getData()
        return y is not None and len(y) > 0 and not bool(np.all(np.isnan(y)))

    def calls_until(cond) -> bool:
        for _ in range(5):
            for cid in cams:
                station.call("camera_status", CameraRef(cid), actor="test")
        page.refresh()
        return cond()

    share = ("tracks", "rollout_track_domain_share", {"track": "cameras"})
    latency = {p: ("track_latency", "rollout_track_p95_ms", {"path": p, "track": "cameras"}) for p in ("domain", "legacy")}
    qtbot.waitUntil(lambda: calls_until(lambda: has_data(*share) and all(has_data(*latency[p]) for p in latency)),
                    timeout=20_000)
    _x, y = page.curve(*share).getData()
    assert 0.0 < float(np.nanmax(y)) < 100.0  # a share, in %, of routed calls: some on each path
    # nothing called on the rules track: its curves stay empty
    assert not has_data("tracks", "rollout_track_domain_share", {"track": "rules"})
    assert not has_data("track_latency", "rollout_track_p95_ms", {"path": "domain", "track": "rules"})
