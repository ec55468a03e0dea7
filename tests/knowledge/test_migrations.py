"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from knowledge.sql.schema import metadata
from knowledge.sql.store import SqlKnowledgeStore


def test_migrated_schema_matches_the_declared_tables(store: SqlKnowledgeStore) -> None:
    """After upgrading to head there is no difference between the database and schema.py."""
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
