"""served rows kept for late labels, and accepted column mappings

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import knowledge.sql.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_rows",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("served_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("flushed", sa.Boolean(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("labelled_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("label_flushed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("model", "request_id"),
    )
    with op.batch_alter_table("served_rows", schema=None) as batch_op:
        batch_op.create_index("ix_served_rows_served_at", ["model", "served_at"], unique=False)

    op.create_table(
        "column_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("new", sa.String(length=256), nullable=False),
        sa.Column("old", sa.String(length=256), nullable=False),
        sa.Column("accepted_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("removed_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("column_mappings", schema=None) as batch_op:
        batch_op.create_index("ix_column_mappings_model", ["model"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("column_mappings", schema=None) as batch_op:
        batch_op.drop_index("ix_column_mappings_model")
    op.drop_table("column_mappings")
    with op.batch_alter_table("served_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_served_rows_served_at")
    op.drop_table("served_rows")
