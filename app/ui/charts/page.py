"""The charts page: per-camera fps/CPU/RSS/motion, station load and rollout figures (pyqtgraph).

Plot items are created once (a curve per series, the first time the series
appears). One timer, running only while the page is visible, calls ``setData``
with the metrics registry's window, and only for series that got a new sample.
Every plot is refreshed at 2 Hz, but the timer takes the plots in turn (one
plot per tick, eight ticks per 500 ms): repainting all eight plots at once
blocked the event loop for 50-130 ms on a small box, one plot at a time costs
a few milliseconds. Curves clip to the view and downsample (peak mode);
antialiasing is off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QCoreApplication, Signal  # noqa: E402
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget  # noqa: E402

from app.station.port import MetricsReader, StationPort  # noqa: E402
from app.ui.common.refresh import RefreshWhileVisible  # noqa: E402
from app.ui.common.texts import QT_TRANSLATE_NOOP  # noqa: E402

pg.setConfigOptions(antialias=False, useOpenGL=False, background="w", foreground="k")

REFRESH_MS = 500  # 2 Hz
WINDOWS = {"5 min": 300, "15 min": 900, "1 h": 3600}
WINDOW_TEXTS = (QT_TRANSLATE_NOOP("ChartsPage", "5 min"), QT_TRANSLATE_NOOP("ChartsPage", "15 min"),
                QT_TRANSLATE_NOOP("ChartsPage", "1 h"))
#: 16 colours that stay apart from each other on white (one per camera up to 16)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#e6550d", "#3182bd", "#31a354")

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Line:
    """One fixed series on a plot: name, labels, legend text, value transform."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    legend: str = ""
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    style: Any = None


@dataclass(frozen=True)
class PlotSpec:
    key: str
    title: str
    unit: str
    per_camera: str | None = None  # discover one curve per camera of this series
    lines: tuple[Line, ...] = ()
    scale: float = 1.0


def _pct(a: np.ndarray) -> np.ndarray:
    return a * 100.0


def _used(a: np.ndarray) -> np.ndarray:
    return 100.0 - a


def _path(p: str) -> tuple[tuple[str, str], ...]:
    return (("path", p),)


DASH = {"p50": None, "p95": "dash", "p99": "dot"}

# legends written out whole, so that each is extracted for translation
_LATENCY_LEGENDS = {
    ("domain", "p50"): QT_TRANSLATE_NOOP("ChartsPage", "domain P50"),
    ("domain", "p95"): QT_TRANSLATE_NOOP("ChartsPage", "domain P95"),
    ("domain", "p99"): QT_TRANSLATE_NOOP("ChartsPage", "domain P99"),
    ("legacy", "p50"): QT_TRANSLATE_NOOP("ChartsPage", "legacy P50"),
    ("legacy", "p95"): QT_TRANSLATE_NOOP("ChartsPage", "legacy P95"),
    ("legacy", "p99"): QT_TRANSLATE_NOOP("ChartsPage", "legacy P99"),
}
_TRACK_LEGENDS = {
    ("rules", "error_rate"): QT_TRANSLATE_NOOP("ChartsPage", "rules errors"),
    ("rules", "domain_share"): QT_TRANSLATE_NOOP("ChartsPage", "rules share"),
    ("cameras", "error_rate"): QT_TRANSLATE_NOOP("ChartsPage", "cameras errors"),
    ("cameras", "domain_share"): QT_TRANSLATE_NOOP("ChartsPage", "cameras share"),
    ("rules", "domain"): QT_TRANSLATE_NOOP("ChartsPage", "rules domain P95"),
    ("rules", "legacy"): QT_TRANSLATE_NOOP("ChartsPage", "rules legacy P95"),
    ("cameras", "domain"): QT_TRANSLATE_NOOP("ChartsPage", "cameras domain P95"),
    ("cameras", "legacy"): QT_TRANSLATE_NOOP("ChartsPage", "cameras legacy P95"),
}

PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("fps", QT_TRANSLATE_NOOP("ChartsPage", "Camera FPS"), "fps", per_camera="fps"),
    PlotSpec("cpu", QT_TRANSLATE_NOOP("ChartsPage", "Camera CPU"), "%", per_camera="cpu_percent"),
    PlotSpec("rss", QT_TRANSLATE_NOOP("ChartsPage", "Camera memory (RSS)"), "MB", per_camera="rss_mb"),
    PlotSpec("motion", QT_TRANSLATE_NOOP("ChartsPage", "Camera motion"), QT_TRANSLATE_NOOP("ChartsPage", "score"), per_camera="motion"),
    PlotSpec("station", QT_TRANSLATE_NOOP("ChartsPage", "Station load"), "%", lines=(
        Line("cpu_percent", legend=QT_TRANSLATE_NOOP("ChartsPage", "CPU")), Line("memory_percent", legend=QT_TRANSLATE_NOOP("ChartsPage", "memory")),
        Line("disk_free_percent", legend=QT_TRANSLATE_NOOP("ChartsPage", "disk used"), transform=_used))),
    PlotSpec("rollout", QT_TRANSLATE_NOOP("ChartsPage", "Rollout: domain error rate and share"), "%", lines=(
        Line("domain_error_rate", legend=QT_TRANSLATE_NOOP("ChartsPage", "domain error rate"), transform=_pct),
        Line("domain_share", legend=QT_TRANSLATE_NOOP("ChartsPage", "domain share"), transform=_pct),
        Line("rollout_percent", legend=QT_TRANSLATE_NOOP("ChartsPage", "target %")))),
    PlotSpec("latency", QT_TRANSLATE_NOOP("ChartsPage", "Operation latency P50/P95/P99"), "ms", lines=tuple(
        Line(f"rollout_{q}_ms", _path(p), _LATENCY_LEGENDS[p, q], style=(p, q))
        for p in ("domain", "legacy") for q in ("p50", "p95", "p99"))),
    PlotSpec("fallbacks", QT_TRANSLATE_NOOP("ChartsPage", "Fallbacks and domain errors (window)"), QT_TRANSLATE_NOOP("ChartsPage", "calls"), lines=(
        Line("rollout_fallbacks", _path("domain"), QT_TRANSLATE_NOOP("ChartsPage", "fallbacks")),
        Line("rollout_errors", _path("domain"), QT_TRANSLATE_NOOP("ChartsPage", "domain errors")))),
    # per rollout track (app.metrics.tracks): the plan rolls out the rules track first, then the cameras track
    PlotSpec("tracks", QT_TRANSLATE_NOOP("ChartsPage", "Per track: domain error rate and domain share"), "%",
             lines=tuple(Line(f"rollout_track_{m}", (("track", t),), _TRACK_LEGENDS[t, m], transform=_pct)
                         for t in ("rules", "cameras") for m in ("error_rate", "domain_share"))),
    PlotSpec("track_latency", QT_TRANSLATE_NOOP("ChartsPage", "Per track: P95 latency by path"), "ms",
             lines=tuple(Line("rollout_track_p95_ms", (("path", p), ("track", t)), _TRACK_LEGENDS[t, p])
                         for t in ("rules", "cameras") for p in ("domain", "legacy"))),
)


@dataclass
class _Curve:
    item: pg.PlotDataItem
    name: str
    labels: tuple[tuple[str, str], ...]
    transform: Callable[[np.ndarray], np.ndarray] | None
    last: tuple[float, int] = (0.0, -1)  # (last ts, count) drawn
    updates: int = 0
    history: tuple[np.ndarray, np.ndarray] | None = None  # stored minutes before the live window
    history_window: int = 0


@dataclass
class _Plot:
    spec: PlotSpec
    item: pg.PlotItem
    curves: dict[SeriesKey, _Curve] = field(default_factory=dict)
    legend: Any = None  # a LegendItem under the plot, outside its data area


