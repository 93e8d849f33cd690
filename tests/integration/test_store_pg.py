"""The store suite on a real PostgreSQL server: the SQLite suite's own test functions with a
PostgreSQL-backed ``store``/``db`` fixture, plus PostgreSQL's versions of the SQLite-specific
checks (schema, newer database, unreachable server) and the station on PostgreSQL.

The server: ``EDGE_STATION_TEST_PG_URL`` (set by .ci/run from ``scripts/ci_postgres.sh``), or,
when that is unset, the URL the script prints (it starts a private server; idempotent). Each
test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from app.domain import AlertRule, Camera, Comparator, ConstraintViolation, TargetKind
from app.domain.errors import Conflict
from app.domain.operations import UpdateRule
from app.platform.paths import StationPaths
from app.store import SchemaTooNew, StoreError, open_store
from app.store.db import head_revision, is_migrated
from tests.integration import test_store as sqlite_store_suite
from tests.integration import test_yaml_io as yaml_suite
from tests.support.dbdump import content as sqlite_content

REPO = Path(__file__).resolve().parents[2]
ENV_URL = "EDGE_STATION_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get(ENV_URL)
    if url:
        return url
    p = subprocess.run(["bash", str(REPO / "scripts" / "ci_postgres.sh")], capture_output=True, text=True, timeout=300,
                       start_new_session=True)
    if p.returncode != 0 or not p.stdout.strip():
        pytest.fail(f"no PostgreSQL for the store tests: set {ENV_URL} or make scripts/ci_postgres.sh work:\n"
                    f"{p.stderr[-2000:]}")
    return p.stdout.strip().splitlines()[-1]


def _admin(url: str):
    import psycopg

    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password or None,
                           dbname=u.database or "postgres", autocommit=True)


@dataclass(frozen=True)
class PgDatabase:
    """A database of one test; ``content()`` is the PostgreSQL counterpart of tests.support.dbdump."""

    url: str

    def content(self) -> list[str]:
        import psycopg

        u = make_url(self.url)
        out = []
        with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password or None,
                             dbname=u.database) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")]
            for t in tables:
                cols = conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", (t,)).fetchall()
                out.append(f"TABLE {t} {cols}")
                rows = conn.execute(f'SELECT * FROM "{t}"').fetchall()  # noqa: S608 - names from the catalog
                out += sorted(f"{t} {row!r}" for row in rows)
        return out


@pytest.fixture
def pg_db(pg_server_url: str) -> Iterator[PgDatabase]:
    name = f"edge_t_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PgDatabase(make_url(pg_server_url).set(database=name).render_as_string(hide_password=False))
    finally:
        with _admin(pg_server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(pg_db: PgDatabase):
    s = open_store(pg_db.url)
    yield s
    s.dispose()


@pytest.fixture
def db(pg_db: PgDatabase, monkeypatch):
    """test_yaml_io's ``db`` on PostgreSQL: its ``content(path)`` checks read this database."""
    store = open_store(pg_db.url)
    with store.uow() as uow:
        uow.cameras.add(Camera(name="Existing", source="test://still"))
        uow.commit()

    def content(target):
        return target.content() if isinstance(target, PgDatabase) else sqlite_content(target)

    monkeypatch.setattr(yaml_suite, "content", content)
    yield store, pg_db
    store.dispose()


# ---------------------------------------------------------------- the SQLite suites' own tests, on PostgreSQL

test_repository_round_trip = sqlite_store_suite.test_repository_round_trip
test_unit_of_work_rolls_back_without_commit = sqlite_store_suite.test_unit_of_work_rolls_back_without_commit
test_unit_of_work_rolls_back_on_error = sqlite_store_suite.test_unit_of_work_rolls_back_on_error
test_unique_camera_names = sqlite_store_suite.test_unique_camera_names
test_rules_cascade_with_their_camera = sqlite_store_suite.test_rules_cascade_with_their_camera
test_settings_and_audit = sqlite_store_suite.test_settings_and_audit

test_import_merges_and_applies_defaults = yaml_suite.test_import_merges_and_applies_defaults
test_import_replace_removes_others = yaml_suite.test_import_replace_removes_others
test_export_round_trips_and_masks = yaml_suite.test_export_round_trips_and_masks
test_bad_input_names_file_line_field_and_changes_nothing = yaml_suite.test_bad_input_names_file_line_field_and_changes_nothing
test_missing_file = yaml_suite.test_missing_file
test_one_bad_camera_among_good_ones_applies_nothing = yaml_suite.test_one_bad_camera_among_good_ones_applies_nothing
test_failure_during_apply_rolls_back = yaml_suite.test_failure_during_apply_rolls_back


# ---------------------------------------------------------------- PostgreSQL's versions of the SQLite-specific tests


def test_pg_migrations_create_every_table(store):
    assert store.engine.dialect.name == "postgresql"
    with store.engine.connect() as c:
        names = set(inspect(c).get_table_names())
    assert {"cameras", "alert_rules", "alert_events", "audit_log", "settings", "metric_rollups"} <= names
    assert is_migrated(store.engine)


def test_pg_reopen_is_idempotent(pg_db):
    open_store(pg_db.url).dispose()
    s = open_store(pg_db.url)
    assert is_migrated(s.engine)
    s.dispose()


