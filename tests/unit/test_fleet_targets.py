"""``edge-station fleet targets``: which stations become scrape targets, at which address, with which labels."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.cli import main
from app.cli_common import CliError
from app.domain.fleet import StationInfo, StationState
from app.fleet.targets import _labels, scrape_address, targets_document
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.stations import StationRegistry

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def info(name: str, api: str, state: StationState = StationState.RUNNING, host: str = "box") -> StationInfo:
    return StationInfo(id=f"id-{name}", name=name, host=host, pid=1, version="0.1.0", state=state, started_at=T0,
                       heartbeat_at=T0, station_clock_at=None, stopped_at=None, cameras_up=0, cameras_total=0,
                       stages={}, health="ok", problems=(), replaced_by=None, api=api)


def test_addresses_for_prometheus():
    assert scrape_address(info("a", "10.0.0.5:8765")) == ("10.0.0.5:8765", None)
    assert scrape_address(info("a", "0.0.0.0:8765", host="depot-1")) == ("depot-1:8765", None)
    assert scrape_address(info("a", "[::]:8765", host="depot-1")) == ("depot-1:8765", None)
    assert scrape_address(info("a", "depot.example.net:8765")) == ("depot.example.net:8765", None)
    addr, note = scrape_address(info("a", "127.0.0.1:8765", host="depot-1"))
    assert addr == "127.0.0.1:8765" and "just a Prometheus on its own box (depot-1)" in (note or "")
    assert scrape_address(info("a", "")) == (None, "a: serves no control API (api.enabled is off or it did not start)")


def test_stopped_and_replaced_stations_are_left_out_unless_all_and_gone_ones_stay():
    stations = [info("Dock", "10.0.0.2:8765"), info("attic", "10.0.0.3:8765", StationState.STOPPED),
                info("lobby~1234", "10.0.0.4:8765", StationState.REPLACED), info("bay", "")]
    groups, notes = targets_document(stations, labels={"site": "north"}, every=False)
    assert groups == [{"targets": ["10.0.0.2:8765"], "labels": {"station": "Dock", "site": "north"}}]
    assert notes == ["bay: serves no control API (api.enabled is off or it did not start)"]
    groups, _ = targets_document(stations, labels={}, every=True)
    assert [g["labels"]["station"] for g in groups] == ["attic", "Dock", "lobby~1234"]


@pytest.mark.parametrize("bad", ["site", "1site=x", "__meta=x", "station=x", "job=x", "instance=y"])
def test_labels_that_prometheus_or_the_job_owns_are_refused(bad):
    with pytest.raises(CliError, match="--label"):
        _labels([bad])


def test_the_command_writes_the_registry_as_a_file_sd_file(tmp_path, capsys):
    url = sqlite_url(tmp_path / "fleet.db")
    store = open_store(url)
    reg = StationRegistry(store)
    from app.domain.fleet import StationReport

    for sid, name, api in (("00000000-0000-4000-8000-000000000001", "lobby", "10.1.0.1:8765"),
                           ("00000000-0000-4000-8000-000000000002", "dock", "10.1.0.2:8765")):
        reg.claim(sid, name, version="0.1.0", host="box", pid=1, gone_after=20, report=StationReport(api=api))
    reg.mark_stopped("00000000-0000-4000-8000-000000000002")
    store.dispose()
    out = tmp_path / "sd" / "stations.json"
    out.parent.mkdir()
    assert main(["fleet", "targets", "--db", url, "--write", str(out)]) == 0
    assert "wrote 1 target to" in capsys.readouterr().out
    assert json.loads(out.read_text()) == [{"targets": ["10.1.0.1:8765"], "labels": {"station": "lobby"}}]
    assert [p.name for p in out.parent.iterdir()] == ["stations.json"], "no temporary file is left"
    assert main(["fleet", "targets", "--db", url, "--all"]) == 0
    assert [g["labels"]["station"] for g in json.loads(capsys.readouterr().out)] == ["dock", "lobby"]
    assert main(["fleet", "targets", "--db", url, "--write", str(tmp_path / "no" / "dir.json")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_a_report_keeps_its_api_through_a_replace():
    assert replace(info("a", "x:1"), api="y:2").api == "y:2"
