"""Helpers for the source tests: a user's PostgreSQL table of visits (and of late labels), a heald whose model
``shop`` pulls from it, and readers of what ended up archived."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, text

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Settings, SourceSettings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import Batch
from pipeline.train import TrainParams
from tests.sensing import MODEL, TARGET, quiet_settings, shop_rows

ROWS_QUERY = "SELECT id, updated_at, price, visits, region, bought FROM visits WHERE updated_at >= :watermark"
LABELS_QUERY = (
    "SELECT v.id, l.labelled_at, v.price, v.visits, v.region, l.bought FROM labels l JOIN visits v ON v.id = l.id"
    " WHERE l.labelled_at >= :watermark"
)


def user_database(url: str) -> Engine:
    """The user's own database: a visits table (labels often missing) and a labels table filled later."""
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(
            text(
                "CREATE TABLE visits (id integer PRIMARY KEY, updated_at timestamptz NOT NULL, price double precision,"
                " visits double precision, region text, bought integer)"
            )
        )
        c.execute(text("CREATE TABLE labels (id integer PRIMARY KEY, bought integer, labelled_at timestamptz)"))
    return engine


def insert_visits(
    engine: Engine, first_id: int, rows: int, at: datetime, rng: np.random.Generator, *, labelled: bool = True
) -> list[int]:
    """Insert ``rows`` visits with ids from ``first_id``, all stamped ``at``; returns their ids."""
    frame = shop_rows(rows, rng, labelled=True)
    ids = list(range(first_id, first_id + rows))
    frame["id"], frame["at"] = ids, at
    if not labelled:
        frame[TARGET] = None
    values = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    with engine.begin() as c:
        c.execute(text("INSERT INTO visits VALUES (:id, :at, :price, :visits, :region, :bought)"), values)
    return ids


def sql_settings(state: Path, url: str, **source: Any) -> Settings:
    base = quiet_settings(state, anomaly=False)
    config = {
        "kind": "sql",
        "url": url,
        "query": ROWS_QUERY,
        "watermark": "updated_at",
        "key": "id",
        "start": "2000-01-01T00:00:00+00:00",
        "max_rows_per_tick": 250,
        **source,
    }
    model = ModelSettings(
        name=MODEL, target=TARGET, task="classification", min_accuracy=0.8, source=SourceSettings(**config)
    )
    return base.model_copy(update={"models": [model]})


def start(settings: Settings, clock: ManualClock) -> Heald:
    return build(settings, clock=clock, pool="inline")


def onboard_shop(heald: Heald, clock: ManualClock) -> None:
    onboard(
        heald.store,
        heald.registry,
        name=MODEL,
        frame=shop_rows(1500, np.random.default_rng(3)),
        target=TARGET,
        now=clock.now(),
        params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
    )


def tick(heald: Heald, clock: ManualClock) -> None:
    clock.advance(timedelta(hours=1))
    heald.loop.tick()


def archived_ids(batches: list[Batch]) -> list[int]:
    """The ids of every row in the files the batches were archived to, in batch order."""
    return [int(i) for b in batches for i in pd.read_csv(b.path)["source_key"]]
