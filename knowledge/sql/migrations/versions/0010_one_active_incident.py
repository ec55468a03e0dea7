"""at most one active incident per model and kind, enforced by the database

Two daemons on one store both monitor: without this, each could open the same incident in the same instant.
Duplicates an older store may already hold are closed first (the oldest stays open; the others resolve at
their last update, their symptoms kept).

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-29 19:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status <> 'resolved'")


def upgrade() -> None:
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.Integer),
        sa.column("model", sa.String),
        sa.column("kind", sa.String),
        sa.column("status", sa.String),
        sa.column("updated_at", sa.DateTime),
        sa.column("resolved_at", sa.DateTime),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(incidents.c.id, incidents.c.model, incidents.c.kind)
        .where(incidents.c.status != "resolved")
        .order_by(incidents.c.id)
    ).all()
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.model, row.kind)
        if key in seen:
            bind.execute(
                incidents.update()
                .where(incidents.c.id == row.id)
                .values(status="resolved", resolved_at=incidents.c.updated_at)
            )
        seen.add(key)
    op.create_index(
        "uq_incidents_active",
        "incidents",
        ["model", "kind"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_incidents_active", table_name="incidents")
