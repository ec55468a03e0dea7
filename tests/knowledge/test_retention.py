"""Retention keeps the store bounded without losing what heald may still read, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge.errors import StaleEpochError
from knowledge.retention import Removed, RetentionPolicy, collect_garbage, keep_from
from knowledge.sql import schema as t
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, Alias, BatchStatus, ModelRecord, Observation, Task, Version

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICY = RetentionPolicy(raw_days=7, horizon_days=30, batch_days=10, keep_labelled_rows=100)


def add_model(store: SqlKnowledgeStore, name: str = "m") -> None:
    store.add_model(ModelRecord(name=name, task=Task.CLASSIFICATION, target="y", features=["a"], created_at=T0))


def observe(store: SqlKnowledgeStore, *, days: float, every: timedelta, model: str = "m") -> list[Observation]:
    """Readings of two metrics every ``every`` for ``days`` from T0; the value counts up so means are known."""
    steps = int(timedelta(days=days) / every)
    rows = [
        Observation(at=T0 + i * every, model=model, source="s", metric=metric, value=float(i), evidence={"i": i})
        for i in range(steps)
        for metric in ("drift_share", "performance")
    ]
    store.add_observations(rows)
    return rows


def version(store: SqlKnowledgeStore, number: int, *, at: datetime, created_by: str = "operator") -> Version:
    return store.add_version(
        Version(
            model="m", number=number, artifact=f"m/v{number}", sha256="0" * 64, created_at=at, created_by=created_by
        )
    )


def batch(store: SqlKnowledgeStore, folder: Path, day: float, *, rows: int = 50, status: str = "accepted") -> Path:
    """An archived batch file received ``day`` days after T0, with its row."""
    path = folder / f"b{day:06.2f}.csv"
    path.write_text("a,y\n" + "1,0\n" * rows, encoding="utf-8")
    store.add_batch(
        model="m",
        received_at=T0 + timedelta(days=day),
        source="landing",
        path=str(path),
        rows=rows,
        labelled=status == "accepted",
        fingerprint="f",
        status=status,
        claim=f"c/{path.name}",
    )
    return path


def test_old_observations_fold_into_hourly_min_mean_max_count(store: SqlKnowledgeStore) -> None:
    """Raw readings older than raw_days become one row per hour and metric with the right aggregates."""
    add_model(store)
    observe(store, days=10, every=timedelta(minutes=10))
    report = collect_garbage(store, POLICY, T0 + timedelta(days=10))
    kept = store.observations("m", metric="performance", limit=100_000)
    assert kept[0].at == T0 + timedelta(days=3) and len(kept) == 7 * 24 * 6
    assert report.rows[Removed.OBSERVATIONS] == 2 * 3 * 24 * 6
    assert store.history_size("m") == {"observations": 2 * 7 * 24 * 6, "observation_rollups": 2 * 3 * 24}
    series = store.observations("m", metric="performance", limit=7 * 24 * 6 + 2, rollups=True)
    first_hour, last_hour = series[0], series[1]
    assert last_hour.at == T0 + timedelta(days=3, hours=-1) and first_hour.at == T0 + timedelta(days=3, hours=-2)
    i = (3 * 24 - 1) * 6  # the first reading of the last folded hour
    assert last_hour.value == pytest.approx(i + 2.5)
    assert last_hour.evidence == {"aggregate": "hour", "count": 6, "min": i, "max": i + 5}
    assert series[2:] == store.observations("m", metric="performance", limit=7 * 24 * 6)


def test_series_readers_cross_the_raw_boundary_and_decisions_do_not(store: SqlKnowledgeStore) -> None:
    """With ``rollups`` a series is raw rows preceded by hourly aggregates, oldest first; without, raw only."""
    add_model(store)
    observe(store, days=9, every=timedelta(hours=1))
    collect_garbage(store, POLICY, T0 + timedelta(days=9))
    drawn = store.observations("m", metric="drift_share", limit=1000, rollups=True)
    assert [o.at for o in drawn] == [T0 + timedelta(hours=h) for h in range(9 * 24)]
    assert [o.value for o in drawn] == [float(h) for h in range(9 * 24)]
    assert len(store.observations("m", metric="drift_share", limit=1000)) == 7 * 24
    since = T0 + timedelta(days=1)
    assert store.observations("m", metric="drift_share", since=since, rollups=True)[0].at == since


def test_the_model_pages_series_reaches_past_the_raw_window(store: SqlKnowledgeStore) -> None:
    """recent_series with rollups (what the model page draws) is the same (time, value) series as
    observations(..., rollups=True): hourly means before the raw window, raw readings after, none twice."""
    add_model(store)
    observe(store, days=9, every=timedelta(minutes=30))
    collect_garbage(store, POLICY, T0 + timedelta(days=9))
    for limit in (100, 1000, 10_000):
        drawn = store.recent_series(["m"], "performance", limit=limit, rollups=True)["m"]
        expected = store.observations("m", metric="performance", limit=limit, rollups=True)
        assert drawn == [(o.at, o.value) for o in expected]
    whole = store.recent_series(["m"], "performance", limit=10_000, rollups=True)["m"]
    assert whole[0][0] == T0 and len(whole) == 2 * 24 + 7 * 24 * 2
    assert len(store.recent_series(["m"], "performance", limit=10_000)["m"]) == 7 * 24 * 2


def test_every_batch_status_fits_its_column() -> None:
    """A status longer than the batches.status column would fail on PostgreSQL only (SQLite does not check)."""
    length = t.batches.c.status.type.length
    assert length is not None and all(len(status.value) <= length for status in BatchStatus)


def test_history_past_the_horizon_is_dropped(store: SqlKnowledgeStore) -> None:
    """Rollups older than horizon_days go; two runs in a row remove nothing more the second time."""
    add_model(store)
    observe(store, days=40, every=timedelta(hours=1))
    now = T0 + timedelta(days=40)
    first = collect_garbage(store, POLICY, now)
    assert first.rows[Removed.ROLLUPS] == 2 * 10 * 24
    assert store.history_size("m") == {"observations": 2 * 7 * 24, "observation_rollups": 2 * 23 * 24}
    again = collect_garbage(store, POLICY, now)
    assert again.rows == dict.fromkeys(again.rows, 0) and again.files == 0


def test_a_dry_run_counts_what_would_go_and_changes_nothing(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """--dry-run reports the same rows and files a real run then removes, and leaves both in place."""
    add_model(store)
    observe(store, days=9, every=timedelta(hours=1))
    version(store, 1, at=T0 + timedelta(days=19))
    store.move_alias("m", Alias.CHAMPION, 1, at=T0 + timedelta(days=19), actor="t", reason="first")
    old = batch(store, tmp_path, 1)
    for day in range(15, 21):
        batch(store, tmp_path, day)
    now = T0 + timedelta(days=21)
    size = old.stat().st_size
    dry = collect_garbage(store, POLICY, now, dry_run=True)
    assert old.exists() and store.history_size("m") == {"observations": 2 * 9 * 24, "observation_rollups": 0}
    real = collect_garbage(store, POLICY, now)
    assert (dry.rows, dry.files, dry.bytes) == (real.rows, real.files, real.bytes)
    assert (real.rows[Removed.BATCHES], real.files, real.bytes) == (1, 1, size)
    assert real.rows[Removed.OBSERVATIONS] == 2 * 9 * 24 and not old.exists()
    # The collected batch's row stays as a tombstone with its claim: no reader takes it for an archived batch.
    [tombstone] = store.batches("m", status=BatchStatus.COLLECTED)
    assert tombstone.path == str(old) and store.find_batch("m", f"c/{old.name}") == tombstone
    assert str(old) not in {b.path for b in store.batches("m")}
    assert collect_garbage(store, POLICY, now).rows[Removed.BATCHES] == 0


def test_batches_a_kept_version_learned_from_are_kept(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """Old batches go, except those since the start of a stable version's retrain window (its lineage)."""
    add_model(store)
    paths = {day: batch(store, tmp_path, day) for day in range(40)}
    retrain = store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=T0 + timedelta(days=12),
        actor="heald",
        reason="drift",
        params={"since": (T0 + timedelta(days=5)).isoformat()},
    )
    version(store, 1, at=T0 + timedelta(days=12), created_by=f"action:{retrain.id}")
    store.mark_stable("m", 1, T0 + timedelta(days=13))
    version(store, 2, at=T0 + timedelta(days=35))
    store.move_alias("m", Alias.CHAMPION, 2, at=T0 + timedelta(days=35), actor="t", reason="newer")
    now = T0 + timedelta(days=40)
    assert keep_from(store, POLICY, "m") == T0 + timedelta(days=5)
    report = collect_garbage(store, POLICY, now)
    assert report.rows[Removed.BATCHES] == 5 and report.files == 5
    assert [d for d, p in paths.items() if not p.exists()] == [0, 1, 2, 3, 4]
    assert store.batches("m", limit=100)[0].received_at == T0 + timedelta(days=5)


