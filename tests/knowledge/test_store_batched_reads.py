"""The batched reads the status and the dashboard use: one statement for all models gives what the per-model
reads give, on SQLite and PostgreSQL alike, and on SQLite each statement seeks down the (model, metric, at)
index instead of walking or sorting a model's whole history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, Alias, ModelRecord, Observation, Task, Version

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODELS = ("a", "b", "c", "quiet")  # "quiet" has no readings, no alias and no action
METRICS = ("performance", "drift_share", "artifact_ok")


def fill(store: SqlKnowledgeStore) -> None:
    """Readings of three metrics for three models, with ties in time, a champion each and a few actions."""
    for name in MODELS:
        store.add_model(ModelRecord(name=name, task=Task.CLASSIFICATION, target="y", created_at=T0))
    rows = []
    for m, name in enumerate(MODELS[:3]):
        for minute in range(50 + 10 * m):
            at = T0 + timedelta(minutes=minute)
            rows.append(Observation(at=at, model=name, source="s", metric="artifact_ok", value=1.0, evidence={}))
            if minute % 7 == 0:
                # Two readings at the same instant: the later one written (higher id) is the newest.
                for k in range(2):
                    rows.append(
                        Observation(
                            at=at,
                            model=name,
                            source="s",
                            metric="performance",
                            value=minute + k / 10,
                            evidence={"k": k},
                        )
                    )
        if name != "c":
            rows.append(
                Observation(
                    at=T0, model=name, source="s", metric="drift_share", value=0.1, evidence={"drifted": [name]}
                )
            )
    store.add_observations(rows)
    for name in MODELS[:3]:
        for number in (1, 2):
            store.add_version(
                Version(model=name, number=number, artifact=f"{name}/v{number}", sha256="0" * 64, created_at=T0)
            )
            store.move_alias(name, Alias.CHAMPION, number, at=T0, actor="t", reason="test")
        store.move_alias(name, Alias.STABLE, 1, at=T0, actor="t", reason="test")
    for name in MODELS[:3]:
        for kind in (ActionKind.RETRAIN, ActionKind.ROLLBACK):
            action = store.plan_action(model=name, kind=kind, at=T0, actor="t", reason="test")
            store.transition_action(action.id, ActionState.RUNNING, at=T0)


def test_latest_observations_equal_the_per_model_newest_reading(store: SqlKnowledgeStore) -> None:
    """Each (model, metric) maps to exactly the reading observations(limit=1) returns, ties broken by id; a
    pair without readings is absent; naming models restricts the answer to them."""
    fill(store)
    latest = store.latest_observations(METRICS)
    expected = {}
    for name in MODELS:
        for metric in METRICS:
            newest = store.observations(name, metric=metric, limit=1)
            if newest:
                expected[(name, metric)] = newest[0]
    assert latest == expected
    assert ("quiet", "performance") not in latest and ("c", "drift_share") not in latest
    assert latest[("b", "performance")].evidence == {"k": 1}
    assert set(store.latest_observations(["performance"], models=["a"])) == {("a", "performance")}


def test_recent_series_equal_the_per_model_newest_readings(store: SqlKnowledgeStore) -> None:
    """recent_series gives each model the (time, value) of its newest ``limit`` readings, oldest first, as
    observations(limit=...) does; a model without readings gets an empty list."""
    fill(store)
    series = store.recent_series(list(MODELS), "performance", limit=5)
    for name in MODELS:
        assert series[name] == [(o.at, o.value) for o in store.observations(name, metric="performance", limit=5)]
    assert len(series["a"]) == 5 and series["quiet"] == []
    whole = store.recent_series(["c"], "artifact_ok", limit=1000)["c"]
    assert whole == [(o.at, o.value) for o in store.observations("c", metric="artifact_ok")]


def test_all_aliases_and_last_actions_equal_the_per_model_reads(store: SqlKnowledgeStore) -> None:
    """all_aliases gives each model its aliases(model); last_actions its newest action, actions(limit=1)."""
    fill(store)
    aliases = store.all_aliases()
    assert {name: store.aliases(name) for name in MODELS if store.aliases(name)} == aliases
    assert aliases["a"] == {Alias.CHAMPION: 2, Alias.STABLE: 1}
    last = store.last_actions()
    assert last == {name: store.actions(model=name, limit=1)[-1] for name in MODELS[:3]}
    assert last["b"].kind is ActionKind.ROLLBACK


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Iterator[SqlKnowledgeStore]:
    opened = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'heald.db'}")
    yield opened
    opened.close()


def test_sqlite_plans_seek_the_index_and_never_sort_a_history(sqlite_store: SqlKnowledgeStore) -> None:
    """EXPLAIN QUERY PLAN of the statements latest_observations and recent_series run: observations are reached
    through the (model, metric, at) index or by id, never by a full scan and never through a temporary sort."""
    fill(sqlite_store)
    sqlite_store.engine.dispose()
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "observations" in statement:
            seen.append((statement, parameters))

    event.listen(sqlite_store.engine, "before_cursor_execute", record)
    sqlite_store.latest_observations(METRICS)
    sqlite_store.recent_series(list(MODELS), "performance", limit=5)
    event.remove(sqlite_store.engine, "before_cursor_execute", record)
    assert len(seen) == 2  # one statement each
    with sqlite_store.engine.connect() as c:
        for statement, parameters in seen:
            plan = [row[-1] for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()]
            reads = [p for p in plan if " observations " in f"{p} " or " newest " in f"{p} "]
            assert reads and all(p.startswith("SEARCH") for p in reads), plan
            assert any("ix_observations_model_metric_at (model=? AND metric=?)" in p for p in reads), plan
            assert not any("TEMP B-TREE" in p for p in plan), plan
