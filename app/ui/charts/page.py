"""The charts page: per-camera fps/CPU/RSS/motion, station load and rollout figures (pyqtgraph).

What a refresh costs is kept small, because the page repaints in one piece:

- plot items are created once, and a plot has two whatever its number of curves: one item that
  draws every curve (``SeriesSet``, a curve is added the first time its series appears) and its
  legend, painted from a pixmap Qt caches (``app/ui/charts/items.py``);
- one timer, once a second and only while the page is visible, refreshes every plot in one batch
  (the series are 1-second samples: a faster refresh draws nothing new), so their repaint is one
  paint of the view;
- a curve is given new data (``setData`` from the registry's ring buffer window, which is already
  clipped to the chart's time range) only when its series got a new sample; otherwise it is moved
  left by its position, which costs no data processing;
- the x axis is time before now ("5 min ago" ... "now") and never moves, so the axes are not
  regenerated each second; the y range is set by the page from the data, on round steps, and
  changes only when the data leaves it or fills less than 40 % of it (pyqtgraph's auto-range would
  recompute the bounds of every curve and move the axis on every refresh);
- what does not change (axes, titles, legends) is painted from pixmaps Qt caches; curves are
  polylines with 1-pixel cosmetic pens (a wider pen is stroked, several times slower);
- antialiasing is off, long windows are downsampled (peak mode).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QCoreApplication, Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QComboBox,
    QGraphicsItem,
    QGraphicsScene,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.station.port import MetricsReader, StationPort  # noqa: E402
from app.ui.charts.items import Series, SeriesSet, StaticLegend  # noqa: E402
from app.ui.common.refresh import RefreshWhileVisible  # noqa: E402
from app.ui.common.texts import QT_TRANSLATE_NOOP  # noqa: E402

pg.setConfigOptions(antialias=False, useOpenGL=False, background="w", foreground="k")

REFRESH_MS = 1000  # one batched refresh a second: the series are 1-second samples
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


#: the x axis's tick step (seconds) for each time window
TICK_STEP = {300: 60, 900: 180, 3600: 600}


def ago_text(seconds_before_now: float) -> str:
    """A tick of the time axis: "now", "3 min ago"."""
    minutes = round(seconds_before_now / 60)
    if minutes <= 0:
        return QCoreApplication.translate("ChartsPage", "now")
    return QCoreApplication.translate("ChartsPage", "{n} min ago").format(n=minutes)


class AgoAxis(pg.AxisItem):  # type: ignore[misc]  # pyqtgraph has no types
    """The time axis: how long before now (x is seconds relative to now, ``-window`` .. 0).

    Its ticks depend on the window only, so the axis is drawn again when the window changes and
    not on every refresh (a clock axis moves, and is regenerated, every second)."""

    def __init__(self) -> None:
        super().__init__(orientation="bottom")
        self.window_s = 300

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:  # noqa: N802, N803
        step = TICK_STEP.get(self.window_s) or max(60, int(self.window_s / 5))
        first = math.ceil(minVal / step) * step
        ticks = [float(v) for v in np.arange(first, maxVal + step / 2, step) if v <= 0]
        return [(float(step), ticks)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [ago_text(-v) for v in values]


def nice_step(span: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 x 10^k) of about a quarter of ``span``."""
    raw = max(span, 1e-9) / 4
    exp = 10.0 ** math.floor(math.log10(raw))
    return next(m * exp for m in (1.0, 2.0, 2.5, 5.0, 10.0) if raw <= m * exp * (1 + 1e-9))


def y_range_for(current: tuple[float, float] | None, lo: float, hi: float,
                min_span: float = 1.0) -> tuple[float, float]:
    """The y range to show for data from ``lo`` to ``hi``: the data with a 5 % margin, on round steps,
    never below 0, at least ``min_span`` tall. The current range is kept while the data fits in it and
    fills at least 40 % of it, so that the axis (and its labels) change now and then, not every refresh."""
    if current is not None:
        c_lo, c_hi = current
        if c_lo <= lo and hi <= c_hi and (max(hi - lo, min_span) >= 0.4 * (c_hi - c_lo)):
            return current
    span = max(hi - lo, min_span)
    step = nice_step(span)
    bottom = max(0.0, math.floor((lo - 0.05 * span) / step) * step)
    top = math.ceil((hi + 0.05 * span) / step) * step
    if top - bottom < min_span:
        top = bottom + min_span
    return bottom, top