def test_a_rolled_back_version_protects_nothing(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """A version that was rolled back is no rollback target: its training rows are not kept for it."""
    add_model(store)
    for day in range(40):
        batch(store, tmp_path, day)
    retrain = store.plan_action(
        model="m", kind=ActionKind.RETRAIN, at=T0, actor="heald", reason="drift", params={"since": T0.isoformat()}
    )
    store.transition_action(retrain.id, ActionState.SUCCEEDED, at=T0 + timedelta(days=2))
    version(store, 1, at=T0 + timedelta(days=2), created_by=f"action:{retrain.id}")
    store.mark_stable("m", 1, T0 + timedelta(days=3))
    version(store, 2, at=T0 + timedelta(days=35))
    store.move_alias("m", Alias.CHAMPION, 2, at=T0 + timedelta(days=35), actor="t", reason="newer", rolled_back=1)
    assert keep_from(store, POLICY, "m") == T0 + timedelta(days=35)
    assert collect_garbage(store, POLICY, T0 + timedelta(days=40)).rows[Removed.BATCHES] == 30


def test_what_an_emergency_rebuild_reads_is_kept(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """Every batch since the champion began serving stays, and at least the newest keep_labelled_rows rows."""
    add_model(store)
    for day in range(40):
        batch(store, tmp_path, day, rows=10)
    version(store, 1, at=T0 + timedelta(days=25))
    store.move_alias("m", Alias.CHAMPION, 1, at=T0 + timedelta(days=25), actor="t", reason="first")
    # Serving since day 25, but 100 labelled rows reach back to day 30 only: the champion's time wins.
    assert keep_from(store, POLICY, "m") == T0 + timedelta(days=25)
    late = replace(POLICY, keep_labelled_rows=200)  # 20 batches of 10 rows: back to day 20
    assert keep_from(store, late, "m") == T0 + timedelta(days=20)
    assert collect_garbage(store, late, T0 + timedelta(days=40)).rows[Removed.BATCHES] == 20


def test_without_a_champion_every_batch_is_kept(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """No champion: a rebuild would read every labelled row, so nothing is collected."""
    add_model(store)
    paths = [batch(store, tmp_path, day) for day in range(40)]
    assert collect_garbage(store, POLICY, T0 + timedelta(days=400)).rows[Removed.BATCHES] == 0
    assert all(p.exists() for p in paths)


def test_quarantined_files_are_evidence_unless_a_quarantine_policy_says(
    store: SqlKnowledgeStore, tmp_path: Path
) -> None:
    """Quarantined files (and their reason notes) stay by default; quarantine_days removes old ones."""
    add_model(store)
    version(store, 1, at=T0)
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="t", reason="first")
    bad = batch(store, tmp_path, 1, status="quarantined")
    note = bad.with_name(bad.name + ".reason.json")
    note.write_text("{}", encoding="utf-8")
    now = T0 + timedelta(days=100)
    assert collect_garbage(store, POLICY, now).rows[Removed.QUARANTINED] == 0 and bad.exists()
    report = collect_garbage(store, replace(POLICY, quarantine_days=60), now)
    assert report.rows[Removed.QUARANTINED] == 1 and report.files == 2
    assert not bad.exists() and not note.exists()


def test_a_stale_leader_collects_nothing(store: SqlKnowledgeStore) -> None:
    """Collection under an epoch another daemon replaced is refused whole (fenced), like every acting write."""
    add_model(store)
    observe(store, days=9, every=timedelta(hours=1))
    assert store.acquire_lease("actor", "a", at=T0, ttl_seconds=1) == 1
    assert store.acquire_lease("actor", "b", at=T0 + timedelta(seconds=5), ttl_seconds=1) == 2
    with pytest.raises(StaleEpochError, match="stale"):
        collect_garbage(store, POLICY, T0 + timedelta(days=9), epoch=1)
    assert store.history_size("m") == {"observations": 2 * 9 * 24, "observation_rollups": 0}


def test_a_policy_keeping_raw_rows_past_the_horizon_is_refused() -> None:
    """raw_days beyond horizon_days would drop raw rows never folded: a clear error names both."""
    with pytest.raises(ValueError, match=r"raw_days \(500.*horizon_days \(400"):
        RetentionPolicy(raw_days=500, horizon_days=400)


def test_one_model_failing_never_stops_the_collection_for_the_others(
    store: SqlKnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose rows cannot be read (damaged version rows) is named in ``failed``; the others are collected."""
    add_model(store, "a")
    add_model(store)
    observe(store, days=9, every=timedelta(hours=1))
    version(store, 1, at=T0)
    store.move_alias("m", Alias.CHAMPION, 1, at=T0, actor="t", reason="first")
    readable = store.list_versions

    def damaged(model: str) -> list[Version]:
        if model == "a":
            raise ValueError("version rows of 'a' are not valid JSON")
        return readable(model)

    monkeypatch.setattr(store, "list_versions", damaged)
    report = collect_garbage(store, POLICY, T0 + timedelta(days=9))
    assert report.failed == {"a": "ValueError: version rows of 'a' are not valid JSON"}
    assert report.rows[Removed.OBSERVATIONS] == 2 * 2 * 24
