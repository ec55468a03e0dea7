"""The SQL side of the knowledge store: schema, migrations and the store itself.

This subpackage is heald's only door to SQLAlchemy and Alembic; the rest of heald sees value objects.
"""

from knowledge.sql.store import SqlKnowledgeStore

__all__ = ["SqlKnowledgeStore"]
