"""The camera wall: a grid of live preview tiles.

Each tile reads its camera's shared-memory preview slot (``PreviewReader``),
marks its interest there on every poll (a worker converts previews only while a reader wants
them: a tile that is not shown is not polled and stops costing), asks for frames as wide as it
draws them, and repaints only the frame's area when the slot's sequence number moved, and only
what a status change changed. A frame arrives in the format the window's backing store holds
(BGRX: Qt's RGB32) and at the size it is drawn, so a paint copies it as it is: no conversion and
no scaling on the GUI thread (only while a tile is being resized, until the worker follows). When
the camera is not running, or its source is down, the tile shows
"OFFLINE since hh:mm:ss" instead of a stale frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QContextMenuEvent,
    QFocusEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QHideEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.domain.operations import CameraStatus
from app.ui.common.formatting import LIVE_STATES, fmt_clock, fmt_fps, view_colour, view_state
from app.ui.common.models import state_label, view_label
from app.workerlink.protocol import PREVIEW_MAX_HEIGHT, PREVIEW_MAX_WIDTH

if TYPE_CHECKING:  # the reader (and numpy under it) is imported when a tile first reads a slot, after the first paint
    from app.workerlink.preview import PreviewFrame, PreviewReader

LAYOUTS: dict[str, int] = {"1×1": 1, "2×2": 2, "3×3": 3, "4×4": 4}
PREVIEW_INTERVAL_MS = 100  # 10 Hz: the worker publishes previews at most this often by default
#: a tile's colour where no picture is
BACKGROUND = QColor("#111418")


class PreviewRequests:
    """The box each camera's slot is asked for: the biggest tile showing it (a wall tile and its
    fullscreen tile may show one camera at once), capped."""

    def __init__(self) -> None:
        self._wants: dict[Path, dict[int, tuple[int, int]]] = {}

    def set(self, path: Path, key: int, size: tuple[int, int]) -> tuple[int, int]:
        self._wants.setdefault(path, {})[key] = size
        return self.size(path)

    def drop(self, key: int) -> None:
        for path in list(self._wants):
            self._wants[path].pop(key, None)
            if not self._wants[path]:
                del self._wants[path]

    def size(self, path: Path) -> tuple[int, int]:
        """(width, height) asked for; (0, 0) when no tile shows the camera."""
        wants = self._wants.get(path)
        if not wants:
            return 0, 0
        if len(wants) == 1:
            return next(iter(wants.values()))
        return max(wants.values(), key=lambda wh: wh[0] * wh[1])


#: one per GUI process: every tile of every window asks through it
PREVIEW_REQUESTS = PreviewRequests()


def wanted_preview_size(width: int, height: int, dpr: float) -> tuple[int, int]:
    """The box a tile of ``width`` x ``height`` logical pixels draws its frame in (device pixels,
    capped): the worker scales the frame to fit it, so the frame arrives at the size it is
    painted and is drawn without scaling."""
    scale = max(1.0, dpr)
    return (min(PREVIEW_MAX_WIDTH, math.ceil(max(16, width) * scale)),
            min(PREVIEW_MAX_HEIGHT, math.ceil(max(16, height) * scale)))


#: a frame within this many device pixels of the size a tile draws it at is drawn as it is,
#: centred (the worker rounds the preview to even sizes), instead of being scaled for a pixel
SIZE_SLACK = 2


def is_offline(status: CameraStatus | None) -> bool:
    """No live picture: the worker is not running/stalled, or it says its source is down."""
    if status is None:
        return True
    return status.state not in LIVE_STATES or status.source == "down"


class CameraTile(QWidget):
    """One camera: its latest preview frame, name, state, fps and a motion dot.

    A paint only copies pixmaps made beforehand: the frame is converted (and scaled to the tile)
    once when it arrives, the title bar (name, badge, motion dot) and the offline text are drawn
    into cached pixmaps that are drawn again only when what they show changed (a status, the
    size, the font). The tile asks for a repaint only when a new frame or a different status
    arrived, and a status that changes only the title bar repaints only the title bar.
    """

    doubleClicked = Signal(int)  # camera id
    menuRequested = Signal(int, object)  # camera id, global QPoint

    def __init__(self, camera_id: int, name: str, preview_path_for: Callable[[int], Path | None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.camera_id = camera_id
        self.name = name
        self._preview_path_for = preview_path_for
        self._reader: PreviewReader | None = None
        self._reader_path: Path | None = None
        self._image: QImage | None = None  # the last frame as it arrived (BGRX over ``_buffer``)
        self._buffer: object = None  # the frame's memory, which ``_image`` does not own
        self._drawn: QImage | None = None  # the frame at the size it is drawn (``_image`` itself, mostly)
        self._target = QRect()  # where the frame is drawn
        self._fit_key: tuple[object, ...] | None = None  # (frame size, tile size, dpr) of _target
        self._asked_key: tuple[object, ...] | None = None  # what this tile asked its slot for
        self._overlay: QPixmap | None = None  # the title bar: name, badge, motion dot
        self._overlay_key: tuple[object, ...] | None = None
        self._overlay_quick: tuple[object, ...] | None = None  # (status object, width, dpr) last looked at
        self._body: QPixmap | None = None  # the tile without a frame: offline or waiting text
        self._body_key: tuple[object, ...] | None = None
        self._fonts: tuple[object, QFont, int, int] | None = None  # (font key, bar font, bar height, ascent)
        self.seq = 0
        self.frame_ts: float | None = None
        self.status: CameraStatus | None = None
        self._offline = True  # is_offline(self.status), kept beside it (read on every poll and paint)
        self._path_pid: int | None = None  # the worker pid the reader's path was looked up for
        self.offline_since: float | None = time.time()
        #: how many frames this tile turned into images (tests and the benchmark read it)
        self.frames_shown = 0
        #: how many of them had to be scaled to be drawn (not the size asked for yet)
        self.frames_scaled = 0
        #: paint events, and how often the title bar / the offline text were drawn into their cache
        self.paints = 0
        self.overlay_builds = 0
        self.body_builds = 0
        self.setMinimumSize(QSize(160, 90))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip(name)

    # ------------------------------------------------------------ data

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def view(self) -> str:
        """What the badge shows (``live``, ``source_down``, ``inactive``, …; see ``view_state``)."""
        return view_state(self.status)

    def badge_text(self) -> str:
        return view_label(self.view)

    def title_badge(self) -> str:
        """The badge of the title bar: the state, with the fps while video comes in."""
        st = self.status
        view = self.view
        badge = view_label(view)
        if st is not None and st.fps is not None and view in ("live", "stalled"):
            badge = QCoreApplication.translate("CameraTile", "{fps} fps  {state}").format(
                fps=fmt_fps(st.fps), state=badge)
        return badge

    @property
    def image(self) -> QImage | None:
        return self._image

    @property
    def drawn_as_is(self) -> bool:
        """Whether the frame shown is painted as it arrived (of the size asked for: no scaling)."""
        return self._image is not None and self._drawn is self._image

    def set_status(self, status: CameraStatus | None) -> None:
        was_offline = self.offline
        old = self.status
        self.status = status
        self._offline = is_offline(status)
        if status is not None and status.name != self.name:
            self.name = status.name
            self.setToolTip(status.name)
        now_offline = self.offline
        if now_offline and not was_offline:
            at = status.last_exit.at if status and status.last_exit else None
            self.offline_since = at if at and at > time.time() - 5 else time.time()
            self._drop_frame()
        elif not now_offline and was_offline:
            self.offline_since = None
        if now_offline:
            self._close_reader()
        if now_offline != was_offline or (now_offline and _body(old) != _body(status)):
            self.update()  # the picture area changes too
        elif _badge(old) != _badge(status):
            self.update(0, 0, self.width(), self._bar_metrics()[1])  # only the title bar

    def poll_frame(self) -> bool:
        """Read the preview slot if it moved on; True when a new frame is shown."""
        if self.offline:
            return False
        reader = self._ensure_reader()
        if reader is None:
            return False
        # Ask for previews as wide as this tile draws them (the widest tile wins), and say that a
        # shown tile wants frames: the worker converts previews only while some reader says so (a
        # hidden or closed tile is not polled, so its worker stops converting after the hold).
        # One look at the slot does both and reads the frame if it moved on.
        key = (self.width(), self.height(), self.devicePixelRatioF(), reader)
        if key != self._asked_key:  # a tile's size rarely changes: ask again only then
            self._asked_key = key
            PREVIEW_REQUESTS.set(reader.path, id(self), wanted_preview_size(*key[:3]))
        frame = reader.poll(self.seq, *PREVIEW_REQUESTS.size(reader.path))
        if frame is None:
            return False
        self._show(frame, key[:3])
        return True

    def _show(self, frame: PreviewFrame, tile: tuple[int, int, float] | None = None) -> None:
        arr = frame.image  # (h, w, 4) BGRX, contiguous, ours
        # Qt's RGB32 is these bytes: the image wraps the array (kept alive beside it), no copy.
        self._buffer = arr
        self._image = QImage(arr.data, frame.width, frame.height, frame.width * 4, QImage.Format.Format_RGB32)
        old = QRect(self._target)
        self._drawn = self._fit_frame(tile)
        self.seq = frame.seq
        self.frame_ts = frame.ts
        self.frames_shown += 1
        self.update(self._target if old == self._target else self.rect())

    def _fit_frame(self, tile: tuple[int, int, float] | None = None) -> QImage | None:
        """The frame as drawn (aspect kept, centred; nearest pixel when it must be scaled), and where
        it goes. A frame of the size asked for (within SIZE_SLACK) is drawn as it is. ``tile``:
        (width, height, dpr) of this tile, when the caller has them at hand."""
        img = self._image
        if img is None or img.width() <= 0 or img.height() <= 0:
            return None
        tw, th, dpr = tile if tile is not None else (self.width(), self.height(), self.devicePixelRatioF())
        iw, ih = img.width(), img.height()
        key = (iw, ih, tw, th, dpr)
        if key == self._fit_key:  # the same frame size in the same tile: drawn as it is, again
            if dpr != 1.0:
                img.setDevicePixelRatio(dpr)
            return img
        self._fit_key = None
        rect = self.rect()
        scale = min(rect.width() / iw, rect.height() / ih)
        dw, dh = max(1, round(iw * scale * dpr)), max(1, round(ih * scale * dpr))
        if abs(dw - iw) <= SIZE_SLACK and abs(dh - ih) <= SIZE_SLACK and iw <= rect.width() * dpr + 0.5 \
                and ih <= rect.height() * dpr + 0.5:
            drawn, dw, dh = img, iw, ih
            self._fit_key = key
        else:
            self.frames_scaled += 1
            drawn = img.scaled(dw, dh, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)
        w, h = max(1, round(dw / dpr)), max(1, round(dh / dpr))
        self._target = QRect((rect.width() - w) // 2, (rect.height() - h) // 2, w, h)
        if dpr != 1.0:
            drawn.setDevicePixelRatio(dpr)
        return drawn

    def _ensure_reader(self) -> PreviewReader | None:
        pid = self.status.pid if self.status is not None else None
        if self._reader is not None and pid == self._path_pid:
            # A camera's slot keeps its path while its worker runs; a restarted worker (another pid)
            # is looked up again, and the reader itself notices a replaced file (RECHECK_S).
            return self._reader
        path = self._preview_path_for(self.camera_id)
        self._path_pid = pid
        if path is None:
            return None
        if self._reader is None or path != self._reader_path:
            from app.workerlink.preview import RECHECK_S, PreviewReader

            self._close_reader()
            self._reader = PreviewReader(path, recheck_s=RECHECK_S)
            self._reader_path = path
        return self._reader

    def _close_reader(self) -> None:
        PREVIEW_REQUESTS.drop(id(self))
        self._asked_key = None
        if self._reader is not None:
            self._reader.close()
        self._reader = None
        self._reader_path = None

    def _drop_frame(self) -> None:
        self._image = None
        self._buffer = None
        self._drawn = None
        self.seq = 0

    def close_reader(self) -> None:
        self._drop_frame()
        self._close_reader()

    # ------------------------------------------------------------ painting

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._drawn = self._fit_frame()  # the caches keyed on the size are redrawn at the next paint

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fonts = None
            self._overlay_quick = None
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        self.paints += 1
        p = QPainter(self)
        rect = self.rect()
        if self._drawn is not None and not self.offline:
            if not self._target.contains(event.rect()):  # the bars beside the frame (a new frame
                p.fillRect(rect, BACKGROUND)  # repaints only its own area, which it covers)
            p.drawImage(self._target.topLeft(), self._drawn)
        else:
            p.drawPixmap(0, 0, self._body_pixmap())
        p.drawPixmap(0, 0, self._overlay_pixmap())
        if self.hasFocus():
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor("#42a5f5"), 2))
            p.drawRect(rect.adjusted(1, 1, -1, -1))
        p.end()

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    def offline_text(self) -> str:
        st = self.status
        if view_state(st) == "inactive":
            return QCoreApplication.translate("CameraTile", "INACTIVE")
        if st is not None and st.state in LIVE_STATES and st.source == "down":
            return QCoreApplication.translate("CameraTile", "SOURCE DOWN since {0}").format(fmt_clock(self.offline_since))
        return QCoreApplication.translate("CameraTile", "OFFLINE since {0}").format(fmt_clock(self.offline_since))

    def offline_detail(self) -> str:
        """The line under the offline text: why there is no video."""
        st = self.status
        if view_state(st) == "inactive":
            return QCoreApplication.translate("CameraTile", "deactivated; activate it to start")
        if st is not None and view_state(st) == "source_down" and st.error:
            return st.error  # the worker runs and retries; what matters is why there is no video
        if st is not None:
            detail = state_label(st.state)
            if st.last_exit is not None:
                detail += f" — {st.last_exit.reason}"
            elif st.error:
                detail += f" — {st.error}"
            return detail
        return ""

    def _new_pixmap(self, width: int, height: int, fill: QColor) -> QPixmap:
        dpr = self.devicePixelRatioF()
        pm = QPixmap(max(1, round(width * dpr)), max(1, round(height * dpr)))
        pm.setDevicePixelRatio(dpr)
        pm.fill(fill)
        return pm

    def _body_pixmap(self) -> QPixmap:
        """The tile without a frame: the offline text and its reason, or "waiting for the first frame"."""
        offline = self.offline
        if offline:
            text, detail = self.offline_text(), self.offline_detail()
            inactive = view_state(self.status) == "inactive"
        else:
            text, detail, inactive = QCoreApplication.translate("CameraTile", "waiting for the first frame…"), "", False
        key = (self.size(), self.devicePixelRatioF(), self.font().key(), offline, text, detail, inactive)
        if self._body is not None and key == self._body_key:
            return self._body
        self.body_builds += 1
        rect = self.rect()
        pm = self._new_pixmap(rect.width(), rect.height(), BACKGROUND)
        p = QPainter(pm)
        if offline:
            font = QFont(self.font())
            font.setPointSizeF(max(9.0, min(22.0, rect.height() / 14)))
            font.setBold(True)
            p.setFont(font)
            p.setPen(QColor(view_colour("inactive") if inactive else "#ef5350"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
            if detail:
                small = QFont(self.font())
                small.setPointSizeF(max(8.0, font.pointSizeF() * 0.55))
                p.setFont(small)
                p.setPen(QColor("#9aa4ae"))
                below = rect.adjusted(8, int(rect.height() / 2 + font.pointSizeF() * 1.4), -8, 0)
                p.drawText(below, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, detail)
        else:
            p.setPen(QColor("#9aa4ae"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        p.end()
        self._body, self._body_key = pm, key
        return pm

    def _bar_metrics(self) -> tuple[QFont, int, int]:
        """The title bar's font, its height and the text's ascent (measured once per widget font)."""
        fkey = self.font().key()
        if self._fonts is None or self._fonts[0] != fkey:
            font = QFont(self.font())
            font.setPointSizeF(9.5)
            font.setBold(True)
            fm = QFontMetrics(font)
            self._fonts = (fkey, font, fm.height() + 8, fm.ascent())
        return self._fonts[1], self._fonts[2], self._fonts[3]

    def _overlay_pixmap(self) -> QPixmap:
        """The title bar (name, badge with fps and state, motion dot), drawn again only when one of
        them, the width or the font changed."""
        st = self.status
        quick = (st, self.width(), self.devicePixelRatioF())
        if self._overlay is not None and quick == self._overlay_quick:  # nothing came since: as it was
            return self._overlay
        view = self.view
        badge = self.title_badge()
        motion = st is not None and st.motion_active
        dot = motion and not self.offline
        key = (quick[1], quick[2], self.font().key(), self.name, badge, view, motion, dot)
        self._overlay_quick = quick
        if self._overlay is not None and key == self._overlay_key:
            return self._overlay
        self.overlay_builds += 1
        font, bar_h, ascent = self._bar_metrics()
        width = self.width()
        pm = self._new_pixmap(width, bar_h, QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.setFont(font)
        fm = p.fontMetrics()
        p.fillRect(0, 0, width, bar_h, QColor(0, 0, 0, 150))
        bw = fm.horizontalAdvance(badge) + 12
        x = width - bw - 6
        p.fillRect(x, 3, bw, bar_h - 6, QColor(view_colour(view)))
        p.setPen(QColor("#000000"))
        p.drawText(x + 6, 4 + ascent, badge)
        # The name gets what the badge (and the motion dot) leave, elided with "…", never cut
        # (the whole name is the tile's tooltip).
        room = max(0, x - 8 - (bar_h + 8 if motion else 0) - 8)
        p.setPen(QColor("#ffffff"))
        p.drawText(8, 4 + ascent, fm.elidedText(self.name, Qt.TextElideMode.ElideRight, room))
        if dot:
            p.setBrush(QColor("#ff3d00"))
            p.setPen(QPen(QColor("#ffffff"), 1.5))
            r = bar_h / 2 - 3
            p.drawEllipse(QRectF(x - 2 * r - 8, bar_h / 2 - r, 2 * r, 2 * r))
        p.end()
        self._overlay, self._overlay_key = pm, key
        return pm

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.doubleClicked.emit(self.camera_id)
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.menuRequested.emit(self.camera_id, event.globalPos())
        event.accept()


def _badge(s: CameraStatus | None) -> tuple[object, ...]:
    """What the title bar shows of a status."""
    if s is None:
        return ()
    return (s.name, view_state(s), fmt_fps(s.fps), s.motion_active)


def _body(s: CameraStatus | None) -> tuple[object, ...]:
    """What the offline text shows of a status."""
    if s is None:
        return ()
    return (view_state(s), s.state, s.source, s.error, s.last_exit.reason if s.last_exit else None)


class FullscreenTile(QWidget):
    """One camera on the whole screen; Esc (or a double-click) goes back."""

    closed = Signal(int)

    def __init__(self, tile: CameraTile):
        super().__init__(None, Qt.WindowType.Window)
        self.tile = tile
        self.setWindowTitle(tile.name)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(tile)
        tile.doubleClicked.connect(lambda _cid: self.close())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.tile.close_reader()
        self.closed.emit(self.tile.camera_id)
        super().closeEvent(event)


class CameraWall(QWidget):
    """Tiles in an N×N grid (pages when there are more cameras than cells).

    ``set_statuses`` takes the window's 2 Hz snapshot; a 10 Hz timer (running
    only while the wall is visible) polls the preview slots.
    """

    layoutChanged = Signal(int)
    fullscreenChanged = Signal(object)  # camera id or None
    menuRequested = Signal(int, object)  # camera id, global QPoint (a tile's context menu)

    def __init__(self, preview_path_for: Callable[[int], Path | None], parent: QWidget | None = None,
                 *, grid: int = 2, interval_ms: int = PREVIEW_INTERVAL_MS, controls: bool = True):
        super().__init__(parent)
        self._preview_path_for = preview_path_for
        self._grid = grid
        self._rows = grid  # rows per page: the grid's, or fewer (the kiosk fits 6 cameras as 3×2)
        self._page = 0
        self._tiles: dict[int, CameraTile] = {}
        self._order: list[int] = []
        self._statuses: dict[int, CameraStatus] = {}
        self.fullscreen: FullscreenTile | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(4)
        bar = QHBoxLayout()
        self.layout_box = QComboBox()
        self.layout_box.addItems(list(LAYOUTS))
        self.layout_box.setCurrentIndex(list(LAYOUTS.values()).index(grid))
        self.layout_box.setToolTip(self.tr("Wall layout"))
        self.layout_box.currentIndexChanged.connect(
            lambda i: self.set_grid(list(LAYOUTS.values())[i]))
        self.prev_btn = QPushButton("◀")
        self.next_btn = QPushButton("▶")
        self.page_label = QLabel()
        self.prev_btn.setFixedWidth(32)
        self.next_btn.setFixedWidth(32)
        self.prev_btn.clicked.connect(lambda: self.set_page(self._page - 1))
        self.next_btn.clicked.connect(lambda: self.set_page(self._page + 1))
        bar.addWidget(QLabel(self.tr("Layout:")))
        bar.addWidget(self.layout_box)
        bar.addStretch(1)
        bar.addWidget(self.prev_btn)
        bar.addWidget(self.page_label)
        bar.addWidget(self.next_btn)
        self._bar = QWidget()
        self._bar.setLayout(bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self._bar.setVisible(controls)
        outer.addWidget(self._bar)
        self._grid_host = QWidget()
        self._grid_host.setObjectName("wallGrid")
        self._grid_host.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        pal = self._grid_host.palette()
        pal.setColor(self._grid_host.backgroundRole(), QColor("#1b1f24"))
        self._grid_host.setPalette(pal)
        self._grid_host.setAutoFillBackground(True)
        self._grid_layout = QGridLayout(self._grid_host)
        self._grid_layout.setContentsMargins(0, 0, 0, 0)
        self._grid_layout.setSpacing(4)
        outer.addWidget(self._grid_host, 1)
        self._empty = QLabel(self.tr("No cameras. Add one from the Cameras page or import a cameras.yaml."))
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self._empty)

        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll_frames)
        self._relayout()

    # ------------------------------------------------------------ public

    @property
    def grid(self) -> int:
        return self._grid

    @property
    def page(self) -> int:
        return self._page

    def page_count(self) -> int:
        per = self._grid * self._rows
        return max(1, math.ceil(len(self._order) / per))

    def tiles(self) -> dict[int, CameraTile]:
        return dict(self._tiles)

    def tile(self, camera_id: int) -> CameraTile | None:
        return self._tiles.get(camera_id)

    def visible_tiles(self) -> list[CameraTile]:
        per = self._grid * self._rows
        ids = self._order[self._page * per:(self._page + 1) * per]
        return [self._tiles[i] for i in ids if i in self._tiles]

    @property
    def rows(self) -> int:
        return self._rows

    def set_grid(self, n: int, rows: int | None = None) -> None:
        """``n`` tiles per row, ``rows`` rows per page (``n`` when not given)."""
        if n not in LAYOUTS.values():
            raise ValueError(f"wall layout must be one of {sorted(LAYOUTS.values())}, not {n}")
        rows = n if rows is None else rows
        if not 1 <= rows <= n:
            raise ValueError(f"a wall of {n} columns has 1 to {n} rows, not {rows}")
        if (n, rows) == (self._grid, self._rows):
            return
        self._grid = n
        self._rows = rows
        self._page = 0
        self.layout_box.blockSignals(True)
        self.layout_box.setCurrentIndex(list(LAYOUTS.values()).index(n))
        self.layout_box.blockSignals(False)
        self._relayout()
        self.layoutChanged.emit(n)

    def set_page(self, page: int) -> None:
        page = page % self.page_count()
        if page != self._page:
            self._page = page
            self._relayout()

    def next_page(self) -> None:
        self.set_page(self._page + 1)

    def set_statuses(self, statuses: Sequence[CameraStatus]) -> None:
        ids = [s.camera_id for s in statuses]
        self._statuses = {s.camera_id: s for s in statuses}
        if ids != self._order:
            for cid in set(self._tiles) - set(ids):
                tile = self._tiles.pop(cid)
                tile.close_reader()
                tile.setParent(None)
                tile.deleteLater()
            for s in statuses:
                if s.camera_id not in self._tiles:
                    t = CameraTile(s.camera_id, s.name, self._preview_path_for, self._grid_host)
                    t.hide()
                    t.doubleClicked.connect(self.show_fullscreen)
                    t.menuRequested.connect(self.menuRequested)
                    self._tiles[s.camera_id] = t
            self._order = ids
            self._page = min(self._page, self.page_count() - 1)
            self._relayout()
        for s in statuses:
            self._tiles[s.camera_id].set_status(s)
        if self.fullscreen is not None:
            self.fullscreen.tile.set_status(self._statuses.get(self.fullscreen.tile.camera_id))

    def poll_frames(self) -> int:
        """Read every visible tile's slot; returns how many showed a new frame."""
        n = 0
        tiles = self.visible_tiles() if self.isVisible() else []
        if self.fullscreen is not None:
            tiles.append(self.fullscreen.tile)
        for t in tiles:
            n += t.poll_frame()
        return n

    def show_fullscreen(self, camera_id: int) -> FullscreenTile:
        if self.fullscreen is not None:
            self.fullscreen.close()
        tile = CameraTile(camera_id, self._tiles[camera_id].name if camera_id in self._tiles else "",
                          self._preview_path_for)
        tile.set_status(self._statuses.get(camera_id))
        self.fullscreen = FullscreenTile(tile)
        self.fullscreen.closed.connect(self._fullscreen_closed)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:  # without a window manager, full screen alone keeps the small size
            self.fullscreen.setGeometry(screen.geometry())
        self.fullscreen.showFullScreen()
        self.fullscreen.activateWindow()
        tile.poll_frame()
        if not self.timer.isActive():
            self.timer.start()
        self.fullscreenChanged.emit(camera_id)
        return self.fullscreen

    def _fullscreen_closed(self, _cid: int) -> None:
        fs = self.fullscreen
        self.fullscreen = None
        if fs is not None:
            fs.deleteLater()
        if not self.isVisible():
            self.timer.stop()
        self.fullscreenChanged.emit(None)

    def shutdown(self) -> None:
        self.timer.stop()
        if self.fullscreen is not None:
            self.fullscreen.close()
        for t in self._tiles.values():
            t.close_reader()

    # ------------------------------------------------------------ layout

    def _relayout(self) -> None:
        while self._grid_layout.count():
            item = self._grid_layout.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()
        n = self._grid
        for r in range(4):
            self._grid_layout.setRowStretch(r, 1 if r < self._rows else 0)
            self._grid_layout.setColumnStretch(r, 1 if r < n else 0)
        for i, tile in enumerate(self.visible_tiles()):
            self._grid_layout.addWidget(tile, i // n, i % n)
            tile.show()
        pages = self.page_count()
        self.page_label.setText(self.tr("page {0}/{1}").format(self._page + 1, pages))
        for w in (self.prev_btn, self.next_btn, self.page_label):
            w.setVisible(pages > 1)
        self._empty.setVisible(not self._order)
        self._grid_host.setVisible(bool(self._order))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.timer.start()
        self.poll_frames()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if self.fullscreen is None:
            self.timer.stop()
