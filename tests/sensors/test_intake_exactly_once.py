"""Intake takes each landing file exactly once: claimed by content hash, recorded under that claim, archived
or quarantined; whatever a crash left half-done is settled on the next pass; links and special files are
quarantined without being followed; a file that cannot be moved is skipped, reported and retried."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from daemon.compose import Heald
from daemon.metrics import Metrics
from knowledge.clock import ManualClock
from knowledge.values import Version
from sensors.claims import PROCESSING, claim, pending, place
from sensors.intake import Intake
from tests.sensing import MODEL, drop, shop_rows

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def collect(watched: Heald) -> Intake:
    return watched.loop.p.intake.collect(watched.store.get_model(MODEL), watched.store, NOW)


def processing(watched: Heald) -> Path:
    return watched.settings.landing / PROCESSING / MODEL


def test_a_file_is_archived_and_recorded_once_under_its_content_hash(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """The batch row carries the claim <sha256>/<name>, points at an archive file that exists, and the
    landing and processing folders are left empty."""
    path = drop(watched, "one.csv", shop_rows(300, rng))
    content = path.read_bytes()
    intake = collect(watched)
    assert [b.batch.rows for b in intake.batches] == [300]
    [batch] = watched.store.batches(MODEL)
    assert batch.rows == 300 and batch.claim is not None and batch.claim.endswith("/one.csv")
    assert len(batch.claim.split("/")[0]) == 64
    assert Path(batch.path).read_bytes() == content
    assert not path.exists() and pending(processing(watched)) == []
    assert [e.name for e in intake.events] == ["batch_accepted"]


def test_a_claim_left_unrecorded_by_a_crash_is_recorded_once_on_the_next_pass(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """A crash after the claim's rename (and even after its archive link) but before the commit: the next
    pass records the batch once, archives it, and clears the claim."""
    path = drop(watched, "crashed.csv", shop_rows(200, rng))
    item = claim(path, processing(watched), lambda key: False)
    place(item, watched.settings.state_dir / "batches" / MODEL / f"{item.digest[:16]}-crashed.csv")
    intake = collect(watched)
    assert [b.batch.rows for b in intake.batches] == [200]
    [batch] = watched.store.batches(MODEL)
    assert batch.claim == item.key and Path(batch.path).is_file()
    assert pending(processing(watched)) == []
    assert collect(watched).batches == [] and len(watched.store.batches(MODEL)) == 1


def test_a_claim_recorded_before_a_crash_is_only_released(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """A crash after the commit but before the claim was removed: the next pass writes no second row and
    feeds no rows twice; it only removes the claim."""
    drop(watched, "done.csv", shop_rows(200, rng))
    collect(watched)
    [batch] = watched.store.batches(MODEL)
    leftover = processing(watched) / batch.claim.split("/")[0] / "done.csv"  # type: ignore[union-attr]
    leftover.parent.mkdir(parents=True)
    os.link(batch.path, leftover)  # the claim as the crash left it
    intake = collect(watched)
    assert intake.batches == [] and intake.observations == []
    assert len(watched.store.batches(MODEL, status=None)) == 1
    assert not leftover.exists() and Path(batch.path).is_file()


def test_the_same_file_sent_again_is_quarantined_as_a_duplicate(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """Same name, same bytes a second time: its own row says quarantined (a duplicate of the first batch),
    and its rows are not counted twice."""
    frame = shop_rows(150, rng)
    drop(watched, "again.csv", frame)
    collect(watched)
    drop(watched, "again.csv", frame)
    intake = collect(watched)
    assert intake.batches == []
    [first] = watched.store.batches(MODEL)
    [second] = watched.store.batches(MODEL, status="quarantined")
    assert second.claim == first.claim.replace("/", ".2/", 1)  # type: ignore[union-attr]
    assert f"received before (batch {first.id})" in second.reason and Path(second.path).is_file()


def test_a_file_sent_again_after_retention_removed_its_archive_is_still_a_duplicate(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """Retention removes an old batch's file but keeps its row as a tombstone with the claim: the same file sent
    again months later is quarantined as a duplicate of it, and its rows are not taken in a second time."""
    frame = shop_rows(150, rng)
    drop(watched, "old.csv", frame)
    collect(watched)
    [first] = watched.store.batches(MODEL)
    watched.store.collect_batches([first], at=NOW)
    Path(first.path).unlink()
    drop(watched, "old.csv", frame)
    intake = collect(watched)
    assert intake.batches == [] and watched.store.batches(MODEL) == []
    [second] = watched.store.batches(MODEL, status="quarantined")
    assert f"received before (batch {first.id})" in second.reason


def test_a_symlink_is_quarantined_without_being_followed(
    watched: Heald, champion: Version, rng: np.random.Generator, tmp_path: Path
) -> None:
    """A link in the landing folder (to a CSV outside it, or to /etc/passwd) is moved to quarantine as a link,
    with a reason naming its target; the outside file is never ingested."""
    outside = tmp_path / "outside.csv"
    shop_rows(100, rng).to_csv(outside, index=False)
    folder = watched.settings.landing / MODEL
    folder.mkdir(parents=True)
    (folder / "outside.csv").symlink_to(outside)
    (folder / "passwd.csv").symlink_to("/etc/passwd")
    intake = collect(watched)
    assert intake.batches == [] and watched.store.batches(MODEL) == []
    rows = {Path(b.path).name.split("-", 1)[1]: b for b in watched.store.batches(MODEL, status="quarantined")}
    assert set(rows) == {"outside.csv", "passwd.csv"}
    assert Path(rows["passwd.csv"].path).is_symlink() and Path(rows["outside.csv"].path).is_symlink()
    assert "symbolic link to /etc/passwd" in rows["passwd.csv"].reason
    assert "never follows" in rows["outside.csv"].reason
    note = json.loads(Path(rows["passwd.csv"].path + ".reason.json").read_text())
    assert note["file"] == "passwd.csv" and "/etc/passwd" in note["reason"]
    assert outside.is_file() and not list(folder.iterdir())


def test_a_fifo_is_quarantined_without_being_opened(watched: Heald, champion: Version) -> None:
    """A named pipe would block whoever opens it: intake quarantines it without opening it (the pass returns)."""
    folder = watched.settings.landing / MODEL
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.csv")
    collect(watched)
    [row] = watched.store.batches(MODEL, status="quarantined")
    assert "is a named pipe" in row.reason and Path(row.path).is_fifo()


def test_unfinished_and_hidden_files_are_left_alone(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """A producer still writing (``*.part``, ``*.tmp``, dot-files) is not disturbed."""
    names = ["x.csv.part", "y.csv.tmp", ".z.csv"]
    for name in names:
        drop(watched, name, shop_rows(20, rng))
    collect(watched)
    assert sorted(p.name for p in (watched.settings.landing / MODEL).iterdir()) == sorted(names)
    assert watched.store.batches(MODEL, status=None) == []


def test_a_file_that_cannot_be_moved_is_skipped_reported_and_retried(
    watched: Heald, champion: Version, rng: np.random.Generator, clock: ManualClock
) -> None:
    """When the claim's rename fails (here the processing folder cannot be made), the file stays where it
    is, a batch_skipped error event and the skipped counter say so, the tick completes, and the file is
    taken once the cause is gone."""
    (watched.settings.landing).mkdir(parents=True)
    (watched.settings.landing / PROCESSING).write_text("in the way")
    path = drop(watched, "stuck.csv", shop_rows(120, rng))
    intake = collect(watched)
    assert path.exists() and watched.store.batches(MODEL, status=None) == []
    [event] = intake.events
    assert event.name == "batch_skipped" and event.level == "error" and "stuck.csv" in str(event.fields["error"])
    metrics = Metrics(watched.store, watched.registry, lambda: watched.loop.p.intake.health)
    assert f'heald_batches_skipped_total{{model="{MODEL}"}} 1.0' in metrics.render().decode()
    report = watched.loop.tick()
    assert report.failed == []
    (watched.settings.landing / PROCESSING).unlink()
    assert [b.batch.rows for b in collect(watched).batches] == [120]
    assert not path.exists()


@pytest.mark.parametrize("suffix", [".json", ".xlsx"])
def test_a_file_of_another_kind_is_quarantined(watched: Heald, champion: Version, suffix: str) -> None:
    """Only CSV and Parquet are batches; anything else is set aside with its reason, not left to pile up."""
    folder = watched.settings.landing / MODEL
    folder.mkdir(parents=True)
    (folder / f"notes{suffix}").write_text("{}")
    collect(watched)
    [row] = watched.store.batches(MODEL, status="quarantined")
    assert "not a .csv or .parquet file" in row.reason


def test_a_name_at_the_file_system_limit_is_archived_under_a_shortened_name(
    watched: Heald, champion: Version, rng: np.random.Generator
) -> None:
    """A 250-byte file name still fits once the hash prefix is added: cut, suffix kept, rows all there."""
    name = "x" * 246 + ".csv"
    drop(watched, name, shop_rows(50, rng))
    [loaded] = collect(watched).batches
    stored = Path(loaded.batch.path)
    assert stored.is_file() and stored.suffix == ".csv" and len(stored.name.encode()) <= 240
    assert loaded.batch.claim is not None and loaded.batch.claim.endswith("/" + name) and loaded.batch.rows == 50
