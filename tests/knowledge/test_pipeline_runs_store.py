"""The knowledge store after migration 0002: its schema matches the metadata, and pipeline runs round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from knowledge.sql.schema import metadata
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import StageRun

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_migrating_an_empty_database_yields_exactly_the_schema(tmp_path: Path) -> None:
    """Alembic finds no difference between the migrated SQLite database and schema.py."""
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    assert diff == []


def test_a_pipeline_run_and_its_stages_are_stored_and_read_back(tmp_path: Path) -> None:
    """A run starts as running, its stage records are written and rewritten, and it finishes failed."""
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        run = store.add_pipeline_run(
            model="m", folder="/runs/m/1", trigger="init", actor="healctl", started_at=NOW, config={"a": 1}
        )
        assert run.status == "running" and run.stages == []
        store.record_stage(run.id, StageRun(stage="ingest", position=0, status="running"))
        store.record_stage(run.id, StageRun(stage="ingest", position=0, status="succeeded", seconds=1.5))
        store.record_stage(run.id, StageRun(stage="validate", position=1, status="failed", error="bad"))
        done = store.finish_pipeline_run(run.id, status="failed", at=NOW, failed_stage="validate", error="bad")
        assert [(s.stage, s.status) for s in done.stages] == [("ingest", "succeeded"), ("validate", "failed")]
        assert done.failed_stage == "validate" and done.finished_at == NOW
        again = store.add_pipeline_run(
            model="m",
            folder="/runs/m/2",
            trigger="rerun",
            actor="heald",
            started_at=NOW,
            config={},
            resumed_from=run.id,
        )
        assert [r.id for r in store.pipeline_runs("m")] == [run.id, again.id]
        assert store.pipeline_runs("m", status="failed")[0].id == run.id
        assert again.resumed_from == run.id
    finally:
        store.close()
