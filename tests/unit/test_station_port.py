"""The station implements its port: every method the window, kiosk, API and CLI may call exists."""

import inspect

import pytest

from app.platform.paths import resolve_paths
from app.station import Station, StationOptions, StationPort


def test_every_member_of_the_port_is_on_the_station(tmp_path):
    station = Station(StationOptions(paths=resolve_paths(tmp_path / "data")))  # not opened
    members = [n for n in vars(StationPort) if not n.startswith("_")]
    assert len(members) > 80
    missing = [n for n in members if not hasattr(station, n)]
    assert missing == []
    for name in members:
        want = getattr(StationPort, name)
        if inspect.isfunction(want):  # the station accepts every keyword the port names
            have = inspect.signature(getattr(Station, name)).parameters
            assert set(inspect.signature(want).parameters) <= set(have), name


def test_a_closed_station_answers_what_needs_no_parts(tmp_path):
    station = Station(StationOptions(paths=resolve_paths(tmp_path / "data")))
    assert station.cameras() == [] and station.live_status() == []
    assert station.metrics_reader() is None and station.last_decision() is None
    assert not station.alerts_running() and station.alert_statuses() == []
    assert not station.supervisor_running() and station.worker_count() == 0
    assert station.database_check().ok is False
    assert station.api_status.running is False


def test_a_station_that_cannot_open_shows_no_cameras(tmp_path, monkeypatch):
    """The cameras read early (before the store opens) go again when the open fails."""
    import app.station.wiring

    paths = resolve_paths(tmp_path / "data")
    with Station(StationOptions(paths=paths, seed_demo=True, autostart=False, fleet=False)) as first:
        assert first.cameras()
    seen: list[int] = []

    def broken(*_a, **kw):
        seen.append(len(kw["hooks"].live_status()))  # the early read's cameras and their idle states
        raise RuntimeError("the parts cannot start")

    monkeypatch.setattr(app.station.wiring, "build_parts", broken)
    station = Station(StationOptions(paths=paths, seed_demo=True, autostart=False, fleet=False))
    with pytest.raises(RuntimeError, match="cannot start"):
        station.open()
    assert seen and seen[0] > 0
    assert station.cameras() == [] and station.live_status() == [] and station.preview_path(1) is None
