"""The charts page's timer: one refresh of every plot per tick, new data only for series that moved on,
the same plot items from tick to tick, and ranges that do not move on every tick."""

from __future__ import annotations

import numpy as np
import pytest

from app.metrics import MetricsRegistry, camera_labels
from app.ui.charts.page import ChartsPage, peak_downsample, y_range_for

CAMERAS = (1, 2, 3)


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def feed(reg: MetricsRegistry, ts: float, cameras=CAMERAS) -> None:
    for cid in cameras:
        reg.record("fps", 9.0 + cid / 10, camera_labels(cid), ts=ts)
        reg.record("rss_mb", 80.0 + cid, camera_labels(cid), ts=ts)
    reg.record("cpu_percent", 40.0, ts=ts)


@pytest.fixture
def page(qtbot, station):
    station.open()
    clock = Clock(1_700_000_000.0)
    reg = MetricsRegistry(clock=clock)
    for i in range(60):
        feed(reg, clock.t - 60 + i)
    page = ChartsPage(station, reg, interval_ms=50)
    qtbot.addWidget(page)
    page.resize(1000, 800)
    page.show()
    qtbot.waitUntil(lambda: page.refreshes >= 2, timeout=5_000)
    page.clock, page.reg = clock, reg  # type: ignore[attr-defined]
    return page


def _items(page: ChartsPage) -> dict:
    return {(k, key): c.item for k, p in page.plots.items() for key, c in p.curves.items()}


def test_each_tick_refreshes_every_moved_series_in_one_batch_with_the_same_items(qtbot, page):
    items = _items(page)
    fps = [page.plots["fps"].curves[("fps", camera_labels(cid))] for cid in CAMERAS]
    rss = [page.plots["rss"].curves[("rss_mb", camera_labels(cid))] for cid in CAMERAS]
    cpu = page.plots["station"].curves[("cpu_percent", ())]
    moved = [*fps, *rss, cpu]
    before = [c.updates for c in moved]
    scene_items = {k: list(p.item.items) for k, p in page.plots.items()}

    page.clock.t += 1
    feed(page.reg, page.clock.t)
    with qtbot.waitSignal(page.refreshed, timeout=5_000) as tick:
        pass
    # One tick: every series that got a sample was redrawn in it, once.
    assert tick.args == [len(moved)]
    assert [c.updates for c in moved] == [b + 1 for b in before]
    assert _items(page) == items
    assert {k: list(p.item.items) for k, p in page.plots.items()} == scene_items
    x, y = fps[0].item.getData()
    assert x[-1] == pytest.approx(0.0) and y[-1] == pytest.approx(9.1)  # x: seconds before now

    # Nothing new: the next tick redraws nothing and keeps the ranges.
    ranges = {k: p.item.viewRange() for k, p in page.plots.items()}
    with qtbot.waitSignal(page.refreshed, timeout=5_000) as idle:
        pass
    assert idle.args == [0]
    assert [c.updates for c in moved] == [b + 1 for b in before]
    assert {k: p.item.viewRange() for k, p in page.plots.items()} == ranges


def test_a_stopped_camera_slides_left_without_new_data(qtbot, page):
    c1 = page.plots["fps"].curves[("fps", camera_labels(1))]
    c2 = page.plots["fps"].curves[("fps", camera_labels(2))]
    updates = c2.updates
    for _ in range(3):  # camera 2 stops sending; camera 1 goes on
        page.clock.t += 1
        feed(page.reg, page.clock.t, cameras=(1,))
        with qtbot.waitSignal(page.refreshed, timeout=5_000):
            pass
    assert c2.updates == updates
    assert c2.item.pos().x() == pytest.approx(-3.0)  # moved 3 s to the left, as time went on
    assert c1.item.pos().x() == 0.0


def test_the_y_range_follows_the_data_and_not_every_wiggle(qtbot, page):
    vb = page.plots["rss"].item.getViewBox()
    lo, hi = vb.viewRange()[1]
    assert lo <= 81.0 and 83.0 <= hi and hi - lo < 10  # fitted to the data, as auto-range did
    page.clock.t += 1
    feed(page.reg, page.clock.t)
    page.reg.record("rss_mb", 82.5, camera_labels(1), ts=page.clock.t)
    with qtbot.waitSignal(page.refreshed, timeout=5_000):
        pass
    assert tuple(vb.viewRange()[1]) == pytest.approx((lo, hi))  # inside the range: unchanged
    page.clock.t += 1
    feed(page.reg, page.clock.t)
    page.reg.record("rss_mb", 400.0, camera_labels(1), ts=page.clock.t)
    with qtbot.waitSignal(page.refreshed, timeout=5_000):
        pass
    assert vb.viewRange()[1][1] >= 400.0