def peak_downsample(xs: np.ndarray, ys: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points: each run of samples becomes its lowest and its highest
    value (peaks are kept, as pyqtgraph's "peak" mode does). A gap (NaN) stays only where a whole
    run is NaN."""
    n = len(xs)
    if n <= max_points or max_points < 4:
        return xs, ys
    ds = math.ceil(n / (max_points // 2))
    m = n // ds
    cut = m * ds
    runs = ys[:cut].reshape(m, ds)
    out_x = np.repeat(xs[:cut:ds], 2)
    out_y = np.empty(2 * m)
    out_y[0::2] = np.fmin.reduce(runs, axis=1)
    out_y[1::2] = np.fmax.reduce(runs, axis=1)
    if cut < n:  # the newest samples that do not fill a run, as they are
        out_x, out_y = np.concatenate([out_x, xs[cut:]]), np.concatenate([out_y, ys[cut:]])
    return out_x, out_y


@dataclass
class _Curve:
    item: Series
    name: str
    labels: tuple[tuple[str, str], ...]
    transform: Callable[[np.ndarray], np.ndarray] | None
    last: tuple[float, int] = (0.0, -1)  # (last ts, count) drawn
    updates: int = 0
    history: tuple[np.ndarray, np.ndarray] | None = None  # stored minutes before the live window
    history_window: int = 0
    drawn_at: float | None = None  # the "now" its x data is relative to
    y_min: float = math.nan  # the lowest and the highest value it holds
    y_max: float = math.nan


@dataclass
class _Plot:
    spec: PlotSpec
    item: pg.PlotItem
    series: SeriesSet
    curves: dict[SeriesKey, _Curve] = field(default_factory=dict)
    legend: StaticLegend | None = None  # under the plot, outside its data area
    axis: AgoAxis | None = None
    y_range: tuple[float, float] | None = None  # the y range the page set (None: not set yet)
    y_by_user: bool = False  # the operator zoomed y: the page leaves the y range alone


def _camera_order(key: SeriesKey) -> tuple[int, str]:
    """A per-camera series' place: by camera id as a number."""
    cam = dict(key[1]).get("camera", "")
    return (int(cam), "") if cam.isdigit() else (1 << 62, cam)


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
        #: refreshes done (each one a batch over every plot)
        self.refreshes = 0
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
        # The scene hardly changes shape (the curves' items once a second): an index finds the few
        # items a repaint touches without asking every item of the page for its bounds.
        self.view.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        self.plots: dict[str, _Plot] = {}
        grid = self.view.ci.layout
        for i, spec in enumerate(PLOTS):
            axis = AgoAxis()
            row = (i // 2) * 2  # the plot; its legend in the row below, outside the data area
            p = self.view.addPlot(row=row, col=i % 2, title=QCoreApplication.translate("ChartsPage", spec.title), axisItems={"bottom": axis})
            p.setLabel("left", units=None, text=QCoreApplication.translate("ChartsPage", spec.unit))
            p.showGrid(x=True, y=True, alpha=0.2)
            legend = StaticLegend(columns=4, point_size=8.0)  # painted from Qt's cache of it
            self.view.addItem(legend, row=row + 1, col=i % 2)
            grid.setRowStretchFactor(row, 10)
            grid.setRowStretchFactor(row + 1, 0)
            p.getAxis("left").enableAutoSIPrefix(False)
            vb = p.getViewBox()
            vb.setLimits(yMin=0, minYRange=1)
            p.setMenuEnabled(False)
            vb.setMouseEnabled(x=False, y=True)
            vb.enableAutoRange(x=False, y=False)  # the page sets both ranges (see the module's docstring)
            # What does not change between refreshes is painted from a pixmap Qt keeps (a cache
            # is an item's own: the title's text is a child item of its own).
            for still in (p.titleLabel, *p.titleLabel.childItems(), axis, p.getAxis("left")):
                still.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            series = SeriesSet()  # every curve of the plot, in one item
            p.addItem(series)
            plot = self.plots[spec.key] = _Plot(spec, p, series, legend=legend, axis=axis)
            p.sigRangeChangedManually.connect(lambda _mask, pl=plot: self._zoomed_by_user(pl))
            if p.autoBtn is not None:  # pyqtgraph's "A" button: back to the page's ranges
                p.autoBtn.clicked.connect(lambda *_a, pl=plot: self._resume_ranges(pl))
            for line in spec.lines:
                self._curve(plot, (line.name, line.labels), line.legend, line.transform, line.style)
        self._apply_x_range()
        self._refresh_while_visible(interval_ms, self.refresh)

    # ------------------------------------------------------------ data

    @property
    def registry(self) -> MetricsReader | None:
        return self._registry if self._registry is not None else self.station.metrics_reader()

    def _set_window(self, text: str) -> None:
        self.window_s = WINDOWS.get(text, self.window_s)
        for p in self.plots.values():
            for c in p.curves.values():
                c.last = (0.0, -1)
        self._apply_x_range()
        self.refresh()

    def _apply_x_range(self) -> None:
        for plot in self.plots.values():
            if plot.axis is not None:
                plot.axis.window_s = self.window_s
                plot.axis.picture = None  # its ticks depend on the window
            plot.item.getViewBox().setXRange(-self.window_s, 0, padding=0)

    def _zoomed_by_user(self, plot: _Plot) -> None:
        plot.y_by_user = True

    def _resume_ranges(self, plot: _Plot) -> None:
        """The "A" button turned pyqtgraph's auto-range on: the page takes both ranges back."""
        vb = plot.item.getViewBox()
        vb.enableAutoRange(x=False, y=False)
        plot.y_by_user = False
        plot.y_range = None
        vb.setXRange(-self.window_s, 0, padding=0)
        self._apply_y_range(plot)

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
            pen = pg.mkPen(colour, width=1, style=dash)
        else:
            pen = pg.mkPen(PALETTE[n % len(PALETTE)], width=1)
        name = QCoreApplication.translate("ChartsPage", legend) if legend else key[0]
        # A curve of the plot's one item: the page hands it data already clipped to the window
        # and downsampled, with its bounds.
        item = plot.series.add(key, pen, name)
        if plot.legend is not None:
            plot.legend.add(item, name)
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
        """The timer's tick: every plot in one batch. Returns how many curves got new data."""
        reg = self.registry
        if reg is None:
            self.note.setText(self.tr("metrics are not available in this station"))
            return 0
        now = reg.now() if hasattr(reg, "now") else None
        end = now if now is not None else time.time()
        updated = 0
        for plot in self.plots.values():
            spec = plot.spec
            if spec.per_camera:
                # in camera order (the keys sort as text: "10" before "2"), so the legend reads in order
                for key in sorted([*reg.keys(spec.per_camera), *self._stored_series(spec.per_camera)],
                                  key=_camera_order):
                    labels = dict(key[1])
                    if "camera" in labels and key not in plot.curves:
                        self._curve(plot, key, self._camera_name(labels["camera"]), None)
            width = plot.item.getViewBox().width()
            for key, c in plot.curves.items():
                updated += self._refresh_curve(reg, key, c, now, end, width)
            plot.series.commit()  # the plot's one repaint
            self._apply_y_range(plot)
        self.refreshes += 1
        self.note.setText("")
        self.refreshed.emit(updated)
        return updated

    def _refresh_curve(self, reg: MetricsReader, key: SeriesKey, c: _Curve, now: float | None, end: float,
                       plot_width: float) -> int:
        """New data for a curve whose series moved on; else it slides left with time. 1 when redrawn."""
        hx, hy = self._history(c, end)
        sample = reg.latest_sample(key)
        if sample is None and not len(hx):
            return 0
        if sample is not None and c.last[1] >= 0 and sample[0] == c.last[0]:
            self._slide(c, end)  # nothing new: no window read, no setData
            return 0
        xs, ys = reg.window(c.name, c.labels, self.window_s, now)
        mark = (float(xs[-1]) if len(xs) else 0.0, len(xs) + len(hx))
        if mark == c.last:
            self._slide(c, end)
            return 0
        c.last = mark
        if len(hx):  # stored minutes before the first live sample (after a restart)
            keep = hx < (xs[0] if len(xs) else np.inf)
            xs, ys = np.concatenate([hx[keep], xs]), np.concatenate([hy[keep], ys])
        if c.transform is not None:
            ys = c.transform(ys)
        c.y_min = float(np.fmin.reduce(ys)) if len(ys) else math.nan
        c.y_max = float(np.fmax.reduce(ys)) if len(ys) else math.nan
        xs, ys = peak_downsample(xs, ys, 2 * max(64, int(plot_width)))
        c.item.set_data(xs - end, ys, c.y_min, c.y_max)  # in place again, if it was slid
        c.drawn_at = end
        c.updates += 1
        return 1

    @staticmethod
    def _slide(c: _Curve, end: float) -> None:
        if c.drawn_at is not None and c.drawn_at != end:
            c.item.slide(c.drawn_at - end)

    def _apply_y_range(self, plot: _Plot) -> None:
        """Set the plot's y range from its curves' data when the data left it (rarely; see y_range_for)."""
        if plot.y_by_user:
            return
        shown = [c for c in plot.curves.values() if c.drawn_at is not None and math.isfinite(c.y_max)]
        if not shown:
            return
        rng = y_range_for(plot.y_range, min(c.y_min for c in shown), max(c.y_max for c in shown))
        if rng != plot.y_range:
            plot.y_range = rng
            plot.item.getViewBox().setYRange(*rng, padding=0)

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

    def curve(self, plot_key: str, name: str, labels: dict[str, str] | None = None) -> Series | None:
        key = (name, tuple(sorted((labels or {}).items())))
        c = self.plots[plot_key].curves.get(key)
        return c.item if c else None

    def shutdown(self) -> None:
        self.timer.stop()
