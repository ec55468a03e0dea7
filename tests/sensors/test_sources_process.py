"""The real ``heald`` process pulling a real PostgreSQL table, SIGKILLed twice: once while its query is
running (the table is locked, so the pull is exactly there), once after the page was written out while its batch
row is being inserted (the batches table is locked in SHARE mode: reads pass, the insert waits). Restarted, it
takes every row exactly once: the first page is pulled again from the same watermark, the second is recorded
from the file the dead process left, and nothing is pulled twice.

As in ``tests/daemon/test_leadership_processes.py``, the moments are held with PostgreSQL's table locks and
found in ``pg_stat_activity``, never with sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from sqlalchemy import Engine, text

from daemon.onboard import onboard
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from pipeline.train import TrainParams
from sensors.claims import PROCESSING
from sensors.sources.base import Stream
from tests.sensing import MODEL, TARGET, shop_rows
from tests.sources import ROWS_QUERY, archived_ids, insert_visits, user_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
T = TypeVar("T")

HEALD = str(Path(sys.executable).parent / "heald")
PATIENCE = 240.0  # seconds before a wait gives up (a busy machine is slow; this is not what is tested)


def wait_for(what: str, check: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def write_config(path: Path, url: str, state: Path) -> Path:
    path.write_text(
        f"""state_dir = "{state}"
database_url = "{url}"
tick_seconds = 1
executor = "inline"
api_enabled = false
n_estimators = 20
[monitor]
anomaly = false
memory_percent = 0
disk_percent = 0
load_per_cpu = 0
rss_mb = 0
[[models]]
name = "{MODEL}"
target = "{TARGET}"
task = "classification"
[models.source]
kind = "sql"
url = "{url}"
query = "{ROWS_QUERY}"
watermark = "updated_at"
key = "id"
start = "2000-01-01T00:00:00+00:00"
max_rows_per_tick = 100
timeout_seconds = 600
""",
        encoding="utf-8",
    )
    return path


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
        with self.log.open("a") as out:
            proc = subprocess.Popen([HEALD, "--config", str(self.config)], stdout=out, stderr=out, env=env)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def waiting_on_lock(engine: Engine, statement: str) -> bool:
    with engine.connect() as c:
        found = c.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE :q"),
            {"q": f"{statement}%"},
        ).scalar()
    return bool(found)


@pytest.fixture
def daemon(tmp_path: Path, pg_url: str) -> Iterator[Daemon]:
    store = SqlKnowledgeStore.open(pg_url)
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "state" / "artifacts"))
    onboard(
        store,
        registry,
        name=MODEL,
        frame=shop_rows(1500, np.random.default_rng(3)),
        target=TARGET,
        now=datetime.now(UTC),
        params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
    )
    store.close()
    running = Daemon(write_config(tmp_path / "heald.toml", pg_url, tmp_path / "state"), tmp_path / "heald.log")
    yield running
    running.stop()


def kill_while_locked(engine: Engine, daemon: Daemon, lock: str, statement: str) -> None:
    """Start heald with ``lock`` held, wait until it waits on it running ``statement``, SIGKILL it, release."""
    with engine.connect() as holder:
        holder.execute(text(lock))
        proc = daemon.start()
        wait_for(f"heald to wait on {lock!r}", lambda: waiting_on_lock(engine, statement))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        holder.rollback()


def test_a_heald_killed_mid_pull_and_mid_record_takes_every_row_exactly_once(
    tmp_path: Path, pg_url: str, daemon: Daemon
) -> None:
    """Killed in the query and killed while recording the page it wrote, then restarted: 210 rows inserted
    over time are archived exactly once, and the stream counts exactly 210 rows."""
    users = user_database(pg_url)
    ids = insert_visits(users, 1, 150, datetime.now(UTC), np.random.default_rng(1))
    kill_while_locked(users, daemon, "LOCK TABLE visits IN ACCESS EXCLUSIVE MODE", "SELECT * FROM (SELECT id")
    store = SqlKnowledgeStore.open(pg_url)
    try:
        assert store.batches(MODEL, status=None) == []
        kill_while_locked(users, daemon, "LOCK TABLE batches IN SHARE MODE", "INSERT INTO batches")
        claimed = list((tmp_path / "state" / "landing" / PROCESSING / MODEL).glob("*/sql-rows-*.csv"))
        pending = store.source_state(MODEL, Stream.ROWS)
        assert store.batches(MODEL, status=None) == []
        ids += insert_visits(users, 151, 60, datetime.now(UTC), np.random.default_rng(2))
        daemon.start()

        def taken() -> bool:
            state = store.source_state(MODEL, Stream.ROWS)
            return state is not None and state.rows >= 210

        wait_for("every row to be taken", taken)
        daemon.stop()
        batches = store.batches(MODEL, status=None)
        state = store.source_state(MODEL, Stream.ROWS)
    finally:
        store.close()
        users.dispose()
    assert [c.name for c in claimed] == ["sql-rows-00000001.csv"]
    assert pending is not None and pending.pending is not None and pending.pending["rows"] == 100
    assert all(b.status == "accepted" for b in batches)
    assert sorted(archived_ids(batches)) == ids
    assert state is not None and state.rows == 210 and state.pending is None