def test_range_and_downsampling_rules():
    assert y_range_for(None, 9.0, 10.0) == pytest.approx((8.75, 10.25))
    assert y_range_for((8.75, 10.25), 9.2, 9.8) == (8.75, 10.25)  # fits, fills > 40 %
    assert y_range_for((0.0, 100.0), 9.2, 9.8) != (0.0, 100.0)  # fits, but fills 1 %
    assert y_range_for(None, 0.0, 0.0) == (0.0, 1.0)
    xs = np.arange(3600, dtype=float)
    ys = np.sin(xs / 50)
    ys[1000] = 5.0  # a one-second peak
    ys[2000:2100] = np.nan  # a gap
    dx, dy = peak_downsample(xs, ys, 1000)
    assert len(dx) <= 1000 + 8 and np.nanmax(dy) == 5.0
    assert np.isnan(dy).any()
    assert len(peak_downsample(xs[:300], ys[:300], 1000)[0]) == 300  # short windows are drawn as they are


def test_a_plot_is_two_items_whatever_its_curves_and_repaints_once_a_tick(qtbot, page):
    """Every curve of a plot is drawn by its one SeriesSet, its legend by one item painted from
    Qt's cache of it: a tick repaints each plot's curves once and no legend."""
    from app.ui.charts.items import SeriesSet, StaticLegend

    fps = page.plots["fps"]
    assert [type(i) for i in fps.item.items] == [SeriesSet] and len(fps.series) == len(CAMERAS)
    assert isinstance(fps.legend, StaticLegend) and fps.legend.names() == [page._camera_name(str(c)) for c in CAMERAS]
    qtbot.waitUntil(lambda: fps.series.paints > 0 and fps.legend.paints > 0, timeout=5_000)
    legend_paints, paints = fps.legend.paints, fps.series.paints
    for _ in range(3):
        page.clock.t += 1
        feed(page.reg, page.clock.t)
        with qtbot.waitSignal(page.refreshed, timeout=5_000):
            pass
        qtbot.waitUntil(lambda seen=paints: fps.series.paints > seen, timeout=5_000)
        paints = fps.series.paints
    assert fps.legend.paints == legend_paints  # the legend is not drawn again for new data
    # The curves are where the data says, in their colours (no antialiasing: exact pixels).
    img = page.view.grab().toImage()
    colours = {img.pixelColor(x, y).name() for x in range(img.width()) for y in range(0, img.height(), 2)}
    assert {c.item.pen.color().name() for c in fps.curves.values()} <= colours


def test_a_gap_breaks_a_curve_and_the_legend_hides_and_shows_it(qtbot, page):
    from PySide6.QtCore import QPointF, Qt

    fps = page.plots["fps"]
    one = fps.curves[("fps", camera_labels(1))].item
    xs = np.arange(-10.0, 1.0)
    ys = np.full(len(xs), 5.0)
    ys[4] = np.nan  # one second missing
    one.set_data(xs, ys, 5.0, 5.0)
    fps.series.commit()
    assert [p.size() for p in one.polygons()] == [4, 6]  # two runs, no line across the gap
    assert fps.series.dataBounds(0) == pytest.approx((-60.0, 0.0))  # the other cameras' minute
    # A click on the legend's first entry hides that curve: its bounds and paint leave it out.
    legend = fps.legend
    cell = legend._cell(0)
    qtbot.waitUntil(lambda: legend.scene() is not None and legend.isVisible(), timeout=5_000)
    view_pos = page.view.mapFromScene(legend.mapToScene(cell.center()))
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    qtbot.waitUntil(lambda: not one.isVisible(), timeout=5_000)
    assert legend.entry_at(cell.center()) == 0 and legend.entries()[0][0] is one
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    qtbot.waitUntil(one.isVisible, timeout=5_000)
    assert QPointF(one.pos()) == QPointF(0, 0)


def test_the_legend_lists_cameras_in_their_order(qtbot, station):
    station.open()
    clock = Clock(1_700_000_000.0)
    reg = MetricsRegistry(clock=clock)
    cameras = (1, 2, 10, 11, 3)
    feed(reg, clock.t, cameras=cameras)
    page = ChartsPage(station, reg, interval_ms=50)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.refreshes >= 1, timeout=5_000)
    assert [dict(k[1])["camera"] for k in page.plots["fps"].curves] == ["1", "2", "3", "10", "11"]
