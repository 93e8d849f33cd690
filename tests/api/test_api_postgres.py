"""The API on a station whose database is PostgreSQL: routing, force, and 50 concurrent clients
(PostgreSQL runs writers truly in parallel, unlike SQLite's single writer)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from app.api import ApiServer
from app.platform.paths import StationPaths
from app.station import Station, StationOptions
from tests.api import test_api_force_and_concurrency as suite
from tests.api.conftest import Live
from tests.integration.test_store_pg import _admin, pg_server_url  # noqa: F401 - the session fixture


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Live]:  # noqa: F811
    name = "edge_api_" + tmp_path_factory.mktemp("pgname").name.replace("-", "_").lower()[:40]
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    data_dir = tmp_path_factory.mktemp("api-pg-station")
    station = Station(StationOptions(paths=StationPaths(data_dir, url), seed_demo=True, autostart=False,
                                     watch_interval=0.2)).open()
    station.parts().router.set_options({"auto_rollback": False}, actor="api tests")
    api = ApiServer(station, port=0).start()
    cams = station.cameras()
    try:
        yield Live(station, api, station.parts().router, data_dir, {c.name: c.id for c in cams},  # type: ignore[misc]
                   {c.id: c.active for c in cams})  # type: ignore[misc]
    finally:
        api.stop()
        station.close()
        with _admin(pg_server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_health_names_postgresql(client):
    doc = client.request("GET", "/api/v1/monitoring/health").data
    assert doc["database"]["ok"] and doc["database"]["dialect"] == "postgresql"


test_force_is_honoured_and_visible = suite.test_force_is_honoured_and_visible
test_fifty_clients_create_rules_without_loss_or_duplicate = suite.test_fifty_clients_create_rules_without_loss_or_duplicate
test_fifty_clients_race_on_one_rule_version = suite.test_fifty_clients_race_on_one_rule_version
test_fifty_clients_start_one_camera_once = suite.test_fifty_clients_start_one_camera_once
test_rules_made_through_the_api_reach_the_alert_engine = suite.test_rules_made_through_the_api_reach_the_alert_engine
