"""station ownership: cameras, rules, alert events, audit, reports, evidence and rollups belong to a station

Revision ID: 0011_station_ownership
Revises: 0010_stations

Every owned table gains a nullable ``station_id`` (a station's id from the ``stations``
registry). Rows an existing database holds keep NULL: "no station yet". The first station
that opens the database takes them over (``app/store/ownership.py``), so a SQLite station (a
fleet of one) loses nothing and sees everything it saw. A rule with no station is fleet-wide:
every station evaluates it on its own cameras (the default rules are seeded that way).

Settings split in two: keys under ``fleet.`` (and the markers of fleet-wide seeding) stay in
``settings``, shared by the fleet; every other key is a station's own, in ``station_settings``.
The rollups' unique key gains the station, so two stations' minutes never replace each other.
The registry gains each station's API address (``edge-station fleet targets``).
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_station_ownership'
down_revision = '0010_stations'
branch_labels = None
depends_on = None

OWNED = ('cameras', 'alert_rules', 'alert_events', 'audit_log', 'rollout_reports', 'evidence')


def upgrade() -> None:
    for table in OWNED:
        op.add_column(table, sa.Column('station_id', sa.String(length=36), nullable=True))
        op.create_index(f'ix_{table}_station_id', table, ['station_id'])
    with op.batch_alter_table('metric_rollups') as batch:
        batch.add_column(sa.Column('station_id', sa.String(length=36), nullable=True))
        batch.drop_constraint('uq_rollup_series_minute', type_='unique')
        batch.create_unique_constraint('uq_rollup_series_minute', ['station_id', 'series', 'labels', 'minute'])
    # where each station's control API answers (its heartbeat writes it): `edge-station fleet targets`
    op.add_column('stations', sa.Column('api_address', sa.String(length=255), nullable=False, server_default=''))
    op.create_table('station_settings',
    sa.Column('station_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('station_id', 'key')
    )


def downgrade() -> None:
    # A station's own settings go back to the shared table (the first station's win a clash).
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT station_id, key, value, updated_at FROM station_settings "
                                "ORDER BY station_id")).fetchall()
    taken = {r[0] for r in conn.execute(sa.text("SELECT key FROM settings"))}
    for _sid, key, value, updated_at in rows:
        if key not in taken:
            conn.execute(sa.text("INSERT INTO settings (key, value, updated_at) VALUES (:k, :v, :u)"),
                         {"k": key, "v": value, "u": updated_at})
            taken.add(key)
    op.drop_table('station_settings')
    op.drop_column('stations', 'api_address')
    with op.batch_alter_table('metric_rollups') as batch:
        batch.drop_constraint('uq_rollup_series_minute', type_='unique')
        batch.create_unique_constraint('uq_rollup_series_minute', ['series', 'labels', 'minute'])
        batch.drop_column('station_id')
    for table in reversed(OWNED):
        op.drop_index(f'ix_{table}_station_id', table_name=table)
        op.drop_column(table, 'station_id')
