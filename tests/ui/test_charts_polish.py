"""Charts an operator can read: legends outside the data, 16 distinct camera colours, one time range
for every chart, and the stored history after a restart instead of an empty chart."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtGui import QColor

from app.domain import Camera
from app.domain.metrics import RollupPoint
from app.metrics import MetricsRegistry, camera_labels
from app.store.rollups import RollupRepository
from app.ui.charts.page import ChartsPage


def test_sixteen_cameras_get_sixteen_colours_and_legends_sit_outside(qtbot, station):
    station.open()
    reg = MetricsRegistry()
    now = time.time()
    for cid in range(1, 17):
        reg.record("fps", float(cid), camera_labels(cid), ts=now)
    page = ChartsPage(station, reg)
    qtbot.addWidget(page)
    page.resize(1200, 900)
    page.show()
    page.refresh()
    plot = page.plots["fps"]
    colours = {QColor(c.item.opts["pen"].color()).name() for c in plot.curves.values()}
    assert len(plot.curves) == 16 and len(colours) == 16
    qtbot.wait(50)
    data_area = plot.item.vb.sceneBoundingRect()
    legend_area = plot.legend.sceneBoundingRect()
    assert not data_area.intersects(legend_area), (data_area, legend_area)
    ranges = {tuple(round(v) for v in p.item.viewRange()[0]) for p in page.plots.values()}
    assert len(ranges) == 1, ranges  # the same time range on every chart
    (lo, hi), = ranges
    assert hi - lo == page.window_s


def test_after_a_restart_the_charts_show_the_stored_minutes(qtbot, station):
    station.open()
    cam = station.parts().admin.add_camera(Camera(name="Yard", source="test://still"))
    station.reload_cameras()
    minute = int(time.time() // 60)
    with station.parts().store.uow() as uow:  # what the previous run rolled up: four minutes at 12 fps
        RollupRepository(uow.session).put_many([
            RollupPoint(series="fps", labels=camera_labels(cam.id), minute=m, count=60, sum=720.0, min=11.0,
                        max=13.0, last=12.0) for m in range(minute - 4, minute)])
        uow.commit()
    page = ChartsPage(station, MetricsRegistry())  # a fresh run: no live sample yet
    qtbot.addWidget(page)
    page.show()
    page.refresh()
    curve = page.curve("fps", "fps", {"camera": str(cam.id)})
    assert curve is not None, "the camera's stored series gets its curve"
    xs, ys = curve.getData()
    assert ys is not None and len(ys) == 4 and np.allclose(ys, 12.0)
    assert "Yard" in page.plots["fps"].legend.names()
