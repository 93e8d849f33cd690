"""A fleet under Debian's Prometheus: two stations on one PostgreSQL database, each running its own
camera on a real worker, both scraped through the shipped job (one fleet token, file-based discovery
with a ``station`` label each). Each station's series carry only its own cameras; a fault drill on
one station fires the shipped error-rate alert for that station alone, within the bound
docs/monitoring.md gives, and its rollback resolves it while the other station stays quiet."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.api import ApiServer
from app.api.token import ensure_token
from app.cli import main
from app.domain import Camera
from app.domain.camera import CameraState
from app.rollout.drill import FaultSpec, inject
from app.station import Station
from tests.integration.test_fleet import station
from tests.integration.test_prometheus_live import (
    INTERVAL_S,
    Traffic,
    _domain_counts,
    _evaluated,
    _firing,
    _for_seconds,
)
from tests.integration.test_store_pg import pg_db, pg_server_url  # noqa: F401 - the PostgreSQL fixtures
from tests.support.prometheus import PrometheusServer, fleet_config, tool
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

NAMES = ("lobby", "dock")
ACTOR = "fleet monitoring test"
ALERT = "EdgeStationDomainErrorRateHigh"


@dataclass
class Member:
    station: Station
    api: ApiServer
    camera: int


@pytest.fixture
def fleet(pg_db, tmp_path: Path) -> Iterator[tuple[dict[str, Member], PrometheusServer]]:  # noqa: F811
    promtool = tool("promtool")
    token_file = tmp_path / "fleet-token"
    ensure_token(token_file)  # the fleet's one token, given to both stations' APIs (docs/monitoring.md)
    members: dict[str, Member] = {}
    try:
        def serve(st, _port):  # the station's own API, with the fleet's token
            return ApiServer(st, port=0, token_path=token_file).start()

        for name in NAMES:
            st = station(pg_db.url, tmp_path, name, autostart=True, api=serve).open()
            try:
                cam = st.parts().admin.add_camera(Camera(name=f"{name} gate",
                                                         source="test://moving?size=160x90&rate=5"))
                st.reload_cameras()
                router = st.parts().router
                router.set_options({"auto_rollback": False}, actor=ACTOR)  # the subject is Prometheus's alert
                router.set(track="cameras", use_domain=True, percent=100, actor=ACTOR, override_reason=ACTOR)
            except BaseException:
                st.close()
                raise
            assert cam.id is not None and isinstance(st.api, ApiServer)
            members[name] = Member(st, st.api, cam.id)
        root = tmp_path / "prometheus"
        config = fleet_config(root, token_file=token_file, interval_s=INTERVAL_S, targets=[])
        # the file_sd file as the fleet writes it: from the registry, where each station's heartbeat says
        # where its API answers (docs/monitoring.md)
        sd_file = root / "targets" / "stations.json"
        assert main(["fleet", "targets", "--db", pg_db.url, "--write", str(sd_file), "--label", "site=test"]) == 0
        assert json.loads(sd_file.read_text()) == [
            {"targets": [f"127.0.0.1:{members[n].api.port}"], "labels": {"station": n, "site": "test"}}
            for n in sorted(NAMES)]
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr

        def streaming(m: Member) -> bool:
            return any(s.camera_id == m.camera and s.state is CameraState.RUNNING and s.fps
                       for s in m.station.live_status())

        with Traffic(members["lobby"].api, [members["lobby"].camera]) as t1, \
                Traffic(members["dock"].api, [members["dock"].camera]) as t2, PrometheusServer(config, root) as prom:
            for name, m in members.items():
                wait_for(lambda m=m: streaming(m), timeout=60, what=f"{name}'s camera to stream")
            yield members, prom
        assert not t1.failures and not t2.failures, (t1.failures + t2.failures)[:5]
    finally:
        for m in members.values():
            m.station.close()


def test_two_stations_on_one_database_are_told_apart_and_a_drill_on_one_fires_for_it_alone(fleet) -> None:
    members, prom = fleet
    lobby = members["lobby"]

    def both_scraped() -> bool:
        return {t["labels"].get("station") for t in prom.targets() if t["health"] == "up"} == set(NAMES)

    wait_for(both_scraped, timeout=30, what="Prometheus to scrape both stations")
    # each station's series hold its own camera only
    def cameras_per_station() -> dict[str, set[str]] | None:
        got: dict[str, set[str]] = {}
        for s in prom.query_range("edge_station_camera_up == 1", seconds=3):
            got.setdefault(s["metric"]["station"], set()).add(s["metric"]["camera"])
        return got if set(got) == set(NAMES) else None

    seen = wait_for(cameras_per_station, timeout=30, what="both stations' cameras to be up in Prometheus")
    assert seen == {name: {str(m.camera)} for name, m in members.items()}

    for name in NAMES:
        wait_for(lambda name=name: prom.query_range(
            f'edge_station_operation_errors_total{{station="{name}", op="camera_status", path="domain"}}', seconds=3),
            timeout=20, what=f"{name}'s domain error counter to be scraped")
    wait_for(lambda: _evaluated(prom), timeout=10, what="every rule to be evaluated")
    assert not prom.alerts(ALERT), "the error-rate alert is active before any fault"

    fire_bound = 2 * INTERVAL_S + 2 * INTERVAL_S + _for_seconds(ALERT)  # as in docs/monitoring.md
    resolve_bound = 4 * INTERVAL_S
    router = lobby.station.parts().router
    router_log = logging.getLogger("app.rollout.router")
    level = router_log.level
    router_log.setLevel(logging.ERROR)  # one fallback warning with a traceback per injected failure
    try:
        with inject(router, FaultSpec(fail_rate=1.0, ops=("camera_status",))):
            def crossed() -> bool:
                calls, errors = _domain_counts(lobby.station, "cameras")
                return errors >= 3 and errors / calls > 0.05

            wait_for(crossed, timeout=20, what="the drill to push lobby's domain error ratio over 5 %")
            t_cross = time.monotonic()
            (firing,) = wait_for(lambda: _firing(prom, ALERT), timeout=fire_bound,
                                 what=f"{ALERT} to fire within {fire_bound:g} s of the crossing")
            fired_after = time.monotonic() - t_cross
            assert (firing["labels"]["station"], firing["labels"]["track"]) == ("lobby", "cameras")
            assert not _firing(prom, ALERT, station="dock")
            assert _domain_counts(members["dock"].station, "cameras")[1] == 0
            router.rollback(track="cameras", actor=ACTOR, reason="fleet monitoring drill")
            t_rollback = time.monotonic()
            wait_for(lambda: not prom.alerts(ALERT), timeout=resolve_bound,
                     what=f"{ALERT} to resolve within {resolve_bound:g} s of the rollback")
            resolved_after = time.monotonic() - t_rollback
    finally:
        router_log.setLevel(level)
    # the rollback was lobby's alone (its settings are its own): dock still routes the track to the domain path
    for name, rolled_back in (("lobby", True), ("dock", False)):
        members[name].station.parts().router.reload()
        track = members[name].station.parts().router.settings.tracks["cameras"]
        assert (track.latched, track.use_domain) == (rolled_back, not rolled_back), name
    # what one station adds to Prometheus: its scraped series and the series the shipped rules record for it
    scraped = {r["metric"]["station"]: int(float(r["value"][1]))
               for r in prom.api("query", query='count by (station) ({job="edge-station", __name__!~".*:.*"})')["result"]}
    recorded = {r["metric"]["station"]: int(float(r["value"][1]))
                for r in prom.api("query", query='count by (station) ({__name__=~".+:.+"})')["result"]}
    assert set(scraped) == set(NAMES) and all(n > 0 for n in scraped.values()), scraped
    print(f"\nseries per station: scraped {scraped}, recorded by the shipped rules {recorded}")
    print(f"{ALERT} on lobby: fired {fired_after:.1f} s after the crossing (bound {fire_bound:g} s), "
          f"resolved {resolved_after:.1f} s after the rollback (bound {resolve_bound:g} s); dock stayed quiet")
