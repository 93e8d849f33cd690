"""This station as a member of the fleet: it claims its name at start, heartbeats its status on a
thread of its own, and marks itself stopped on a clean exit.

A heartbeat that fails (the database is away for a while) is logged once and tried again at the
next interval; the station keeps running. When the heartbeat finds that the station's name was
taken over while it was late (another station started under it after the gone threshold), it
says so once and keeps heartbeating under the name it is listed as now.

Before each heartbeat (and once at registration) it applies the fleet rollbacks it has not
applied yet (app/fleet/rollback.py), so the heartbeat that follows reports them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace

from app import __version__
from app.domain.fleet import StationInfo, StationReport, check_interval
from app.fleet.rollback import FleetRollback, merge_acks
from app.platform.identity import host_name
from app.store.stations import Beat, Claim, StationRegistry

log = logging.getLogger("edge_station.fleet")


class FleetMember:
    """One station's registration. ``report`` is called on the heartbeat thread for the status."""

    def __init__(self, registry: StationRegistry, *, station_id: str, name: str,
                 report: Callable[[], StationReport], interval: float, gone_after: float,
                 version: str = __version__, rollback: FleetRollback | None = None):
        check_interval(interval, gone_after)
        self.registry = registry
        self.station_id = station_id
        self.name = name
        self.interval = interval
        self.gone_after = gone_after
        self.version = version
        self._report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one heartbeat at a time (the thread, beat_now(), the stop mark)
        self.claim: Claim | None = None
        self.problem: str | None = None  # why the last heartbeat did not land as this station's own
        self.beats = 0  # heartbeats written (the tests and the load figures count them)
        self._stopped_clean = False
        self.rollback = rollback  # the fleet rollbacks this station applies (app/fleet/rollback.py)
        self._rollback_unread = False
        self._away = True  # not yet checked the fleet rollbacks since it registered, or the database was away

    def register(self) -> Claim:
        """Claim the name (raises :class:`~app.domain.fleet.StationNameTaken` when it is taken), then
        apply the fleet rollbacks issued while this station was away (said as "on return")."""
        if self.rollback is not None:
            self.rollback.resume_from(self.registry.get(self.station_id))  # before the claim rewrites the row
        claim = self.registry.claim(self.station_id, self.name, version=self.version, host=host_name(),
                                    pid=os.getpid(), gone_after=self.gone_after, report=self._safe_report())
        self.claim = claim
        log.info("registered in the fleet as %r (station %s, heartbeat every %g s, gone after %g s)",
                 self.name, self.station_id, self.interval, self.gone_after)
        if claim.message:
            log.warning("fleet: %s", claim.message)
        self._check_rollbacks()
        return claim

    def _check_rollbacks(self) -> None:
        if self.rollback is None:
            return
        try:
            self.rollback.check(on_return=self._away)
            self._away = False
            self._rollback_unread = False
        except Exception as e:
            self._away = True  # a rollback it finds once the database answers again is applied "on return"
            if not self._rollback_unread:  # said once while the database is away, as the heartbeat does
                log.warning("fleet: the fleet rollbacks could not be read (%s: %s); looking again at every "
                            "heartbeat", type(e).__name__, str(e)[:200])
            self._rollback_unread = True

    def start(self) -> FleetMember:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fleet-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop_heartbeat(self) -> None:
        """Stop the thread without marking the station stopped (what a crash looks like to the fleet)."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=10)

    def close(self) -> None:
        """A clean exit: stop heartbeating and mark the station stopped. Idempotent."""
        self.stop_heartbeat()
        if self.claim is None or self._stopped_clean:
            return
        with self._lock:
            try:
                self.registry.mark_stopped(self.station_id)
                self._stopped_clean = True
                log.info("fleet: station %r marked stopped", self.name)
            except Exception as e:
                log.warning("fleet: could not mark station %r stopped (%s); it shows as gone after %g s",
                            self.name, e, self.gone_after)

    def beat_now(self) -> Beat | None:
        """Heartbeat once now (None when it could not be written; the reason is logged)."""
        with self._lock:
            if self._stopped_clean:
                return None
            self._check_rollbacks()  # what it applies now is in this very heartbeat
            try:
                beat = self.registry.heartbeat(self.station_id, self._safe_report())
            except Exception as e:
                self._away = True  # a rollback issued meanwhile is applied "on return"
                if self.problem is None or not self.problem.startswith("heartbeat failed"):
                    log.warning("fleet: heartbeat failed (%s: %s); trying again every %g s",
                                type(e).__name__, str(e)[:200], self.interval)
                self.problem = f"heartbeat failed: {type(e).__name__}"
                return None
            self.beats += 1
            if beat.ok:
                if self.problem is not None:
                    log.info("fleet: heartbeat works again")
            elif beat.problem != self.problem:
                log.error("fleet: %s", beat.problem)
            self.problem = beat.problem
            return beat

    def info(self) -> StationInfo | None:
        return self.registry.get(self.station_id)

    def _safe_report(self) -> StationReport:
        try:
            report = self._report()
        except Exception as e:
            log.debug("fleet: the station's status could not be read", exc_info=True)
            report = StationReport(health="unknown", problems=(f"status unavailable: {type(e).__name__}",))
        if self.rollback is not None:
            acks = self.rollback.acks()
            if acks:
                report = replace(report, stages=merge_acks(report.stages, acks))
        return report

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat_now()


__all__ = ["FleetMember"]
