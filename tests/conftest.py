"""Shared fixtures: a heald on real SQLite and real folders in tmp_path, driven by a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Monitor, Policy, Settings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import Version
from pipeline.train import TrainParams

MODEL = "shop"
TARGET = "bought"


def shop_rows(rows: int, rng: np.random.Generator, *, shift: float = 0.0, labelled: bool = True) -> pd.DataFrame:
    """Customers: two numbers, a region; buying follows price and visits. ``shift`` moves price (in sd)."""
    price = rng.normal(20.0 + 5.0 * shift, 5.0, rows)
    visits = rng.poisson(3.0, rows).astype(float)
    region = rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({"price": price, "visits": visits, "region": region})
    if labelled:
        noise = rng.random(rows) < 0.05
        frame[TARGET] = (((price < 21) & (visits >= 2)) ^ noise).astype(int)
    return frame


def quiet_settings(state: Path, **monitor: object) -> Settings:
    """Settings for tests: inline pool, host limits out of reach, small persistence windows."""
    return Settings(
        state_dir=state,
        n_estimators=20,
        max_depth=8,
        tick_seconds=3600,
        executor="inline",
        policy=Policy(persistence=2, window=3, resolve_after=2, min_retrain_rows=10_000),
        monitor=Monitor(**{"memory_percent": 0, "disk_percent": 0, "load_per_cpu": 0, "rss_mb": 0, **monitor}),
        models=[ModelSettings(name=MODEL, target=TARGET, task="classification", min_accuracy=0.8)],
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def heald(tmp_path: Path, clock: ManualClock) -> Iterator[Heald]:
    """A heald with no model yet (anomaly watch off unless a test turns it on)."""
    h = build(quiet_settings(tmp_path / "state", anomaly=False), clock=clock, pool="inline")
    yield h
    h.close()


@pytest.fixture
def champion(heald: Heald, rng: np.random.Generator, clock: ManualClock) -> Version:
    """Model ``shop`` onboarded on 1,500 rows: version 1 is champion and stable."""
    return onboard(
        heald.store,
        heald.registry,
        name=MODEL,
        frame=shop_rows(1500, rng),
        target=TARGET,
        now=clock.now(),
        params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
    )


def drop(heald: Heald, name: str, frame: pd.DataFrame) -> Path:
    """Drop a batch file in the model's landing folder, as a producer would."""
    folder = heald.settings.landing / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def tick(heald: Heald, clock: ManualClock) -> None:
    clock.advance(timedelta(hours=1))
    heald.loop.tick()
