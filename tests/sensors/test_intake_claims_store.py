"""The batch rows behind exactly-once intake, on SQLite and PostgreSQL: a claim is recorded at most once,
and a second insert of it changes nothing and says which claim it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from knowledge.errors import StoreError
from knowledge.sql.store import SqlKnowledgeStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CLAIM = "ab" * 32 + "/day-1.csv"


def record(store: SqlKnowledgeStore, claim: str | None, model: str = "m") -> None:
    store.add_batch(
        model=model,
        received_at=T0,
        source="landing",
        path=f"/archive/{claim}",
        rows=5,
        labelled=True,
        fingerprint="f",
        claim=claim,
    )


def test_a_claim_is_recorded_once_per_model(store: SqlKnowledgeStore) -> None:
    """The second row for a claim is refused by name (in one transaction: nothing written); another model's
    claim of the same file, and rows without a claim, are independent."""
    record(store, CLAIM)
    with pytest.raises(StoreError, match=r"batch 'abab.*/day-1\.csv' of model 'm' is already recorded"):
        record(store, CLAIM)
    record(store, CLAIM, model="other")
    record(store, None)
    record(store, None)
    assert [b.claim for b in store.batches("m")] == [CLAIM, None, None]
    found = store.find_batch("m", CLAIM)
    assert found is not None and found.path == f"/archive/{CLAIM}" and found.rows == 5
    assert store.find_batch("m", "cd" * 32 + "/day-1.csv") is None
