"""Pipeline runs and their stages in the knowledge store (migration 0002), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import StageRun

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_pipeline_run_and_its_stages_are_stored_and_read_back(store: SqlKnowledgeStore) -> None:
    """A run starts as running, its stage records are written and rewritten, it finishes failed, and a
    rerun points back at it."""
    run = store.add_pipeline_run(
        model="m", folder="/runs/m/1", trigger="init", actor="healctl", started_at=NOW, config={"a": 1}
    )
    assert run.status == "running" and run.stages == []
    store.record_stage(run.id, StageRun(stage="ingest", position=0, status="running"))
    store.record_stage(run.id, StageRun(stage="ingest", position=0, status="succeeded", seconds=1.5))
    store.record_stage(run.id, StageRun(stage="validate", position=1, status="failed", error="bad"))
    done = store.finish_pipeline_run(run.id, status="failed", at=NOW, failed_stage="validate", error="bad")
    assert [(s.stage, s.status) for s in done.stages] == [("ingest", "succeeded"), ("validate", "failed")]
    assert done.failed_stage == "validate" and done.finished_at == NOW and done.stages[0].seconds == 1.5
    again = store.add_pipeline_run(
        model="m", folder="/runs/m/2", trigger="rerun", actor="heald", started_at=NOW, config={}, resumed_from=run.id
    )
    assert [r.id for r in store.pipeline_runs("m")] == [run.id, again.id]
    assert store.pipeline_runs("m", status="failed")[0].id == run.id
    assert again.resumed_from == run.id
