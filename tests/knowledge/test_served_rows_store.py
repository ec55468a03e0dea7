"""The store's served rows (what late labels join) and column mappings, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knowledge.errors import NotFoundError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ServedRow

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def served(store: SqlKnowledgeStore, n: int, at: datetime = T0, model: str = "m") -> list[str]:
    ids = [f"{model}-{i:04d}" for i in range(n)]
    store.add_served_rows(
        [
            ServedRow(model=model, request_id=i, served_at=at, row={"a": k, "c": "red"}, version=1)
            for k, i in enumerate(ids)
        ]
    )
    return ids


def test_labels_join_served_rows_and_unknown_ids_are_named(store: SqlKnowledgeStore) -> None:
    """Known ids take their label (and are pending for a feedback batch); unknown ones are returned."""
    ids = served(store, 3)
    assert store.label_served("m", {ids[0]: "yes", "ghost": "no"}, T0) == ["ghost"]
    [pending] = store.unflushed_served(labels=True)
    assert (pending.request_id, pending.label, pending.row) == (ids[0], "yes", {"a": 0, "c": "red"})
    assert len(store.unflushed_served(labels=False)) == 3


def test_flushing_marks_rows_and_relabelling_makes_them_pending_again(store: SqlKnowledgeStore) -> None:
    """A flushed label is not pending; a different label is, the same label is not."""
    ids = served(store, 2)
    store.label_served("m", dict.fromkeys(ids, 0), T0)
    store.mark_flushed("m", ids, labels=True)
    store.mark_flushed("m", ids, labels=False)
    assert store.unflushed_served(labels=True) == [] and store.unflushed_served(labels=False) == []
    store.label_served("m", {ids[0]: 0}, T0 + timedelta(hours=1))
    assert store.unflushed_served(labels=True) == []
    store.label_served("m", {ids[0]: 1}, T0 + timedelta(hours=1))
    assert [(r.request_id, r.label) for r in store.unflushed_served(labels=True)] == [(ids[0], 1)]


def test_pruning_forgets_only_old_rows_that_were_written_out(store: SqlKnowledgeStore) -> None:
    """Old written-out rows go; old rows not yet written out, and recent ones, stay."""
    old = served(store, 2, at=T0, model="m")
    recent = served(store, 1, at=T0 + timedelta(days=40), model="n")
    store.mark_flushed("m", old[:1], labels=False)
    assert store.prune_served(before=T0 + timedelta(days=30)) == 1
    assert store.served_count("m") == 1 and store.served_count("n") == len(recent)


def test_many_labels_in_one_call(store: SqlKnowledgeStore) -> None:
    """More ids than one IN list holds are looked up and labelled in one call."""
    ids = served(store, 1200)
    assert store.label_served("m", dict.fromkeys(ids, 1), T0) == []
    assert len(store.unflushed_served(labels=True)) == 1200


def test_mappings_are_journaled_replaced_and_reversible(store: SqlKnowledgeStore) -> None:
    """A mapping is active until removed; a new mapping of the same column replaces it; both are controls."""
    store.add_mapping(model="m", new="visit_count", old="visits", at=T0, actor="op", reason="renamed upstream")
    assert store.column_mappings("m") == {"visit_count": "visits"}
    store.add_mapping(model="m", new="visit_count", old="calls", at=T0, actor="op", reason="no, calls")
    assert store.column_mappings("m") == {"visit_count": "calls"}
    removed = store.remove_mapping(model="m", new="visit_count", at=T0, actor="op", reason="undo")
    assert removed.old == "calls" and store.column_mappings("m") == {}
    assert [m.removed_at is not None for m in store.mapping_history("m")] == [True, True]
    assert store.last_control("m", "map") == T0 and store.last_control("m", "unmap") == T0
    with pytest.raises(NotFoundError, match="no active mapping of column 'visit_count'"):
        store.remove_mapping(model="m", new="visit_count", at=T0, actor="op", reason="again")


def test_rows_written_with_a_label_keep_it_beside_unlabelled_ones(store: SqlKnowledgeStore) -> None:
    """One write may mix rows that carry a label with rows that do not (the insert leaves an absent label NULL
    only when no row has one): the labelled row is pending for a feedback batch with its label, the other is not,
    and both are pending for an api batch."""
    store.add_served_rows(
        [
            ServedRow(model="m", request_id="with", served_at=T0, row={"a": 1}, label="yes", labelled_at=T0),
            ServedRow(model="m", request_id="without", served_at=T0, row={"a": 2}),
        ]
    )
    [pending] = store.unflushed_served(labels=True)
    assert (pending.request_id, pending.label, pending.labelled_at) == ("with", "yes", T0)
    rows = {r.request_id: r for r in store.unflushed_served(labels=False)}
    assert set(rows) == {"with", "without"} and rows["without"].label is None and rows["without"].labelled_at is None
