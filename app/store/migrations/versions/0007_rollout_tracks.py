"""rollout tracks: per-track rollout settings and the problem reports table

The one-track settings ``rollout.<field>`` (use_domain, percent, latched, latch_reason,
latched_at, stage_entered_at) become ``rollout.rules.<field>`` and ``rollout.cameras.<field>``
with the same values: a station keeps exactly the rollout it had, now on both tracks.
Problem reports (``rollout_reports``) hold a track's stage gate until resolved.

Revision ID: 0007_rollout_tracks
Revises: 0001
Create Date: 2026-12-02 02:45:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0007_rollout_tracks'
down_revision = '0001'
branch_labels = None
depends_on = None

TRACKS = ("rules", "cameras")
FIELDS = ("use_domain", "percent", "latched", "latch_reason", "latched_at", "stage_entered_at")

settings = sa.table(
    "settings",
    sa.column("key", sa.String(80)),
    sa.column("value", sa.JSON()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _values(conn, keys):
    rows = conn.execute(sa.select(settings.c.key, settings.c.value).where(settings.c.key.in_(keys))).all()
    return {k: v for k, v in rows}


def upgrade() -> None:
    op.create_table('rollout_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('track', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('operator', sa.String(length=80), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=True),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=False),
    sa.Column('resolution', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rollout_reports', schema=None) as batch_op:
        batch_op.create_index('ix_rollout_reports_track_open', ['track', 'resolved_at'], unique=False)

    conn = op.get_bind()
    old = _values(conn, [f"rollout.{f}" for f in FIELDS])
    now = datetime.now(UTC)
    for f in FIELDS:
        key = f"rollout.{f}"
        if key not in old:
            continue
        for t in TRACKS:
            conn.execute(settings.insert().values(key=f"rollout.{t}.{f}", value=old[key], updated_at=now))
        conn.execute(settings.delete().where(settings.c.key == key))


def downgrade() -> None:
    conn = op.get_bind()
    per = _values(conn, [f"rollout.{t}.{f}" for t in TRACKS for f in FIELDS])
    now = datetime.now(UTC)
    for f in FIELDS:
        vals = [per[f"rollout.{t}.{f}"] for t in TRACKS if f"rollout.{t}.{f}" in per]
        if not vals:
            continue
        # one value for both tracks, the cautious one: on only if both are, the lower percent, latched if either
        if f == "use_domain":
            value = all(bool(v) for v in vals)
        elif f == "percent":
            value = min(int(v or 0) for v in vals)
        elif f == "latched":
            value = any(bool(v) for v in vals)
        else:
            value = next((v for v in vals if v not in (None, "")), vals[0])
        conn.execute(settings.insert().values(key=f"rollout.{f}", value=value, updated_at=now))
    conn.execute(settings.delete().where(settings.c.key.in_(list(per))))
    with op.batch_alter_table('rollout_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_rollout_reports_track_open')
    op.drop_table('rollout_reports')
