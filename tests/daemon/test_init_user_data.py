"""healctl init on data as users have it ("20%", "$1,200", "1,234", an id and a date column), and /predict on
rows in the very shape of that file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from daemon import config as configuration
from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald, build
from daemon.metrics import Metrics
from knowledge.clock import ManualClock
from tests.conftest import Cli


def users_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A loan-like table: the label follows the rate and the amount, the rest is noise or bookkeeping."""
    rng = np.random.default_rng(seed)
    rate = rng.integers(1, 40, rows)
    amount = rng.integers(100, 5000, rows)
    balance = rng.integers(1000, 90000, rows)
    return pd.DataFrame(
        {
            "loan_id": [f"L-{i:06d}" for i in rng.permutation(rows)],
            "rate": [f"{r}%" for r in rate],
            "amount": [f"${a:,}" for a in amount],
            "balance": [f"{b:,}" for b in balance],
            "opened": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D"),
            "grade": rng.choice(["A", "B", "C"], rows),
            "defaulted": np.where(rate * 100 + amount / 10 + rng.normal(0, 200, rows) > 2300, "yes", "no"),
        }
    ).assign(opened=lambda f: f["opened"].dt.strftime("%Y-%m-%d"))


@pytest.fixture
def users_csv(tmp_path: Path) -> Path:
    path = tmp_path / "loans.csv"
    users_frame().to_csv(path, index=False)
    return path


def test_init_accepts_units_ids_and_dates_and_prints_the_report(
    healctl: Cli, users_csv: Path, config_file: Path
) -> None:
    """init succeeds, prints each check's verdict, leaves out the id and learns from the date's parts."""
    result = healctl("init", "--name", "loans", "--data", str(users_csv), "--target", "defaulted")
    assert result.code == 0, result.text
    assert "model loans created" in result.text
    assert "warn numbers_with_units" in result.text and "'20%'" not in result.text.split("rate")[0]
    assert "warn identifiers" in result.text and "loan_id" in result.text
    assert "warn dates" in result.text and "pass rows" in result.text
    heald = build(configuration.load(config_file), pool="inline")
    try:
        model = heald.store.get_model("loans")
        version = heald.store.get_version("loans", 1)
        assert "loan_id" not in model.features and "opened" in model.features
        assert {"rate", "amount", "balance"} <= set(version.profile["features"]["numeric"])
        assert version.profile["columns"]["rate"]["kind"] == "numeric"  # the reference holds numbers, not text
        assert version.metrics["accuracy"] > 0.75
    finally:
        heald.close()


def test_pipeline_run_prints_the_validation_report(healctl: Cli, users_csv: Path) -> None:
    """A later `pipeline run` on the same kind of file prints each check's verdict as init does."""
    assert healctl("init", "--name", "loans", "--data", str(users_csv), "--target", "defaulted").code == 0
    result = healctl("pipeline", "run", "loans", "--data", str(users_csv))
    assert result.code == 0, result.text
    assert "warn numbers_with_units" in result.text and "warn dates" in result.text and "pass schema" in result.text


def test_init_exclude_drops_a_column_everywhere(healctl: Cli, users_csv: Path, config_file: Path) -> None:
    """--exclude keeps the column out of the features, the profile and the written config's model entry."""
    result = healctl("init", "--name", "loans", "--data", str(users_csv), "--target", "defaulted", "--exclude", "grade")
    assert result.code == 0, result.text
    heald = build(configuration.load(config_file), pool="inline")
    try:
        model = heald.store.get_model("loans")
        assert "grade" not in model.features
        assert heald.store.get_version("loans", 1).profile["features"]["dropped"]["grade"] == "excluded by the config"
        written = configuration.load(heald.settings.state_dir / "heald.toml")
        assert [m.exclude for m in written.models if m.name == "loans"] == [["grade"]]
    finally:
        heald.close()


@pytest.fixture
def served(healctl: Cli, users_csv: Path, config_file: Path) -> Iterator[tuple[httpx.Client, Heald]]:
    assert healctl("init", "--name", "loans", "--data", str(users_csv), "--target", "defaulted").code == 0
    heald = build(configuration.load(config_file), pool="inline", clock=ManualClock())
    server = ApiServer(
        create_app(
            lambda: heald, Capture(heald.settings.landing, lambda: heald.store), Metrics(heald.store, heald.registry)
        ),
        "127.0.0.1",
        0,
    )
    port = server.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, heald
    server.stop()
    heald.close()


def test_predict_accepts_rows_in_the_shape_of_the_training_file(served: tuple[httpx.Client, Heald]) -> None:
    """Rows read from a file like the training one (units, id, date, even the target) are answered, not degraded,
    and the answers agree with the model's on the same rows as numbers."""
    client, heald = served
    rows = users_frame(40, seed=5).astype(object).to_dict(orient="records")
    answer = client.post("/models/loans/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == 40 and body["degraded"] is False and body["missing"] == []
    champion = heald.registry.champion("loans")
    assert champion is not None
    model = heald.store.get_model("loans")
    frame = users_frame(40, seed=5)
    frame = frame.assign(
        rate=frame["rate"].str.rstrip("%").astype(float),
        amount=frame["amount"].str.replace(r"[$,]", "", regex=True).astype(float),
        balance=frame["balance"].str.replace(",", "").astype(float),
    )
    expected = heald.registry.load(champion).predict(frame[list(model.features)])
    assert body["predictions"] == expected.tolist()
    without_target = [{k: v for k, v in r.items() if k != "defaulted"} for r in rows]
    assert (
        client.post("/models/loans/predict", json={"rows": without_target}).json()["predictions"] == expected.tolist()
    )
