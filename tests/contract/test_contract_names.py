"""Names are unique case-insensitively everywhere (defect 5): both implementations, the store, the
CLI, the YAML round trip, and the migration of a database that already holds such duplicates."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from app.domain import AlertRule, Camera, Comparator, Conflict, ErrorCode
from app.domain.operations import CreateRule, StationOperations, UpdateRule
from app.store import open_store
from app.store.db import _alembic_config, make_engine
from app.store.yaml_io import export_file, import_file
from tests.contract.conftest import Station
from tests.contract.helpers import refused

REPO = Path(__file__).resolve().parents[2]


def rule(name: str) -> AlertRule:
    return AlertRule(name=name, metric="fps", comparator=Comparator.LT, threshold=5)


def test_rule_names_differing_in_case_conflict(ops: StationOperations, station: Station) -> None:
    ops.create_rule(CreateRule(rule("Gate slow")))
    refused(lambda: ops.create_rule(CreateRule(rule("gate SLOW"))), ErrorCode.CONFLICT, "already exists")
    other = ops.create_rule(CreateRule(rule("Dock slow"))).rule
    refused(lambda: ops.update_rule(UpdateRule(other.id, {"name": "GATE slow"})), ErrorCode.CONFLICT,
            "already exists")
    # Renaming a rule to another case of its own name is fine.
    assert ops.update_rule(UpdateRule(other.id, {"name": "DOCK SLOW"})).rule.name == "DOCK SLOW"
    assert sorted(r.name for r in station.admin.list_rules()) == ["DOCK SLOW", "Gate slow"]


def test_camera_names_differing_in_case_conflict(station: Station) -> None:
    station.admin.add_camera(Camera(name="Lobby", source="test://moving"))
    for name in ("lobby", "LOBBY", " Lobby "):
        with pytest.raises(Conflict):
            station.admin.add_camera(Camera(name=name, source="test://moving"))
    with pytest.raises(Conflict):
        station.admin.update_camera(station.gate.id, {"name": "LOBBY"})
    with station.store.uow() as uow:
        assert uow.cameras.get_by_name("LOBBY").name == "Lobby"


def test_the_store_itself_refuses_a_case_duplicate(station: Station) -> None:
    from app.domain.errors import ConstraintViolation

    with pytest.raises(ConstraintViolation) as ei, station.store.uow() as uow:
        uow.cameras.add(Camera(name=station.gate.name.upper(), source="test://moving"))
        uow.commit()
    assert ei.value.constraint == "unique"


def test_cli_add_refuses_a_case_duplicate_and_the_export_imports_again(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)

    assert cli("cameras", "add", "Lobby", "test://moving").returncode == 0
    for name in ("lobby", "LOBBY"):
        out = cli("cameras", "add", name, "test://moving")
        assert out.returncode != 0 and "already exists" in out.stderr, (out.returncode, out.stderr)
    out = cli("export", str(tmp_path / "out.yaml"))
    assert out.returncode == 0, out.stderr
    out = cli("import", str(tmp_path / "out.yaml"))
    assert out.returncode == 0, out.stderr


def test_an_existing_database_with_case_duplicates_migrates_losing_nothing(tmp_path: Path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(_alembic_config(engine), "0001")  # the schema before names were case-insensitive
    with engine.begin() as conn:
        for name in ("Lobby", "lobby", "LOBBY", "lobby (2)", "Yard"):
            conn.exec_driver_sql("INSERT INTO cameras (name, source, active, loop, motion_enabled, motion_threshold,"
                                 " motion_warmup, stall_timeout, location, tags, created_at, updated_at) VALUES"
                                 " (?, 'test://moving', 1, 0, 1, 0.02, 10, 10, '', '[]', '2026-01-01', '2026-01-01')",
                                 (name,))
    engine.dispose()
    caplog.set_level(logging.WARNING, logger="edge_station.store")
    store = open_store(url)
    try:
        with store.uow() as uow:
            names = [c.name for c in uow.cameras.list()]
            renames = uow.audit.recent(50, op_prefix="migrate.rename")
        assert len(names) == 5, "a camera was lost"
        assert len({n.casefold() for n in names}) == 5
        assert names[0] == "Lobby" and names[3] == "lobby (2)" and names[4] == "Yard"
        assert {(r.detail["old"], r.detail["kept"]) for r in renames} == {("lobby", "Lobby"), ("LOBBY", "Lobby")}
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "'lobby' renamed to" in logged and "'LOBBY' renamed to" in logged
        export_file(store, tmp_path / "all.yaml")
        assert import_file(store, tmp_path / "all.yaml").summary()
    finally:
        store.dispose()