def test_pg_newer_database_is_refused_and_left_alone(pg_db):
    open_store(pg_db.url).dispose()
    s = open_store(pg_db.url)
    with s.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    s.dispose()
    before = pg_db.content()
    with pytest.raises(SchemaTooNew, match="newer than this Edge Station"):
        open_store(pg_db.url)
    assert pg_db.content() == before and head_revision() != "9999_future"


def test_pg_unreachable_server_gives_store_error(pg_server_url):
    bad = make_url(pg_server_url).set(port=1).render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="cannot open database"):
        open_store(bad)
    missing = make_url(pg_server_url).set(database="edge_no_such_db").render_as_string(hide_password=False)
    with pytest.raises(StoreError):
        open_store(missing)


# ---------------------------------------------------------------- types the two databases must agree on


def test_pg_types_round_trip(store):
    rule = AlertRule(name="r", metric="fps", comparator=Comparator.LT, threshold=2.5, target=TargetKind.CAMERA,
                     camera_id=None, enabled=False, schedule="mon-fri 08:00-18:00")
    with store.uow() as uow:
        cam = uow.cameras.add(Camera(name="Ünïcode cam", source="test://moving", active=False, tags=("a", "ü")))
        saved = uow.rules.add(rule.with_changes(camera_id=cam.id))
        for key, value in {"b": True, "i": 7, "f": 0.25, "s": "text", "l": [1, "x"], "d": {"k": [None, False]},
                           "n": None}.items():
            uow.settings.set(f"types.{key}", value)
        uow.commit()
    with store.uow() as uow:
        assert uow.cameras.get(cam.id) == cam
        got = uow.rules.get(saved.id)
        stored = {k: v for k, v in uow.settings.all().items() if k.startswith("types.")}
    assert got == saved and got.enabled is False and got.notify.command == ()
    assert stored == {"types.b": True, "types.i": 7, "types.f": 0.25, "types.s": "text", "types.l": [1, "x"],
                      "types.d": {"k": [None, False]}, "types.n": None}
    with store.engine.connect() as c:
        types = dict(c.execute(text("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'alert_rules'")).all())
    assert types["enabled"] == "boolean" and types["created_at"] == "timestamp with time zone"


def test_pg_unique_names_are_enforced_by_the_database(store):
    with store.uow() as uow:
        uow.rules.add(AlertRule(name="dup", metric="fps", comparator=Comparator.LT, threshold=1))
        uow.commit()
    with pytest.raises(ConstraintViolation) as ei, store.uow() as uow:
        uow.rules.add(AlertRule(name="dup", metric="fps", comparator=Comparator.GT, threshold=2))
        uow.session.flush()
    assert ei.value.constraint == "unique" and isinstance(ei.value.__cause__, IntegrityError)


def test_pg_concurrent_rule_updates_cannot_both_win(store):
    """Two updates of one rule at the same version, through both implementations: one wins, one conflicts."""
    from app.legacy.operations import LegacyOperations
    from app.services.operations import DomainOperations

    with store.uow() as uow:
        rid = uow.rules.add(AlertRule(name="race", metric="fps", comparator=Comparator.LT, threshold=1)).id
        uow.commit()
    impls = [DomainOperations(store, None, None, None), LegacyOperations(store.engine, None, None, None)]
    for round_ in range(6):
        with store.uow() as uow:
            version = uow.rules.get(rid).version
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def update(impl, value, version=version, barrier=barrier, outcomes=outcomes):
            barrier.wait(timeout=10)
            try:
                impl.update_rule(UpdateRule(rid, {"threshold": value}, expected_version=version))
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=update, args=(impls[i % 2], 10.0 * round_ + i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"], (round_, outcomes)
        with store.uow() as uow:
            assert uow.rules.get(rid).version == version + 1


# ---------------------------------------------------------------- the station on PostgreSQL


def test_pg_station_seeds_and_notices_other_processes_changes(pg_db, tmp_path):
    from app.station import Station, StationOptions

    station = Station(StationOptions(paths=StationPaths(tmp_path / "data", pg_db.url), seed_demo=True,
                                     autostart=False, watch_interval=0.1)).open()
    try:
        assert len(station.cameras()) == 4
        # A change while the station runs, at once after open: the watch's baseline is taken before the
        # station loads what it caches, so even a change before its first poll is seen.
        other = open_store(pg_db.url)  # another process's store: a CLI import, say
        try:
            with other.uow() as uow:
                uow.cameras.add(Camera(name="Added elsewhere", source="test://bars"))
                uow.commit()
            deadline = time.monotonic() + 10
            while "Added elsewhere" not in {c.name for c in station.cameras()}:
                assert time.monotonic() < deadline, "the station did not notice the new camera"
                time.sleep(0.05)
            with other.uow() as uow:
                cam = uow.cameras.get_by_name("Lobby")
                uow.cameras.update(cam.with_changes(location="Moved"))
                uow.commit()
            deadline = time.monotonic() + 10
            while next(c for c in station.cameras() if c.name == "Lobby").location != "Moved":
                assert time.monotonic() < deadline, "the station did not notice the changed camera"
                time.sleep(0.05)
        finally:
            other.dispose()
    finally:
        station.close()
