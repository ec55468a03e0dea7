"""source state: the watermark, pending page, counts and back-off of each pulled stream (sql and http sources)

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29 19:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import knowledge.sql.types

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_state",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("watermark", sa.JSON(), nullable=True),
        sa.Column("seen", sa.JSON(), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("last_pull_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("retry_at", knowledge.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("model", "stream"),
    )


def downgrade() -> None:
    op.drop_table("source_state")
