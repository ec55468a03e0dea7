"""observation rollups (downsampled history), and indexes for retention and for every query of a tick

Revision ID: 0008
Revises: 0010
Create Date: 2026-11-29 19:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import knowledge.sql.types

revision = "0008"
down_revision = "0010"  # chained after main's 0010 (both were written against 0005)
branch_labels = None
depends_on = None

# Indexes that match the WHERE and ORDER BY of the queries a tick makes (EXPLAIN QUERY PLAN showed full scans
# or sorts growing with the store's age without them).
INDEXES = (
    ("ix_incidents_model_status", "incidents", ["model", "status"]),
    ("ix_actions_model_id", "actions", ["model", "id"]),
    ("ix_actions_incident", "actions", ["incident_id"]),
    ("ix_actions_planned_at", "actions", ["planned_at"]),
    ("ix_decisions_incident", "decisions", ["incident_id"]),
    ("ix_controls_model_kind", "controls", ["model", "kind"]),
)


def upgrade() -> None:
    op.create_table(
        "observation_rollups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hour", knowledge.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_observation_rollups_model_metric_hour", "observation_rollups", ["model", "metric", "hour"], unique=False
    )
    op.create_index("ix_observation_rollups_hour", "observation_rollups", ["hour"], unique=False)
    op.create_index("ix_observations_model_at", "observations", ["model", "at"], unique=False)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_observations_model_at", table_name="observations")
    op.drop_index("ix_observation_rollups_hour", table_name="observation_rollups")
    op.drop_index("ix_observation_rollups_model_metric_hour", table_name="observation_rollups")
    op.drop_table("observation_rollups")
