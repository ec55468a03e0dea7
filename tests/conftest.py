"""Shared fixtures: small real data sets written to files, a config for them, and healctl run in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog
from sklearn.datasets import load_breast_cancer, load_diabetes

from daemon.cli import main


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
