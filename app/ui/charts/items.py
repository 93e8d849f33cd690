"""The chart items the charts page draws with: every curve of a plot in one item, its legend in one.

A pyqtgraph ``PlotCurveItem`` per curve, with a ``LegendItem`` of a sample and a label item per
curve, made a repaint of the page's ten plots (86 curves with 16 cameras) cost 20-35 ms on the GUI
thread, nearly all of it per-item work in Python (bounds, paths, pixel vectors, a sample and a
label painted per legend line) rather than drawing. Here a plot has two items whatever its
number of curves:

- :class:`SeriesSet` holds each curve's samples and draws them as cosmetic 1-pixel polylines in
  one ``paint`` (its bounds are known from the data when it is set, so nothing is computed while
  painting); a curve with no new sample is slid left by an offset, without touching its data;
- :class:`StaticLegend` lays its entries out in columns and is painted from the pixmap Qt caches
  for it (``DeviceCoordinateCache``): it is drawn again only when an entry is added, hidden or
  shown, or its size changes. Clicking an entry hides or shows that curve, as pyqtgraph's does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Iterator
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pyqtgraph.functions as fn  # noqa: E402
from PySide6.QtCore import QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QPolygonF  # noqa: E402
from PySide6.QtWidgets import QGraphicsItem  # noqa: E402


class Series:
    """One curve of a :class:`SeriesSet`: its pen, its samples (x relative to the time it was set)
    and the offset it was slid by since."""

    __slots__ = ("_owner", "pen", "_name", "xs", "ys", "lo", "hi", "offset", "visible", "_polys", "_poly")

    def __init__(self, owner: SeriesSet, pen: QPen, name: str):
        self._owner = owner
        self.pen = pen
        self._name = name
        self.xs: np.ndarray = np.empty(0)
        self.ys: np.ndarray = np.empty(0)
        self.lo = math.nan  # the lowest and the highest value of ys
        self.hi = math.nan
        self.offset = 0.0
        self.visible = True
        self._polys: list[QPolygonF] | None = None
        self._poly: QPolygonF | None = None  # kept from set to set: refilled in place

    # -- what the page does

    def set_data(self, xs: np.ndarray, ys: np.ndarray, lo: float, hi: float) -> None:
        """New samples (``lo``/``hi``: the lowest and highest of ``ys``, NaN when there is none);
        back in place (offset 0). Drawn at the owner's next ``commit``."""
        self.xs, self.ys, self.lo, self.hi = xs, ys, lo, hi
        self.offset = 0.0
        self._polys = None
        self._owner.dirty = True

    def slide(self, offset: float) -> None:
        """Move the curve ``offset`` along x (time went on and no sample came)."""
        if offset != self.offset:
            self.offset = offset
            self._owner.dirty = True

    # -- what a pyqtgraph item answers, for the legend and for tests

    @property
    def opts(self) -> dict[str, Any]:
        return {"pen": self.pen}

    def name(self) -> str:
        return self._name

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802 - pyqtgraph's name
        return self.xs, self.ys

    def pos(self) -> QPointF:
        return QPointF(self.offset, 0.0)

    def isVisible(self) -> bool:  # noqa: N802 - Qt's name
        return self.visible

    def setVisible(self, visible: bool) -> None:  # noqa: N802 - Qt's name
        if visible != self.visible:
            self.visible = visible
            self._owner.dirty = True
            self._owner.commit()

    # -- drawing

    def polygons(self) -> list[QPolygonF]:
        """The samples as polylines, one per run of finite values (a NaN is a gap), made once per
        ``set_data``."""
        if self._polys is None:
            xs, ys = self.xs, self.ys
            finite = np.isfinite(ys) & np.isfinite(xs)
            if finite.all():  # the usual case: one polyline, refilled in place (no new one a second)
                n = len(ys)
                if n < 2:
                    self._polys = []
                    return self._polys
                poly = self._poly
                if poly is None or poly.size() != n:
                    poly = self._poly = fn.create_qpolygonf(n)
                view = fn.ndarray_from_qpolygonf(poly)
                view[:, 0] = xs
                view[:, 1] = ys
                self._polys = [poly]
                return self._polys
            else:
                edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.view(np.int8), [0]))))
                runs = [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True) if b - a > 1]
            self._polys = [fn.arrayToQPolygonF(xs[a:b], ys[a:b]) for a, b in runs]
        return self._polys


