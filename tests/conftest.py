"""Shared fixtures: settings in a temporary state folder, a wired heald on simulated time, stores on a
real SQLite file and a real PostgreSQL server started for the session, small real data sets written to
files with a config for them, and healctl run in-process."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog
from sklearn.datasets import load_breast_cancer, load_diabetes
from sqlalchemy import create_engine, text

from daemon.cli import main
from daemon.compose import Heald, build
from daemon.config import ENV_PREFIX, ModelSettings, Policy, Settings
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Version
from pipeline.train import TrainParams
from sensors import host
from sensors.host import FixedHostGauge
from tests import postgres
from tests.sensing import MODEL, TARGET, quiet_settings, shop_rows

CALM_HOST = {"cpu_percent": 5.0, "memory_percent": 30.0, "disk_percent": 30.0, "load_per_cpu": 0.1, "rss_mb": 200.0}


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs as on a quiet machine with a clean environment: the caller's HEALD_* variables are
    removed (a developer's shell must not change a verdict), and the host sensor reads a calm host instead of
    the real load of a shared machine. A test about either sets them itself. Logging set up by a test (the
    CLI's ``main`` configures it onto that test's captured output, closed once the test ends) is undone, so no
    later test writes its log lines to a closed file, whatever the order."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(host, "read_host", lambda _disk, _process: dict(CALM_HOST))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


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


# A calm host for tests that are not about the host: the machine running them may be loaded.
CALM_HOST = {"cpu_percent": 5.0, "memory_percent": 40.0, "disk_percent": 40.0, "load_per_cpu": 0.2, "rss_mb": 200.0}


@pytest.fixture
def heald(settings: Settings, clock: ManualClock) -> Iterator[Heald]:
    built = build(settings, clock=clock, pool="inline", host_gauge=FixedHostGauge([CALM_HOST]))
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


def mixed_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numbers and categories with gaps; the label depends on both."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows).round(1),
            "income": rng.lognormal(10, 0.6, rows).round(2),
            "visits": rng.poisson(3, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    score = (frame["age"] - 40) / 12 + (frame["plan"] == "pro") * 1.5 - (frame["visits"] - 3) / 2
    frame["churned"] = np.where(score + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    for column, share in (("age", 0.1), ("income", 0.05), ("plan", 0.08)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


@pytest.fixture
def breast_cancer_csv(tmp_path: Path) -> Path:
    path = tmp_path / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.fixture
def diabetes_csv(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.csv"
    mixed_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config for a state folder under tmp_path: small forests and 3-fold CV keep the tests quick."""
    path = tmp_path / "heald.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\nn_estimators = 20\n[pipeline]\ncv_folds = 3\nretry_delay = 0.0\n',
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """Both streams with rich's line wrapping undone."""
        return " ".join((self.stdout + "\n" + self.stderr).split())


Cli = Callable[..., Result]


@pytest.fixture
def healctl(capsys: pytest.CaptureFixture[str], config_file: Path) -> Cli:
    """Run ``healctl ARGS --config CONFIG`` in this process through ``daemon.cli.main``."""

    def run(*args: str, config: Path | None = config_file) -> Result:
        argv = [*args, *(["--config", str(config)] if config is not None else [])]
        code = 0
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            structlog.reset_defaults()  # healctl pointed the logs at this call's captured stderr
        captured = capsys.readouterr()
        return Result(code=code, stdout=captured.out, stderr=captured.err)

    return run
