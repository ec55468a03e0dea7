"""Helpers for the sensing tests: a small shop model, quiet settings, dropping batches, ticking."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from daemon.compose import Heald
from daemon.config import ModelSettings, Monitor, Policy, Settings
from knowledge.clock import ManualClock

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
    """Settings for tests: inline pool, host limits off, small persistence windows, no retrains."""
    return Settings(
        state_dir=state,
        n_estimators=20,
        max_depth=8,
        tick_seconds=3600,
        executor="inline",
        policy=Policy(persistence=2, window=3, resolve_after=2, min_retrain_rows=10_000),
        monitor=Monitor.model_validate(
            {"memory_percent": 0, "disk_percent": 0, "load_per_cpu": 0, "rss_mb": 0, **monitor}
        ),
        models=[ModelSettings(name=MODEL, target=TARGET, task="classification", min_accuracy=0.8)],
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
