"""the lease epoch of every action and alias move (fencing)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL is an operator's write (healctl holds no lease) or a row older than fencing.
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=True))
    with op.batch_alter_table("alias_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alias_history", schema=None) as batch_op:
        batch_op.drop_column("epoch")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_column("epoch")
