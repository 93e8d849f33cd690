"""A database at the head opens without Alembic (tests/unit/test_preflight.py keeps the head right)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.store.db import HEAD_REVISION, make_engine, migrate, stored_revision

OPEN = """
import sys
from app.store import open_store
store = open_store(sys.argv[1])
print("alembic" in sys.modules, flush=True)
store.engine.dispose()
"""


def _open_loads_alembic(url: str) -> bool:
    out = subprocess.run([sys.executable, "-c", OPEN, url], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_a_new_database_migrates_and_then_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'station.db'}"
    assert _open_loads_alembic(url) is True  # empty: the migrations run
    engine = make_engine(url)
    try:
        assert stored_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()
    assert _open_loads_alembic(url) is False  # at the head: Alembic is not loaded


def test_a_database_behind_the_head_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'station.db'}"
    engine = make_engine(url)
    try:
        migrate(engine)
        from alembic import command

        from app.store.db import _alembic_config

        command.downgrade(_alembic_config(engine), "-1")  # one migration behind the head
        behind = stored_revision(engine)
        assert behind is not None and behind != HEAD_REVISION
        assert migrate(engine) == HEAD_REVISION
        assert stored_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()
