"""Host-scope incidents count one reading per tick: a busy machine seen by every model is one incident with one
symptom per tick, and a healthy host resolves after ``resolve_after`` ticks whatever the number of models."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.incidents import IncidentTracker
from daemon.rules import HOST
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import IncidentStatus, ModelRecord, Severity, Symptom, SymptomKind, Task

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TICK = timedelta(seconds=60)


def busy(at: datetime, model: str) -> Symptom:
    return Symptom(
        at=at,
        model=model,
        kind=SymptomKind.HOST_PRESSURE,
        severity=Severity.WARNING,
        score=1.0,
        summary="load_per_cpu 9.0 >= 4",
        evidence={"over": ["load_per_cpu 9.0 >= 4"]},
    )


@pytest.mark.parametrize("models", [1, 5])
def test_a_healthy_host_resolves_after_the_same_ticks_whatever_the_number_of_models(
    tmp_path: Path, models: int
) -> None:
    """Every model reports the same host reading each tick; the incident gets one symptom per tick and resolves on
    the ``resolve_after``-th healthy tick, not sooner with more models."""
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'heald.db'}")
    names = [f"m{i}" for i in range(models)]
    records = [ModelRecord(name=n, task=Task.CLASSIFICATION, target="y", created_at=T0) for n in names]
    tracker = IncidentTracker(store, resolve_after=3)
    for tick in range(2):
        at = T0 + tick * TICK
        for record in records:
            tracker.apply(record, {SymptomKind.HOST_PRESSURE: busy(at, record.name)}, at)
    [incident] = store.list_incidents(model=HOST)
    assert len(store.symptoms(incident.id)) == 2
    resolved_at = []
    for tick in range(2, 8):
        at = T0 + tick * TICK
        for record in records:
            changes = tracker.apply(record, {SymptomKind.HOST_PRESSURE: None}, at)
            resolved_at += [tick for _ in changes.resolved]
    assert resolved_at == [4]  # healthy on ticks 2, 3 and 4
    assert store.get_incident(incident.id).status is IncidentStatus.RESOLVED
    store.close()


def test_a_followers_healthy_readings_do_not_resolve(tmp_path: Path) -> None:
    """Two daemons share a store: only the acting one counts healthy readings, so the follower's ticks never
    make an incident resolve sooner; the acting daemon's ``resolve_after`` readings do."""
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'heald.db'}")
    record = ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", created_at=T0)
    leader, follower = IncidentTracker(store, resolve_after=2), IncidentTracker(store, resolve_after=2)
    drift = Symptom(at=T0, model="m", kind=SymptomKind.DATA_DRIFT, severity=Severity.WARNING, score=1.0, summary="d")
    opened = leader.apply(record, {SymptomKind.DATA_DRIFT: drift}, T0).opened
    follower.apply(record, {SymptomKind.DATA_DRIFT: replace(drift, at=T0 + TICK / 2)}, T0 + TICK / 2)
    [incident] = store.list_incidents(model="m")
    assert [i.id for i in opened] == [incident.id]
    for tick in range(1, 4):
        at = T0 + tick * TICK
        assert not follower.apply(record, {SymptomKind.DATA_DRIFT: None}, at + TICK / 2, counting=False).resolved
    assert store.get_incident(incident.id).status is IncidentStatus.OPEN
    leader.apply(record, {SymptomKind.DATA_DRIFT: None}, T0 + 5 * TICK)
    assert leader.apply(record, {SymptomKind.DATA_DRIFT: None}, T0 + 6 * TICK).resolved
    store.close()
