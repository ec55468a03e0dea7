"""healctl pipeline run: the whole pipeline on the model's data, journaled, promoted only if not worse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from daemon import config as configuration
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, Alias
from tests.conftest import Cli, mixed_frame


def test_pipeline_run_trains_a_new_version_and_journals_it(healctl: Cli, config_file: Path, mixed_csv: Path) -> None:
    """A second version is registered from a recorded run; the champion moves only if it is not worse."""
    assert healctl("init", "--name", "churn", "--data", str(mixed_csv), "--target", "churned").code == 0
    result = healctl("pipeline", "run", "churn", "--data", str(mixed_csv), "--json")
    assert result.code == 0, result.text
    out = json.loads(result.stdout)
    assert out["version"] == 2 and out["metric"] == "accuracy"
    store = SqlKnowledgeStore.open(configuration.load(config_file).database)
    try:
        expected = 2 if out["promoted"] else 1
        assert store.alias("churn", Alias.CHAMPION) == expected and store.alias("churn", Alias.CHALLENGER) == 2
        [action] = store.actions(model="churn", kind=ActionKind.RETRAIN)
        assert action.state is ActionState.SUCCEEDED and action.actor == "healctl" and action.result["run"] == 2
        assert [r.trigger for r in store.pipeline_runs("churn")] == ["init", "operator"]
    finally:
        store.close()
    runs = json.loads(healctl("pipeline", "runs", "churn", "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"] and runs[1]["version"] == 2


@pytest.mark.parametrize(
    ("drift", "words"),
    [
        (lambda f: f.drop(columns="region"), "missing columns 'region'"),
        (lambda f: f.assign(extra=1.0), "extra columns 'extra'"),
        (lambda f: f.assign(visits="many"), "retyped columns visits (numeric -> categorical)"),
    ],
)
def test_pipeline_run_on_drifted_data_fails_validation_and_is_recorded(
    healctl: Cli,
    config_file: Path,
    mixed_csv: Path,
    tmp_path: Path,
    drift: Callable[[pd.DataFrame], pd.DataFrame],
    words: str,
) -> None:
    """A training file whose columns are not the model's (missing, extra or retyped) stops at validate:
    exit 1 (the run failed) with the reason, a failed run and a failed action."""
    assert healctl("init", "--name", "churn", "--data", str(mixed_csv), "--target", "churned").code == 0
    drifted = tmp_path / "drifted.csv"
    drift(mixed_frame()).to_csv(drifted, index=False)
    result = healctl("pipeline", "run", "churn", "--data", str(drifted))
    assert result.code == 1 and "failed at validate" in result.text and words in result.text, result.text
    assert "pipeline rerun churn" in result.text
    store = SqlKnowledgeStore.open(configuration.load(config_file).database)
    try:
        failed = store.pipeline_runs("churn")[-1]
        assert failed.status == "failed" and failed.failed_stage == "validate"
        assert [s.status for s in failed.stages] == ["succeeded", "failed", "pending", "pending", "pending"]
        [action] = store.actions(model="churn", kind=ActionKind.RETRAIN)
        assert action.state is ActionState.FAILED
    finally:
        store.close()


def test_pipeline_run_without_data_names_the_missing_setting(healctl: Cli, mixed_csv: Path) -> None:
    """No --data and no `data` under [[models]]: the error says which key to set."""
    assert healctl("init", "--name", "churn", "--data", str(mixed_csv), "--target", "churned").code == 0
    result = healctl("pipeline", "run", "churn")
    assert result.code == 2 and "has no `data` under [[models]]" in result.text
