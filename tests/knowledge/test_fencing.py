"""Fencing, on SQLite and PostgreSQL alike: a write that acts carries the writer's lease epoch and is refused,
whole and in its own transaction, once another daemon holds a newer epoch; an operator's write (no epoch) is
not fenced."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from knowledge.errors import StaleEpochError
from knowledge.sql.store import ACTOR_LEASE, SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, Alias, ModelRecord, Task, Version

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = 60.0


def model(store: SqlKnowledgeStore, versions: int = 2) -> None:
    store.add_model(ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", features=["a"], created_at=T0))
    for number in range(1, versions + 1):
        store.add_version(
            Version(
                model="m",
                number=number,
                artifact=f"m/v{number}.skops",
                sha256="0" * 64,
                params={},
                metrics={},
                data_fingerprint="",
                reference="",
                profile={},
                health="healthy",
                created_by="test",
                created_at=T0,
            )
        )


def take_over(store: SqlKnowledgeStore) -> tuple[int, int]:
    """Daemon a takes the lease, dies, and b takes it over once it expired: (a's epoch, b's epoch)."""
    old = store.acquire_lease(ACTOR_LEASE, "a", at=T0, ttl_seconds=TTL)
    new = store.acquire_lease(ACTOR_LEASE, "b", at=T0 + timedelta(seconds=TTL + 1), ttl_seconds=TTL)
    assert old is not None and new is not None and new > old
    return old, new


def test_plan_action_with_a_stale_epoch_writes_nothing(store: SqlKnowledgeStore) -> None:
    """A stale epoch's plan is refused (naming the epoch and the holder) and leaves no action, no event."""
    model(store)
    old, new = take_over(store)
    with pytest.raises(StaleEpochError, match=f"lease epoch {old} is stale .* epoch {new} held by 'b'"):
        store.plan_action(model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="drift", epoch=old)
    assert store.actions() == []
    action = store.plan_action(model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="drift", epoch=new)
    assert action.epoch == new
    assert [e["state"] for e in store.action_events(action.id)] == ["planned"]


def test_move_alias_with_a_stale_epoch_leaves_alias_and_history_untouched(store: SqlKnowledgeStore) -> None:
    """A promotion under a stale epoch is refused: the champion, its history and the journal stay as they were."""
    model(store)
    old, new = take_over(store)
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="heald", reason="first", epoch=new)
    action = store.plan_action(model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="x", epoch=new)
    with pytest.raises(StaleEpochError, match="move champion of 'm' to v2"):
        store.move_alias("m", Alias.CHAMPION, 2, at=T0, actor="heald", reason="stale", action_id=action.id, epoch=old)
    assert store.alias("m", Alias.CHAMPION) == 1
    assert [(m.to_version, m.epoch) for m in store.alias_history("m")] == [(1, new)]
    assert [e["state"] for e in store.action_events(action.id)] == ["planned"]


def test_transitions_and_outcomes_with_a_stale_epoch_are_refused(store: SqlKnowledgeStore) -> None:
    """A stale leader can neither finish its action nor record an outcome; the new leader can."""
    model(store)
    old = store.acquire_lease(ACTOR_LEASE, "a", at=T0, ttl_seconds=TTL)
    action = store.plan_action(model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="x", epoch=old)
    store.transition_action(action.id, ActionState.RUNNING, at=T0, epoch=old)
    new = store.acquire_lease(ACTOR_LEASE, "b", at=T0 + timedelta(seconds=TTL + 1), ttl_seconds=TTL)
    with pytest.raises(StaleEpochError):
        store.transition_action(action.id, ActionState.SUCCEEDED, at=T0, epoch=old)
    with pytest.raises(StaleEpochError):
        store.set_outcome(action.id, "verified", at=T0, detail="late", epoch=old)
    kept = store.get_action(action.id)
    assert kept.state is ActionState.RUNNING and kept.outcome is None
    assert store.transition_action(action.id, ActionState.ABORTED, at=T0, epoch=new).state is ActionState.ABORTED


def test_an_operator_write_without_epoch_is_not_fenced(store: SqlKnowledgeStore) -> None:
    """healctl holds no lease: its writes (epoch None) go through whoever leads, and carry no epoch."""
    model(store)
    take_over(store)
    action = store.plan_action(model="m", kind=ActionKind.ROLLBACK, at=T0, actor="healctl", reason="operator")
    store.move_alias("m", Alias.CHAMPION, 2, at=T0, actor="healctl", reason="operator", action_id=action.id)
    store.transition_action(action.id, ActionState.SUCCEEDED, at=T0)
    assert store.alias("m", Alias.CHAMPION) == 2 and action.epoch is None
    assert store.alias_history("m")[-1].epoch is None


def test_a_write_racing_a_takeover_is_refused_when_the_takeover_commits_first(store: SqlKnowledgeStore) -> None:
    """The epoch is checked in the write's own transaction: a plan that waits on a takeover in progress is
    refused once the takeover commits (a check before the transaction would have let it through)."""
    model(store)
    old = store.acquire_lease(ACTOR_LEASE, "a", at=T0, ttl_seconds=TTL)
    outcome: list[BaseException | None] = []

    def plan() -> None:
        try:
            store.plan_action(model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="race", epoch=old)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread, which asserts on it
            outcome.append(exc)

    with store.engine.connect() as takeover:
        # The new holder's transaction holds the write lock (SQLite) / the lease row (PostgreSQL) ...
        if store.engine.dialect.name == "sqlite":
            takeover.exec_driver_sql("BEGIN IMMEDIATE")
        takeover.execute(text("UPDATE leases SET epoch = epoch + 1, holder = 'b' WHERE name = :n"), {"n": ACTOR_LEASE})
        writer = threading.Thread(target=plan)
        writer.start()
        writer.join(timeout=0.5)  # ... so the stale writer waits for it, inside its own transaction
        takeover.commit()
    writer.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], StaleEpochError)
    assert store.actions() == []
