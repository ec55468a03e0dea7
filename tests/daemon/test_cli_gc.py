"""`healctl gc` applies the retention policy on demand and says what it removed (or, dry, would remove)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, ModelRecord, Observation, Task, Version
from tests.conftest import Cli


def populate(state: Path) -> Path:
    """A model serving since 20 days ago, readings from 10 days ago, and an archived batch 35 days old."""
    now = datetime.now(UTC)
    store = SqlKnowledgeStore.open(f"sqlite:///{state / 'heald.db'}")
    try:
        store.add_model(ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", created_at=now))
        store.add_version(
            Version(model="m", number=1, artifact="m/v1", sha256="0" * 64, created_at=now - timedelta(days=20))
        )
        store.move_alias("m", Alias.CHAMPION, 1, at=now - timedelta(days=20), actor="t", reason="first")
        hour = (now - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
        store.add_observations(
            Observation(at=hour + timedelta(minutes=m), model="m", source="t", metric="drift_share", value=m)
            for m in range(0, 60, 15)
        )
        folder = state / "batches" / "m"
        folder.mkdir(parents=True)
        old = folder / "old.csv"
        for name, days in (("old.csv", 35), ("new.csv", 1)):
            (folder / name).write_text("a,y\n1,0\n", encoding="utf-8")
            store.add_batch(
                model="m",
                received_at=now - timedelta(days=days),
                source="landing",
                path=str(folder / name),
                rows=500,
                labelled=True,
                fingerprint="f",
                claim=f"c/{name}",
            )
    finally:
        store.close()
    return old


def test_gc_reports_what_it_removed_and_a_dry_run_removes_nothing(healctl: Cli, tmp_path: Path) -> None:
    """--dry-run --json lists the rows by kind, files and bytes that would go, and leaves them; gc then removes
    exactly that; the table for people says the same."""
    old = populate(tmp_path / "state")
    dry = healctl("gc", "--dry-run", "--json")
    assert dry.code == 0, dry.text
    would = json.loads(dry.stdout)
    assert would["dry_run"] is True and old.exists()
    assert would["rows"]["observations"] == 4 and would["rows"]["batches"] == 1
    assert (would["files"], would["bytes"]) == (1, old.stat().st_size)
    done = healctl("gc", "--json")
    assert done.code == 0, done.text
    removed = json.loads(done.stdout)
    assert {k: removed[k] for k in ("rows", "files", "bytes")} == {k: would[k] for k in ("rows", "files", "bytes")}
    assert not old.exists() and (old.parent / "new.csv").exists()
    again = healctl("gc")
    assert again.code == 0 and "removed" in again.text and "files removed: 0 (0 bytes)" in again.text


def test_gc_with_a_bad_retention_setting_names_it(healctl: Cli, tmp_path: Path) -> None:
    """raw_days above horizon_days is a configuration error naming both keys (exit status 2)."""
    config = tmp_path / "bad.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[retention]\nraw_days = 30\nhorizon_days = 10\n', encoding="utf-8"
    )
    result = healctl("gc", config=config)
    assert result.code == 2 and "raw_days (30.0) must not exceed horizon_days (10.0)" in result.text
