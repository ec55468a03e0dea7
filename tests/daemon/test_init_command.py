"""healctl init: from a user's file to a champion, on numeric, mixed and regression data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon import config as configuration
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias
from tests.conftest import Cli


def store_of(config_file: Path) -> SqlKnowledgeStore:
    return SqlKnowledgeStore.open(configuration.load(config_file).database)


@pytest.mark.parametrize(
    ("data", "target", "task", "metric"),
    [
        ("breast_cancer_csv", "target", "classification", "accuracy"),
        ("mixed_csv", "churned", "classification", "f1_macro"),
        ("diabetes_csv", "target", "regression", "rmse"),
    ],
)
def test_init_creates_a_champion_whose_test_metrics_are_printed_and_stored(
    request: pytest.FixtureRequest, healctl: Cli, config_file: Path, data: str, target: str, task: str, metric: str
) -> None:
    """v1 is champion and stable; its test metrics, CV spread and health are printed and in the registry."""
    path: Path = request.getfixturevalue(data)
    result = healctl("init", "--name", "m", "--data", str(path), "--target", target, "--accept-unhealthy")
    assert result.code == 0, result.text
    assert "model m created: v1 champion and stable" in result.text and f"{metric} = " in result.text
    store = store_of(config_file)
    try:
        model = store.get_model("m")
        version = store.get_version("m", 1)
        assert model.task.value == task
        assert store.aliases("m") == {Alias.CHAMPION: 1, Alias.STABLE: 1}
        assert metric in version.metrics and "cv_mean" in version.metrics and "cv_std" in version.metrics
        assert f"{metric} = {version.metrics[metric]:.4f}" in result.text
        assert version.health in ("healthy", "sick")
        evaluation = version.profile["evaluation"]
        assert evaluation["importances"] and version.profile["dataset"]["target"] == target
        if task == "classification":
            matrix = evaluation["confusion_matrix"]
            assert sum(map(sum, matrix)) == evaluation["test_rows"]
        [run] = store.pipeline_runs("m")
        assert run.status == "succeeded" and run.version == 1 and len(run.stages) == 5
    finally:
        store.close()


def test_init_writes_a_config_the_daemon_can_start_from(healctl: Cli, mixed_csv: Path, tmp_path: Path) -> None:
    """The written file loads as settings with the model's entry (target, task, data)."""
    written = tmp_path / "out" / "heald.toml"
    result = healctl(
        "init", "--name", "churn", "--data", str(mixed_csv), "--target", "churned", "--write-config", str(written)
    )
    assert result.code == 0, result.text
    settings = configuration.load(written, environ={})
    entry = settings.model("churn")
    assert (entry.target, entry.task, entry.data) == ("churned", "classification", mixed_csv.resolve())
    assert settings.n_estimators == 20 and settings.pipeline.cv_folds == 3


def test_init_under_a_persons_config_points_at_it(healctl: Cli, mixed_csv: Path, config_file: Path) -> None:
    """Run with the daemon's own config (as an operator runs it for the service), init does not tell them to
    start a daemon on another file: it names the config in use and what to copy into it."""
    result = healctl("init", "--name", "m", "--data", str(mixed_csv), "--target", "churned")
    assert result.code == 0, result.text
    text = " ".join(result.text.split())
    assert "start the daemon with" not in text
    assert f"the daemon using {config_file} takes the model on its next tick" in text
    assert "[[models]]" in text


def test_init_refuses_to_overwrite_a_config_a_person_wrote(healctl: Cli, mixed_csv: Path, config_file: Path) -> None:
    """The operator's own config is never rewritten: a clear error instead."""
    result = healctl(
        "init", "--name", "m", "--data", str(mixed_csv), "--target", "churned", "--write-config", str(config_file)
    )
    assert result.code == 2 and "was not written by healctl" in result.text


def test_models_lists_metrics_aliases_and_health(healctl: Cli, diabetes_csv: Path) -> None:
    """`healctl models --json` shows each version's metrics, aliases, health and evaluation details."""
    assert (
        healctl("init", "--name", "d", "--data", str(diabetes_csv), "--target", "target", "--accept-unhealthy").code
        == 0
    )
    result = healctl("models", "d", "--json")
    [version] = json.loads(result.stdout)
    assert version["aliases"] == ["champion", "stable"]
    assert {"mse", "rmse", "mae", "r2", "cv_mean", "cv_std"} <= set(version["metrics"])
    assert version["health"] in ("healthy", "sick") and version["pipeline_run"] == 1
    table = healctl("models")
    assert table.code == 0 and "v1" in table.text