class SeriesSet(pg.GraphicsObject):  # type: ignore[misc]  # pyqtgraph has no types
    """Every curve of one plot, drawn in one ``paint``. Change curves through their
    :class:`Series`, then call :meth:`commit` once: the item's bounds are set again and it is
    repainted once."""

    def __init__(self) -> None:
        super().__init__()
        self._series: dict[Hashable, Series] = {}
        self._rect = QRectF()
        self._bounds: tuple[tuple[float | None, float | None], tuple[float | None, float | None]] = (
            (None, None), (None, None))
        self.dirty = False
        #: paints of this item (tests read it)
        self.paints = 0

    def add(self, key: Hashable, pen: QPen, name: str) -> Series:
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = Series(self, pen, name)
        return s

    def series(self) -> Iterator[Series]:
        return iter(self._series.values())

    def __len__(self) -> int:
        return len(self._series)

    def commit(self) -> None:
        """After curves changed: new bounds (from what the curves know of their data) and one
        repaint. Nothing when nothing changed."""
        if not self.dirty:
            return
        self.dirty = False
        x0 = y0 = math.inf
        x1 = y1 = -math.inf
        for s in self._series.values():
            if not s.visible or not len(s.xs) or not (math.isfinite(s.lo) and math.isfinite(s.hi)):
                continue
            x0 = min(x0, float(s.xs[0]) + s.offset)
            x1 = max(x1, float(s.xs[-1]) + s.offset)
            y0 = min(y0, s.lo)
            y1 = max(y1, s.hi)
        if x0 <= x1 and y0 <= y1:
            self._bounds = ((x0, x1), (y0, y1))
            # a cosmetic pen's pixel around the data is left to the view's clip; a flat line still
            # needs some height to be repainted
            pad = max((y1 - y0) * 0.01, 1e-6)
            rect = QRectF(x0 - 1.0, y0 - pad, (x1 - x0) + 2.0, (y1 - y0) + 2 * pad)
        else:
            self._bounds = ((None, None), (None, None))
            rect = QRectF()
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
            self.informViewBoundsChanged()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return QRectF(self._rect)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> Any:  # noqa: N802, N803
        """What a ViewBox's auto-range asks (the "A" button): the visible curves' extent."""
        return self._bounds[ax]

    def paint(self, p: QPainter, *args: Any) -> None:
        self.paints += 1
        for s in self._series.values():
            if not s.visible or len(s.xs) < 2:
                continue
            polys = s.polygons()
            if not polys:
                continue
            p.setPen(s.pen)
            if s.offset:
                p.translate(s.offset, 0.0)
            for poly in polys:
                p.drawPolyline(poly)
            if s.offset:
                p.translate(-s.offset, 0.0)


class StaticLegend(pg.GraphicsWidget):  # type: ignore[misc]  # pyqtgraph has no types
    """A plot's legend: a short line in the curve's pen and its name, in ``columns`` columns,
    painted from the pixmap Qt caches for the item. A click on an entry hides or shows its curve."""

    SAMPLE = 18  # px of the pen's sample line

    def __init__(self, columns: int = 4, point_size: float = 8.0):
        super().__init__()
        self.columns = max(1, columns)
        self._entries: list[tuple[Series, str]] = []
        self._font = QFont()
        self._font.setPointSizeF(point_size)
        self._fm = QFontMetricsF(self._font)
        self._row_h = math.ceil(self._fm.height()) + 4
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, False)
        #: how often the legend was drawn (a paint is a redraw of its cached pixmap)
        self.paints = 0
        self._fit()

    def add(self, series: Series, name: str) -> None:
        self._entries.append((series, name))
        self._fit()

    def names(self) -> list[str]:
        return [name for _s, name in self._entries]

    def entries(self) -> list[tuple[Series, str]]:
        return list(self._entries)

    def _fit(self) -> None:
        rows = max(1, math.ceil(len(self._entries) / self.columns))
        h = rows * self._row_h + 2
        self.setMinimumHeight(h)
        self.setPreferredHeight(h)
        self.setMaximumHeight(h)
        self.update()

    def _cell(self, i: int) -> QRectF:
        width = max(1.0, self.size().width()) / self.columns
        return QRectF((i % self.columns) * width, 1 + (i // self.columns) * self._row_h, width, self._row_h)

    def paint(self, p: QPainter, *args: Any) -> None:
        self.paints += 1
        p.setFont(self._font)
        for i, (s, name) in enumerate(self._entries):
            cell = self._cell(i)
            mid = cell.center().y()
            x = cell.left() + 4
            if s.visible:
                pen = QPen(s.pen)
                pen.setCosmetic(True)
                p.setPen(pen)
                p.drawLine(QPointF(x, mid), QPointF(x + self.SAMPLE, mid))
                p.setPen(QColor("#000000"))
            else:  # hidden: a grey sample and a grey name
                p.setPen(QPen(QColor("#b0b0b0"), 1, Qt.PenStyle.DotLine))
                p.drawLine(QPointF(x, mid), QPointF(x + self.SAMPLE, mid))
                p.setPen(QColor("#9e9e9e"))
            text_x = x + self.SAMPLE + 6
            room = max(0.0, cell.right() - text_x - 4)
            text = self._fm.elidedText(name, Qt.TextElideMode.ElideRight, room)
            p.drawText(QRectF(text_x, cell.top(), room, cell.height()),
                       int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), text)

    def entry_at(self, pos: QPointF) -> int | None:
        for i in range(len(self._entries)):
            if self._cell(i).contains(pos):
                return i
        return None

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph's name
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        i = self.entry_at(ev.pos())
        if i is None:
            return
        s = self._entries[i][0]
        s.setVisible(not s.visible)
        self.update()
        ev.accept()
