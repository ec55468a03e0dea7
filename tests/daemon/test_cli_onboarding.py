"""healctl init tells the truth: no champion below the health threshold unless a person accepts it, a
threshold the data supports is suggested, and the written config holds only the model's task's keys."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from daemon.exit_codes import ExitCode
from tests.conftest import Cli


def test_init_refuses_an_unhealthy_first_version_and_suggests_a_threshold(
    healctl: Cli, diabetes_csv: Path, tmp_path: Path
) -> None:
    """Diabetes scores R² well under the default floor 0.5: refused (exit 4), nothing created, a floor named;
    that floor, once configured, makes the same data a healthy champion."""
    result = healctl("init", "--name", "d", "--data", str(diabetes_csv), "--target", "target")
    assert result.code == ExitCode.REFUSED, result.text
    assert "below its health threshold" in result.text and "--accept-unhealthy" in result.text
    assert healctl("models", "--json").stdout.strip() == "[]"
    suggested = re.search(r"`min_r2 = ([0-9.]+)`", result.text)
    assert suggested, result.text
    floor = float(suggested.group(1))
    assert 0 < floor < 0.5
    config = tmp_path / "suggested.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state2"}"\nn_estimators = 20\n[pipeline]\ncv_folds = 3\nretry_delay = 0.0\n'
        f'[[models]]\nname = "d"\ntarget = "target"\nmin_r2 = {floor}\n',
        encoding="utf-8",
    )
    healthy = healctl("init", "--name", "d", "--data", str(diabetes_csv), "--target", "target", config=config)
    assert healthy.code == 0, healthy.text
    assert "v1 champion and stable, healthy" in healthy.text


def test_accept_unhealthy_makes_the_champion_anyway(healctl: Cli, diabetes_csv: Path) -> None:
    """A person may accept a weak first version; it is served and marked as not healthy."""
    result = healctl("init", "--name", "d", "--data", str(diabetes_csv), "--target", "target", "--accept-unhealthy")
    assert result.code == 0, result.text
    [version] = json.loads(healctl("models", "d", "--json").stdout)
    assert version["aliases"] == ["champion", "stable"] and version["health"] != "healthy"


def test_generated_config_holds_only_the_task_threshold(
    healctl: Cli, mixed_csv: Path, diabetes_csv: Path, tmp_path: Path
) -> None:
    """A classifier's generated entry has min_accuracy and no min_r2; a regressor's the other way round."""
    written = tmp_path / "generated.toml"
    args = ("--write-config", str(written))

    def entries() -> dict[str, dict[str, object]]:
        return {m["name"]: m for m in tomllib.loads(written.read_text(encoding="utf-8"))["models"]}

    assert healctl("init", "--name", "c", "--data", str(mixed_csv), "--target", "churned", *args).code == 0
    assert "min_accuracy" in entries()["c"] and "min_r2" not in entries()["c"]
    # The second init reads the file the first wrote, and adds its model to it.
    second = ("init", "--name", "r", "--data", str(diabetes_csv), "--target", "target", *args, "--accept-unhealthy")
    assert healctl(*second, config=written).code == 0
    assert "min_r2" in entries()["r"] and "min_accuracy" not in entries()["r"]
    assert "min_r2" not in entries()["c"]
