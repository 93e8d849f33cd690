"""The fleet as a view reads it: a snapshot of the registry, read on a thread of its own.

:class:`FleetView` reads the stations table (``StationRegistry.all()``: the database time and
every station) every ``interval`` seconds while someone listens, and hands each listener a
:class:`FleetSnapshot`. Qt-free: the window's Fleet page subscribes through a bridge that turns
the call into a queued signal (app/ui/fleet/page.py), as it does for station events.

A snapshot judges every station as ``edge-station fleet status|stations`` do, with the same
functions (:func:`app.domain.fleet.liveness`, :func:`app.fleet.cli.station_cells`,
:func:`app.fleet.cli.format_status`), so that the page and the commands agree. A station that
nobody watches reads nothing: a headless station's view never starts its thread.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from app.domain.emitter import Emitter
from app.domain.fleet import SKEW_WORTH_SAYING, Liveness, StationInfo, liveness

if TYPE_CHECKING:
    from app.store.stations import StationRegistry

log = logging.getLogger("edge_station.fleet")

__all__ = ["FleetSnapshot", "FleetStation", "FleetView"]

#: the order of the states in a summary (as ``fleet status`` says them)
STATE_ORDER = (Liveness.UP, Liveness.GONE, Liveness.STOPPED, Liveness.REPLACED)


@dataclass(frozen=True)
class FleetStation:
    """One station as the page shows it: its row, how it is judged, and its ``fleet stations`` line."""

    info: StationInfo
    liveness: Liveness
    age_s: float  # seconds since its last heartbeat, by the database's clock
    mine: bool  # this is the station the view belongs to
    #: its line of ``edge-station fleet stations``, cell by cell (app.fleet.cli.STATION_COLUMNS)
    cells: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def skew_s(self) -> float | None:
        return self.info.skew

    @property
    def skew_worth_saying(self) -> bool:
        return self.info.skew is not None and abs(self.info.skew) >= SKEW_WORTH_SAYING

    @property
    def up(self) -> bool:
        return self.liveness is Liveness.UP


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet at one database time. ``error`` says why the last read failed (the stations are then
    those of the read before it, judged at its time)."""

    now: datetime
    gone_after: float
    where: str
    stations: tuple[FleetStation, ...]
    #: what ``edge-station fleet status`` prints for the same read
    status_lines: tuple[str, ...]
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # liveness value -> stations

    @property
    def multi(self) -> bool:
        """The database holds more than one station: the window shows its Fleet page."""
        return len(self.stations) > 1

    def station(self, name: str) -> FleetStation | None:
        return next((s for s in self.stations if s.name == name), None)

    def mine(self) -> FleetStation | None:
        return next((s for s in self.stations if s.mine), None)


def snapshot_of(now: datetime, stations: list[StationInfo], gone_after: float, *, where: str,
                station_id: str | None) -> FleetSnapshot:
    """Judge a registry read as ``fleet status`` and ``fleet stations`` do."""
    from app.fleet.cli import format_status, station_cells

    rows = tuple(FleetStation(info=s, liveness=liveness(s, now, gone_after), age_s=s.age(now),
                              mine=s.id == station_id, cells=station_cells(s, now, gone_after))
                 for s in stations)
    counts = Counter(r.liveness.value for r in rows)
    return FleetSnapshot(now=now, gone_after=gone_after, where=where, stations=rows,
                         status_lines=tuple(format_status(now, stations, gone_after, where)),
                         counts={k.value: counts[k.value] for k in STATE_ORDER if counts[k.value]})


class FleetView:
    """The registry of one database, read every ``interval`` seconds while someone subscribes.

    ``gone_after`` judges gone stations with a threshold of its own; None (the default) reads the
    fleet's ``fleet.gone_after`` setting at every read, as ``fleet status`` does. ``station_id``
    marks this station in the snapshots.
    """

    def __init__(self, registry: StationRegistry, *, interval: float, where: str, station_id: str | None = None,
                 gone_after: float | None = None):
        if not interval > 0:
            raise ValueError(f"the fleet view's read interval must be above 0 s, not {interval!r}")
        self.registry = registry
        self.interval = float(interval)
        self.where = where
        self.station_id = station_id
        self.gone_after = gone_after
        self.snapshots: Emitter[FleetSnapshot] = Emitter("fleet view")
        self.snapshot: FleetSnapshot | None = None
        self.reads = 0  # registry reads done (the tests and the figures count them)
        self._lock = threading.Lock()  # one read at a time (the thread and refresh())
        self._state_lock = threading.Lock()  # the thread's start and stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing = False

    # ------------------------------------------------------------ listening

    def subscribe(self, callback: Callable[[FleetSnapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` on the view's thread after every read, from a first read right
        away; the first listener starts the reading, the last one to leave stops it."""
        unsubscribe = self.snapshots.subscribe(callback)
        self._start()

        def leave() -> None:
            unsubscribe()
            if not len(self.snapshots):
                self._halt()

        return leave

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def close(self) -> None:
        """Stop reading for good (the station closes). Idempotent."""
        self._closed = True
        self._halt()

    # ------------------------------------------------------------ reading

    def refresh(self) -> FleetSnapshot:
        """Read the registry now and tell the listeners; a failed read keeps the last stations and
        says why (logged once until a read works again)."""
        with self._lock:
            snap = self._read()
            self.snapshot = snap
        self.snapshots.emit(snap)
        return snap

    def _read(self) -> FleetSnapshot:
        try:
            now, stations = self.registry.all()
            gone_after = self.gone_after if self.gone_after is not None else self.registry.timing()[1]
        except Exception as e:
            why = f"cannot read the fleet registry of {self.where}: {type(e).__name__}: {str(e)[:200]}"
            if not self._failing:
                log.warning("fleet view: %s; trying again every %g s", why, self.interval)
            self._failing = True
            last = self.snapshot
            if last is None:
                from datetime import UTC

                return FleetSnapshot(now=datetime.now(UTC), gone_after=self.gone_after or 0.0, where=self.where,
                                     stations=(), status_lines=(), error=why)
            return FleetSnapshot(now=last.now, gone_after=last.gone_after, where=last.where,
                                 stations=last.stations, status_lines=last.status_lines, error=why,
                                 counts=last.counts)
        finally:
            self.reads += 1
        if self._failing:
            log.info("fleet view: the registry reads again")
            self._failing = False
        return snapshot_of(now, stations, gone_after, where=self.where, station_id=self.station_id)

    def _start(self) -> None:
        with self._state_lock:
            if self._closed or self.running:
                return
            self._stop = stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(stop,), name="fleet-view", daemon=True)
            self._thread.start()

    def _halt(self) -> None:
        with self._state_lock:
            self._stop.set()
            t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.refresh()
            if stop.wait(self.interval):
                return
