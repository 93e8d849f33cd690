"""camera and rule names unique case-insensitively

Revision ID: 0008_operator_names
Revises: 0001

An existing database may hold names that differ only in case ("Lobby" and
"lobby"). Nothing is dropped: the first keeps its name, each later one gets a
free " (2)", " (3)"… suffix. Every rename is logged as a warning and recorded
in the audit log (op ``migrate.rename``), then the unique ``lower(name)``
indexes are created.
"""
import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0008_operator_names'
down_revision = '0007_rollout_tracks'
branch_labels = None
depends_on = None

log = logging.getLogger("edge_station.store")

_TABLES = (("cameras", "camera", 64, "uq_cameras_name_ci"),
           ("alert_rules", "alert rule", 100, "uq_alert_rules_name_ci"))

_audit = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)), sa.column("op", sa.String), sa.column("key", sa.String),
    sa.column("path", sa.String), sa.column("outcome", sa.String), sa.column("fallback", sa.Boolean),
    sa.column("actor", sa.String), sa.column("reason", sa.String), sa.column("detail", sa.JSON),
)


def _key(name: str) -> str:
    return name.strip().casefold()


def _free_name(name: str, taken: set[str], max_len: int) -> str:
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = name[: max_len - len(suffix)].rstrip() + suffix
        if _key(candidate) not in taken:
            return candidate
        n += 1


def rename_case_duplicates(conn, table: str, what: str, max_len: int) -> list[tuple[int, str, str, str]]:
    """Rename every row whose name equals an earlier row's name but for case; the renames made."""
    t = sa.table(table, sa.column("id", sa.Integer), sa.column("name", sa.String))
    rows = conn.execute(sa.select(t.c.id, t.c.name).order_by(t.c.id)).all()
    first: dict[str, str] = {}
    taken = {_key(name) for _, name in rows}
    renames = []
    for rid, name in rows:
        key = _key(name)
        if key not in first:
            first[key] = name
            continue
        new = _free_name(name, taken, max_len)
        taken.add(_key(new))
        conn.execute(sa.update(t).where(t.c.id == rid).values(name=new))
        renames.append((rid, name, new, first[key]))
    now = datetime.now(UTC)
    for rid, old, new, kept in renames:
        log.warning("migration: %s %d %r renamed to %r: names are unique case-insensitively and %r exists",
                    what, rid, old, new, kept)
        conn.execute(sa.insert(_audit).values(
            at=now, op="migrate.rename", key=f"{table}:{rid}", path="", outcome="ok", fallback=False,
            actor="migration 0008", reason=f"{what} name clashes with {kept!r} but for case"[:80],
            detail={"table": table, "id": rid, "old": old, "new": new, "kept": kept}))
    return renames


def upgrade() -> None:
    conn = op.get_bind()
    for table, what, max_len, index in _TABLES:
        rename_case_duplicates(conn, table, what, max_len)
        op.create_index(index, table, [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    for table, _what, _max_len, index in _TABLES:
        op.drop_index(index, table_name=table)
