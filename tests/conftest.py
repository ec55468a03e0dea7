"""Shared fixtures: settings in a temporary state folder, a wired heald on simulated time, and stores on a
real SQLite file and a real PostgreSQL server started for the session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from daemon.compose import Heald, build
from daemon.config import ModelSettings, Policy, Settings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Version
from pipeline.train import TrainParams
from tests import postgres
from tests.sensing import MODEL, TARGET, quiet_settings, shop_rows


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session; a missing server fails in CI instead of skipping."""
    if not postgres.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries are missing; `make test` installs them (scripts/system-deps)")
        pytest.skip("PostgreSQL is not installed (run scripts/system-deps)")
    with postgres.server() as url:
        yield url


@pytest.fixture
def pg_url(pg_base_url: str) -> str:
    """A fresh, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(f"{pg_base_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{pg_base_url}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlKnowledgeStore]:
    """The knowledge store on each backend: the contract suite runs once per backend."""
    sqlite = f"sqlite:///{tmp_path / 'heald.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = SqlKnowledgeStore.open(url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(state: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "state_dir": state,
        "n_estimators": 20,
        "max_depth": 8,
        "tick_seconds": 3600,
        "executor": "inline",
        "policy": Policy(cooldown_seconds=3 * 3600, stable_after=3, min_retrain_rows=300),
        "models": [ModelSettings(name="m", target="y", task="classification", min_accuracy=0.8)],
    }
    base.update(overrides)
    return Settings.model_validate(base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "state")


@pytest.fixture
def heald(settings: Settings, clock: ManualClock) -> Iterator[Heald]:
    built = build(settings, clock=clock, pool="inline")
    yield built
    built.close()


def table(rows: int, *, shifted: bool = False, seed: int = 0) -> pd.DataFrame:
    """A small labelled table: y follows a rule on a and b; `shifted` moves a and flips the rule."""
    rng = np.random.default_rng(seed)
    a = rng.normal(3.0 if shifted else 0.0, 1.0, rows)
    b = rng.normal(0.0, 1.0, rows)
    c = rng.choice(["red", "green", "blue"], rows)
    y = ((a - 3.0 if shifted else a) + b < 0).astype(int) if shifted else (a + b > 0).astype(int)
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def watched(tmp_path: Path, clock: ManualClock) -> Iterator[Heald]:
    """A heald for the sensing tests: no model yet, host limits off, anomaly watch off."""
    built = build(quiet_settings(tmp_path / "state", anomaly=False), clock=clock, pool="inline")
    yield built
    built.close()


@pytest.fixture
def champion(watched: Heald, rng: np.random.Generator, clock: ManualClock) -> Version:
    """Model ``shop`` onboarded on 1,500 rows: version 1 is champion and stable."""
    return onboard(
        watched.store,
        watched.registry,
        name=MODEL,
        frame=shop_rows(1500, rng),
        target=TARGET,
        now=clock.now(),
        params=TrainParams(n_estimators=20, max_depth=8, n_jobs=1),
    )
