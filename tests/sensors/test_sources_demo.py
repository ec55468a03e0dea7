"""The demo scenario (a drift healed by a retrain, a corrupted champion by a rollback) played with its batches
inserted into a real PostgreSQL table that a sql source reads, instead of dropped in the landing folder: the
outcome is the same, figure for figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from daemon import demo
from daemon.compose import Heald
from daemon.config import SourceSettings
from knowledge.sql.store import SqlKnowledgeStore
from sensors.host import FixedHostGauge
from tests.conftest import CALM_HOST

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCENARIO = demo.Scenario(ticks=30, drift_at=8, corrupt_at=20)


def test_the_demo_heals_the_same_with_a_sql_source_as_with_the_landing_folder(tmp_path: Path, pg_url: str) -> None:
    """Both runs resolve the same incidents, train the same versions and reach the same accuracies; the sql run
    took every hour's rows from the table as one batch each."""
    landing = demo.run(tmp_path / "landing", SCENARIO, host_gauge=FixedHostGauge([CALM_HOST]))
    table = create_engine(pg_url)

    def insert(heald: Heald, tick: int, batch: pd.DataFrame) -> None:
        rows = batch.assign(row_id=range(tick * 100_000, tick * 100_000 + len(batch)), tick=tick)
        rows.to_sql("demo_rows", table, if_exists="append", index=False)

    source = SourceSettings(
        kind="sql",
        url=pg_url,
        query="SELECT * FROM demo_rows WHERE tick >= :watermark",
        watermark="tick",
        key="row_id",
        start="0",
    )
    sql = demo.run(tmp_path / "sql", SCENARIO, host_gauge=FixedHostGauge([CALM_HOST]), source=source, feed=insert)
    table.dispose()
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'sql' / 'heald.db'}")
    try:
        batches = store.batches(demo.MODEL, status=None)
    finally:
        store.close()
    assert landing["resolved"] >= 2 and landing["versions"] >= 2
    assert sql == landing
    assert [(b.source, b.status, b.rows) for b in batches] == [("sql", "accepted", SCENARIO.batch_rows)] * 30
