"""The knowledge store contract: every behaviour here must hold on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knowledge.errors import NotFoundError, StoreError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import (
    ActionKind,
    ActionState,
    Alias,
    Decision,
    IncidentStatus,
    ModelRecord,
    Observation,
    Severity,
    Symptom,
    SymptomKind,
    Task,
    Version,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_model(store: SqlKnowledgeStore, name: str = "m") -> ModelRecord:
    return store.add_model(
        ModelRecord(name=name, task=Task.CLASSIFICATION, target="y", features=["a", "b"], created_at=T0)
    )


def add_version(store: SqlKnowledgeStore, number: int, model: str = "m") -> Version:
    return store.add_version(
        Version(
            model=model,
            number=number,
            artifact=f"{model}/v{number}.skops",
            sha256="0" * 64,
            created_at=T0,
            metrics={"accuracy": 0.9},
        )
    )


def symptom(kind: SymptomKind = SymptomKind.DATA_DRIFT, at: datetime = T0) -> Symptom:
    return Symptom(
        at=at, model="m", kind=kind, severity=Severity.WARNING, score=0.5, summary="a drifted", evidence={"x": [1]}
    )


def test_models_round_trip_and_duplicates_are_refused(store: SqlKnowledgeStore) -> None:
    """A model reads back as written; a second model of the same name is a clear StoreError."""
    add_model(store)
    got = store.get_model("m")
    assert got.features == ["a", "b"] and got.task is Task.CLASSIFICATION
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    with pytest.raises(StoreError, match="already exists"):
        add_model(store)
    with pytest.raises(NotFoundError, match="no model named 'zz'"):
        store.get_model("zz")


def test_version_numbers_are_unique_per_model(store: SqlKnowledgeStore) -> None:
    """Versions count up per model and a duplicate number is refused."""
    add_model(store)
    assert store.next_version_number("m") == 1
    add_version(store, 1)
    assert store.next_version_number("m") == 2
    with pytest.raises(StoreError, match="version 1 of model 'm' already exists"):
        add_version(store, 1)
    assert store.get_version("m", 1).metrics == {"accuracy": 0.9}


def test_alias_moves_keep_a_consistent_history(store: SqlKnowledgeStore) -> None:
    """Every move is recorded with its actor and reason, and each move starts where the last ended."""
    add_model(store)
    for n in (1, 2, 3):
        add_version(store, n)
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="op", reason="first")
    store.move_alias("m", Alias.CHAMPION, 2, at=T0 + timedelta(minutes=1), actor="heald", reason="retrain")
    store.move_alias("m", Alias.CHAMPION, 1, at=T0 + timedelta(minutes=2), actor="heald", reason="rollback")
    history = store.alias_history("m", Alias.CHAMPION)
    assert [(h.from_version, h.to_version) for h in history] == [(None, 1), (1, 2), (2, 1)]
    assert [h.actor for h in history] == ["op", "heald", "heald"]
    assert store.alias("m", Alias.CHAMPION) == 1


def test_conditional_alias_move_refuses_a_stale_view(store: SqlKnowledgeStore) -> None:
    """A move that expects the alias elsewhere changes nothing: two actors cannot both promote."""
    add_model(store)
    for n in (1, 2, 3):
        add_version(store, n)
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="a", reason="r")
    store.move_alias("m", Alias.CHAMPION, 2, at=T0, actor="a", reason="r", expect_from=1)
    with pytest.raises(StoreError, match="moved by someone else"):
        store.move_alias("m", Alias.CHAMPION, 3, at=T0, actor="b", reason="r", expect_from=1)
    assert store.alias("m", Alias.CHAMPION) == 2
    assert len(store.alias_history("m")) == 2


def test_alias_to_a_missing_version_is_refused(store: SqlKnowledgeStore) -> None:
    """An alias can only point at a version that exists."""
    add_model(store)
    with pytest.raises(NotFoundError, match="no version 7"):
        store.move_alias("m", Alias.CHAMPION, 7, at=T0, actor="a", reason="r")
    assert store.aliases("m") == {}


def test_a_versions_profile_is_parsed_once_and_always_what_the_row_holds(store: SqlKnowledgeStore) -> None:
    """Reading a version again reuses the parsed profile (no JSON parse per tick); a profile written since, by this
    store or another one on the same database, is read anew; versions of one model never share a profile."""
    add_model(store)
    add_version(store, 1)
    add_version(store, 2)
    store.update_version_profile("m", 1, {"columns": {"a": {"kind": "numeric", "mean": 1.5}}})
    first = store.get_version("m", 1).profile
    assert first == {"columns": {"a": {"kind": "numeric", "mean": 1.5}}}
    assert store.get_version("m", 1).profile is first
    assert store.get_version("m", 2).profile == {}
    other = SqlKnowledgeStore(store.engine)  # a second daemon's store on the same database
    other.update_version_profile("m", 1, {"columns": {"a": {"kind": "numeric", "mean": 2.5}}})
    assert store.get_version("m", 1).profile == {"columns": {"a": {"kind": "numeric", "mean": 2.5}}}
    assert [v.profile for v in store.list_versions("m")] == [{"columns": {"a": {"kind": "numeric", "mean": 2.5}}}, {}]


def test_rolled_back_mark_is_written_with_the_move(store: SqlKnowledgeStore) -> None:
    """A rollback marks the version it left in the same transaction as the move."""
    add_model(store)
    add_version(store, 1)
    add_version(store, 2)
    store.move_alias("m", Alias.CHAMPION, 2, at=T0, actor="a", reason="r")
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="heald", reason="bad file", rolled_back=2)
    assert store.get_version("m", 2).rolled_back_at == T0
    assert store.get_version("m", 1).rolled_back_at is None


def test_observations_come_back_newest_window_oldest_first(store: SqlKnowledgeStore) -> None:
    """Observations filter by metric and time and keep their evidence."""
    rows = [
        Observation(at=T0 + timedelta(hours=i), model="m", source="s", metric="acc", value=i / 10, evidence={"i": i})
        for i in range(5)
    ]
    assert store.add_observations(rows) == 5
    store.add_observations([Observation(at=T0, model="m", source="s", metric="other", value=1.0)])
    got = store.observations("m", metric="acc", limit=3)
    assert [o.evidence["i"] for o in got] == [2, 3, 4]
    assert store.observations("m", metric="acc", since=T0 + timedelta(hours=4))[0].value == pytest.approx(0.4)


def test_recent_observations_of_several_metrics_are_each_metrics_newest(store: SqlKnowledgeStore) -> None:
    """One read of several metrics gives, per metric, what ``observations(model, metric=m, limit=n)`` gives: the
    newest n oldest first, ties at one instant in insertion order, other models' and metrics' rows left out."""
    for i in range(6):
        at = T0 + timedelta(minutes=i // 2)  # two readings share each instant
        store.add_observations(
            [
                Observation(at=at, model="m", source="s", metric=metric, value=float(i), evidence={"i": i})
                for metric in ("acc", "drift", "noise")
            ]
            + [Observation(at=at, model="other", source="s", metric="acc", value=-1.0)]
        )
    got = store.recent_observations("m", ["acc", "drift", "absent"], limit=4)
    assert set(got) == {"acc", "drift", "absent"}
    for metric in ("acc", "drift"):
        assert got[metric] == store.observations("m", metric=metric, limit=4)
        assert [o.evidence["i"] for o in got[metric]] == [2, 3, 4, 5]
    assert got["absent"] == [] and store.recent_observations("m", [], limit=4) == {}


def test_incident_lifecycle_and_listing(store: SqlKnowledgeStore) -> None:
    """An incident opens from a symptom, keeps its symptoms, and leaves the active list when resolved."""
    opened = store.open_incident(symptom())
    assert opened.status is IncidentStatus.OPEN and opened.kind is SymptomKind.DATA_DRIFT
    store.add_symptom(symptom(at=T0 + timedelta(hours=1)), opened.id)
    assert len(store.symptoms(opened.id)) == 2
    assert [i.id for i in store.active_incidents("m")] == [opened.id]
    store.update_incident(opened.id, status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(hours=2))
    assert store.active_incidents("m") == []
    assert store.list_incidents(status=["resolved"])[0].resolved_at == T0 + timedelta(hours=2)
    with pytest.raises(ValueError, match="cannot change incident fields"):
        store.update_incident(opened.id, model="other")


def test_a_second_open_of_an_active_incident_joins_the_first(store: SqlKnowledgeStore) -> None:
    """Two daemons opening the same model's incident of one kind in the same instant leave one active incident
    with both symptoms; once it resolved, the next symptom opens a new one."""
    first = store.open_incident(symptom())
    second = store.open_incident(symptom(at=T0 + timedelta(seconds=1)))
    assert second.id == first.id
    assert [i.id for i in store.active_incidents("m")] == [first.id]
    assert len(store.symptoms(first.id)) == 2
    other_kind = store.open_incident(symptom(kind=SymptomKind.PERFORMANCE_DROP))
    assert other_kind.id != first.id
    store.update_incident(first.id, status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(hours=1))
    again = store.open_incident(symptom(at=T0 + timedelta(hours=2)))
    assert again.id not in (first.id, other_kind.id) and again.status is IncidentStatus.OPEN


def test_action_journal_records_every_state_and_refuses_to_reopen(store: SqlKnowledgeStore) -> None:
    """An action is journaled as planned, then running, then finished; a finished action never moves again."""
    incident = store.open_incident(symptom())
    action = store.plan_action(
        model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="drift", incident_id=incident.id
    )
    assert action.state is ActionState.PLANNED
    store.transition_action(action.id, ActionState.RUNNING, at=T0 + timedelta(seconds=1))
    done = store.transition_action(
        action.id, ActionState.SUCCEEDED, at=T0 + timedelta(seconds=9), result={"version": 2}
    )
    assert done.result == {"version": 2} and done.started_at is not None and done.finished_at is not None
    assert [e["state"] for e in store.action_events(action.id)] == ["planned", "running", "succeeded"]
    with pytest.raises(StoreError, match="already succeeded"):
        store.transition_action(action.id, ActionState.RUNNING, at=T0)
    assert [a.id for a in store.actions(incident_id=incident.id, states=[ActionState.SUCCEEDED])] == [action.id]


def test_decisions_keep_their_candidates(store: SqlKnowledgeStore) -> None:
    """A decision reads back with every candidate the planner weighed."""
    incident = store.open_incident(symptom())
    store.add_decision(
        Decision(
            at=T0,
            model="m",
            incident_id=incident.id,
            candidates=[{"kind": "retrain", "cost": 70.0, "feasible": True}],
            chosen="retrain",
            reason="cheapest",
        )
    )
    (decision,) = store.decisions(incident_id=incident.id)
    assert decision.candidates[0]["kind"] == "retrain" and decision.chosen == "retrain"


def test_batches_and_silences(store: SqlKnowledgeStore) -> None:
    """Batches filter by label and status; a silence covers its kind until it expires."""
    store.add_batch(model="m", received_at=T0, source="landing", path="/a", rows=10, labelled=True, fingerprint="f")
    store.add_batch(
        model="m",
        received_at=T0,
        source="landing",
        path="/b",
        rows=0,
        labelled=False,
        fingerprint="",
        status="quarantined",
        reason="empty file",
    )
    assert [b.path for b in store.batches("m", labelled=True)] == ["/a"]
    assert [b.reason for b in store.batches("m", status="quarantined")] == ["empty file"]
    store.add_control(
        model="m",
        kind="silence",
        at=T0,
        actor="op",
        reason="known",
        symptom=SymptomKind.DATA_DRIFT,
        until=T0 + timedelta(hours=1),
    )
    assert store.silenced("m", SymptomKind.DATA_DRIFT, T0 + timedelta(minutes=30))
    assert not store.silenced("m", SymptomKind.PERFORMANCE_DROP, T0 + timedelta(minutes=30))
    assert not store.silenced("m", SymptomKind.DATA_DRIFT, T0 + timedelta(hours=2))


def test_lease_has_one_holder_until_it_expires(store: SqlKnowledgeStore) -> None:
    """Only one holder at a time; another takes over (with a new epoch) once the lease is stale."""
    assert store.acquire_lease("leader", "a", at=T0, ttl_seconds=30) == 1
    assert store.acquire_lease("leader", "b", at=T0 + timedelta(seconds=10), ttl_seconds=30) is None
    assert store.acquire_lease("leader", "a", at=T0 + timedelta(seconds=20), ttl_seconds=30) == 1
    assert store.acquire_lease("leader", "b", at=T0 + timedelta(seconds=60), ttl_seconds=30) == 2


def test_reopening_a_store_keeps_everything(store: SqlKnowledgeStore) -> None:
    """Opening the same database again (as a restart does) migrates nothing away."""
    add_model(store)
    again = SqlKnowledgeStore.open(store.engine.url.render_as_string(hide_password=False))
    try:
        assert again.get_model("m").name == "m"
    finally:
        again.close()
