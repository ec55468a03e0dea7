"""Alembic environment: migrations run on the connection heald hands over, never on a URL of their own."""

from alembic import context

from knowledge.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("heald runs migrations through knowledge.sql.engine.migrate(), with a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
