"""batch claims: a landing file's identity (content hash and name), unique per model

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim", sa.String(length=320), nullable=True))
        batch_op.create_unique_constraint("uq_batches_model_claim", ["model", "claim"])


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_constraint("uq_batches_model_claim", type_="unique")
        batch_op.drop_column("claim")