class ChartsPage(RefreshWhileVisible, QWidget):
    """Live charts from the station's metrics (``station.metrics_reader()``) and its stored history."""

    refreshed = Signal(int)  # curves updated in this refresh

    def __init__(self, station: StationPort, registry: MetricsReader | None = None, parent: QWidget | None = None,
                 *, interval_ms: int = REFRESH_MS):
        super().__init__(parent)
        self.station = station
        self._registry = registry
        self._stored: dict[str, list[SeriesKey]] | None = None
        self.window_s = 300
        self.window_box = QComboBox()
        for text in WINDOWS:
            self.window_box.addItem(QCoreApplication.translate("ChartsPage", text), text)
        self.window_box.currentIndexChanged.connect(lambda _i: self._set_window(self.window_box.currentData()))
        self.note = QLabel()
        self.note.setStyleSheet("color: #607d8b;")
        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("Show the last")))
        top.addWidget(self.window_box)
        top.addStretch(1)
        top.addWidget(self.note)
        self.view = pg.GraphicsLayoutWidget()
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        self.plots: dict[str, _Plot] = {}
        grid = self.view.ci.layout
        for i, spec in enumerate(PLOTS):
            axis = pg.DateAxisItem(orientation="bottom")
            row = (i // 2) * 2  # the plot; its legend in the row below, outside the data area
            p = self.view.addPlot(row=row, col=i % 2, title=QCoreApplication.translate("ChartsPage", spec.title), axisItems={"bottom": axis})
            p.setLabel("left", units=None, text=QCoreApplication.translate("ChartsPage", spec.unit))
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            legend = pg.LegendItem(labelTextSize="8pt", colCount=4)
            self.view.addItem(legend, row=row + 1, col=i % 2)
            grid.setRowStretchFactor(row, 10)
            grid.setRowStretchFactor(row + 1, 0)
            p.getAxis("left").enableAutoSIPrefix(False)
            p.getViewBox().setLimits(yMin=0, minYRange=1)
            p.setMenuEnabled(False)
            p.getViewBox().setMouseEnabled(x=False, y=True)
            p.enableAutoRange(axis="y", enable=True)
            self.plots[spec.key] = _Plot(spec, p, legend=legend)
            for line in spec.lines:
                self._curve(self.plots[spec.key], (line.name, line.labels), line.legend, line.transform,
                            line.style)
        # One plot per tick, in turn: every plot refreshes once per interval_ms, spread out.
        self._refresh_while_visible(interval_ms // len(self.plots), self.refresh_next, on_show=self.refresh)
        self._next = 0

    # ------------------------------------------------------------ data

    @property
    def registry(self) -> MetricsReader | None:
        return self._registry if self._registry is not None else self.station.metrics_reader()

    def _set_window(self, text: str) -> None:
        self.window_s = WINDOWS.get(text, self.window_s)
        for p in self.plots.values():
            for c in p.curves.values():
                c.last = (0.0, -1)
        self.refresh()

    def _curve(self, plot: _Plot, key: SeriesKey, legend: str, transform: Callable[[np.ndarray], np.ndarray] | None,
               style: object = None) -> _Curve:
        c = plot.curves.get(key)
        if c is not None:
            return c
        n = len(plot.curves)
        if style is not None and isinstance(style, tuple):
            path, q = style
            colour = "#6a1b9a" if path == "domain" else "#00897b"
            dash = {"p50": pg.QtCore.Qt.PenStyle.SolidLine, "p95": pg.QtCore.Qt.PenStyle.DashLine,
                    "p99": pg.QtCore.Qt.PenStyle.DotLine}[q]
            pen = pg.mkPen(colour, width=1.5, style=dash)
        else:
            pen = pg.mkPen(PALETTE[n % len(PALETTE)], width=1.5)
        name = QCoreApplication.translate("ChartsPage", legend) if legend else key[0]
        item = plot.item.plot([], [], pen=pen, name=name)
        if plot.legend is not None:
            plot.legend.addItem(item, name)
        item.setClipToView(True)
        item.setDownsampling(auto=True, method="peak")
        c = _Curve(item, key[0], key[1], transform)
        plot.curves[key] = c
        return c

    def _camera_name(self, camera_id: str) -> str:
        try:
            cam = self.station.camera(int(camera_id))
        except (TypeError, ValueError):
            cam = None
        return cam.name if cam is not None else f"camera {camera_id}"

    def refresh(self) -> int:
        """Pull the windows of every series into its curve; returns how many curves changed."""
        return self._refresh(list(self.plots.values()))

    def refresh_next(self) -> int:
        """The timer's tick: refresh the next plot in turn."""
        plots = list(self.plots.values())
        plot = plots[self._next % len(plots)]
        self._next += 1
        return self._refresh([plot])

    def _refresh(self, plots: list[_Plot]) -> int:
        reg = self.registry
        if reg is None:
            self.note.setText(self.tr("metrics are not available in this station"))
            return 0
        now = reg.now() if hasattr(reg, "now") else None
        end = now if now is not None else time.time()
        updated = 0
        for plot in plots:
            spec = plot.spec
            if spec.per_camera:
                for key in [*reg.keys(spec.per_camera), *self._stored_series(spec.per_camera)]:
                    labels = dict(key[1])
                    if "camera" in labels and key not in plot.curves:
                        self._curve(plot, key, self._camera_name(labels["camera"]), None)
            for key, c in plot.curves.items():
                hx, hy = self._history(c, end)
                sample = reg.latest_sample(key)
                if sample is None and not len(hx):
                    continue
                xs, ys = reg.window(c.name, c.labels, self.window_s, now)
                mark = (float(xs[-1]) if len(xs) else 0.0, len(xs) + len(hx))
                if mark == c.last:
                    continue
                c.last = mark
                if len(hx):  # stored minutes before the first live sample (after a restart)
                    keep = hx < (xs[0] if len(xs) else np.inf)
                    xs, ys = np.concatenate([hx[keep], xs]), np.concatenate([hy[keep], ys])
                if c.transform is not None:
                    ys = c.transform(ys)
                c.item.setData(xs, ys)
                c.updates += 1
                updated += 1
        # Every chart shows the same time range, the chosen window up to now (those not redrawn
        # this tick too: a tick may redraw only some of them).
        for plot in self.plots.values():
            plot.item.setXRange(end - self.window_s, end, padding=0)
        self.note.setText("")
        self.refreshed.emit(updated)
        return updated

    def _stored_series(self, name: str) -> list[SeriesKey]:
        """Per-camera series known only from the stored rollups (cameras not running since a restart)."""
        if self._stored is None:
            try:
                self._stored = {n: self.station.metric_series(n) for n in {p.per_camera for p in PLOTS if p.per_camera}}
            except Exception:  # noqa: BLE001 - history is a bonus; live data still shows
                self._stored = {}
        return list(self._stored.get(name, ()))

    def _history(self, c: _Curve, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The curve's stored minute means within the window (read once per window choice)."""
        if c.history is None or c.history_window != self.window_s:
            empty = (np.empty(0), np.empty(0))
            try:
                c.history = self.station.metric_history(c.name, c.labels, end - self.window_s, end)
            except Exception:  # noqa: BLE001 - as above
                c.history = empty
            c.history_window = self.window_s
        return c.history

    def curve_count(self) -> int:
        return sum(len(p.curves) for p in self.plots.values())

    def curve(self, plot_key: str, name: str, labels: dict[str, str] | None = None) -> pg.PlotDataItem | None:
        key = (name, tuple(sorted((labels or {}).items())))
        c = self.plots[plot_key].curves.get(key)
        return c.item if c else None

    def shutdown(self) -> None:
        self.timer.stop()
