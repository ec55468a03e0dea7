"""`healctl drift` on two files and `healctl status` with drift and quality verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.cli import main
from daemon.compose import Heald
from knowledge.clock import ManualClock
from knowledge.values import Version
from tests.sensing import MODEL, drop, shop_rows, tick


def healctl(*argv: str) -> None:
    """Run healctl in this process; it exits 0 when it succeeds."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    assert done.value.code == 0


def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame(
        {"a": rng.normal(size=2000), "b": rng.normal(size=2000), "c": rng.choice(list("xy"), 2000)}
    )
    current = pd.DataFrame(
        {"a": rng.normal(1.0, 1.0, 500), "b": rng.normal(size=500), "c": rng.choice(list("xy"), 500)}
    )
    ref, cur = tmp_path / "reference.csv", tmp_path / "current.parquet"
    reference.to_csv(ref, index=False)
    current.to_parquet(cur, index=False)
    return ref, cur


def test_drift_prints_each_columns_test_statistic_pvalue_effect_and_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person gets a table; a script gets JSON with the same verdicts."""
    monkeypatch.setenv("HEALD_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    ref, cur = files(tmp_path)
    healctl("drift", "--reference", str(ref), "--current", str(cur), "--json")
    data = json.loads(capsys.readouterr().out)
    by_column = {c["column"]: c for c in data["columns"]}
    assert data["drifted"] == ["a"] and data["correction"] == "holm"
    assert by_column["a"]["test"] == "ks" and by_column["a"]["verdict"] == "drift" and by_column["a"]["pvalue"] < 1e-20
    assert by_column["c"]["test"] == "chi2" and by_column["c"]["effect_name"] == "psi"
    healctl("drift", "--reference", str(ref), "--current", str(cur))
    text = capsys.readouterr().out
    for word in ("column", "statistic", "p-value", "effect", "verdict", "ks=", "psi=", "1 of 3 tested columns drifted"):
        assert word in text


def test_drift_on_a_missing_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not exist exits 2 with a line naming it, not a traceback."""
    ref, _ = files(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["drift", "--reference", str(ref), "--current", str(tmp_path / "nope.csv")])
    assert exit_info.value.code == 2
    assert "nope.csv: no such file" in " ".join(capsys.readouterr().err.split())


def test_status_shows_the_latest_drift_and_quality_verdicts(
    watched: Heald,
    champion: Version,
    rng: np.random.Generator,
    clock: ManualClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After a drifted batch with an unknown column, status names the drifted feature and the quality problem."""
    drop(watched, "1.csv", shop_rows(400, rng, shift=1.0, labelled=False).assign(coupon="yes"))
    tick(watched, clock)
    config = tmp_path / "heald.toml"
    config.write_text(f'state_dir = "{watched.settings.state_dir}"\n')
    capsys.readouterr()
    healctl("status", "--config", str(config), "--json")
    out = capsys.readouterr().out
    [model] = json.loads(out)["models"]
    assert model["model"] == MODEL
    # price drives buying, so the champion's predictions move with it
    assert model["drift"]["verdict"] == "drift" and model["drift"]["drifted"] == ["price", "(predictions)"]
    assert model["quality"]["verdict"] == "problems"
    assert model["quality"]["problems"] == ["column 'coupon' is not in the reference"]
