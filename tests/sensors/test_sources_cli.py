"""`healctl sources` shows each pulled stream's state (watermark, rows, lag, errors) as a table and as JSON; a
source's settings are checked when the config is loaded, its URL password is masked by `config check`, and a
URL whose environment variable is missing fails the pulls (a source incident), not healctl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine

from daemon import config as configuration
from daemon.compose import build
from knowledge.clock import ManualClock
from knowledge.errors import ConfigError
from sensors.sources.base import Stream
from tests.conftest import Cli
from tests.sensing import MODEL, TARGET, shop_rows
from tests.sources import onboard_shop, tick


def write_config(path: Path, state: Path, source: str) -> Path:
    path.write_text(
        f'state_dir = "{state}"\nn_estimators = 20\nexecutor = "inline"\n[monitor]\nanomaly = false\n'
        f'[[models]]\nname = "{MODEL}"\ntarget = "{TARGET}"\ntask = "classification"\n'
        f"[models.source]\n{source}\n",
        encoding="utf-8",
    )
    return path


def sqlite_source(db: Path) -> str:
    return (
        f'kind = "sql"\nurl = "sqlite:///{db}"\nquery = "SELECT * FROM visits WHERE id >= :watermark"\n'
        'watermark = "id"\nkey = "id"\nstart = "0"\n'
    )


def test_sources_shows_the_watermark_rows_and_errors_as_json_and_as_a_table(
    tmp_path: Path, healctl: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """After one pull of 40 rows from a SQLite table, `healctl sources shop --json` reports the rows stream with
    watermark 40 (the highest id), 40 rows in 1 batch and no failures; the table names the same; an unknown
    model is not found (exit 3)."""
    db = tmp_path / "users.db"
    frame = shop_rows(40, np.random.default_rng(1))
    frame.insert(0, "id", range(1, 41))
    frame.to_sql("visits", create_engine(f"sqlite:///{db}"), index=False)
    config = write_config(tmp_path / "heald.toml", tmp_path / "state", sqlite_source(db))
    clock = ManualClock()
    heald = build(configuration.load(config, environ={}), clock=clock, pool="inline")
    onboard_shop(heald, clock)
    tick(heald, clock)
    heald.close()
    capsys.readouterr()  # the daemon's own log lines, not healctl's answer
    shown = healctl("sources", MODEL, "--json", config=config)
    table = healctl("sources", config=config)
    missing = healctl("sources", "nosuch", config=config)
    [stream] = json.loads(shown.stdout)
    assert shown.code == 0 and stream["stream"] == Stream.ROWS and stream["kind"] == "sql"
    assert (stream["watermark"], stream["rows"], stream["batches"], stream["failures"]) == (40, 40, 1, 0)
    assert table.code == 0 and "rows" in table.stdout and "40" in table.stdout
    assert missing.code == 3 and "nosuch" in missing.text


def test_a_missing_url_variable_fails_the_pulls_not_healctl(
    tmp_path: Path, healctl: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`url_env` names a variable this shell does not have: healctl still works, and the daemon's pull fails
    with a `source_failed` reading that names the variable."""
    monkeypatch.delenv("SHOP_DB_URL", raising=False)
    source = 'kind = "sql"\nurl_env = "SHOP_DB_URL"\nquery = "SELECT 1"\nwatermark = "id"\nkey = "id"\nstart = "0"\n'
    config = write_config(tmp_path / "heald.toml", tmp_path / "state", source)
    clock = ManualClock()
    heald = build(configuration.load(config, environ={}), clock=clock, pool="inline")
    try:
        onboard_shop(heald, clock)
        tick(heald, clock)
        [reading] = heald.store.observations(MODEL, metric="source_failed")
    finally:
        heald.close()
    assert healctl("status", config=config).code == 0
    assert reading.value == 1.0 and "SHOP_DB_URL" in str(reading.evidence["error"])


def test_a_sql_source_without_its_query_is_refused_naming_the_key(tmp_path: Path) -> None:
    """A sql source must say what to read: the config error names the model's source table and what is missing."""
    config = write_config(tmp_path / "heald.toml", tmp_path / "state", 'kind = "sql"\nurl = "sqlite://"\nkey = "id"\n')
    with pytest.raises(ConfigError) as caught:
        configuration.load(config, environ={})
    assert "models.0.source" in str(caught.value)
    assert "query" in str(caught.value) and "watermark" in str(caught.value) and "start" in str(caught.value)


def test_config_check_masks_the_password_of_a_source_url(tmp_path: Path, healctl: Cli) -> None:
    """A password written in a source's URL is shown as *** by `config check`."""
    source = (
        'kind = "sql"\nurl = "postgresql+psycopg://reader:hunter2@db.internal/shop"\nquery = "SELECT 1"\n'
        'watermark = "id"\nkey = "id"\nstart = "0"\n'
    )
    config = write_config(tmp_path / "heald.toml", tmp_path / "state", source)
    result = healctl("config", "check", "--json", config=config)
    assert result.code == 0 and "hunter2" not in result.stdout
    assert json.loads(result.stdout)["models"][0]["source"]["url"] == "postgresql+psycopg://reader:***@db.internal/shop"


def test_the_landing_folder_stays_the_default_source(tmp_path: Path) -> None:
    """A model without a `source` table takes batches from the landing folder only: nothing is pulled."""
    config = tmp_path / "heald.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[[models]]\nname = "m"\ntarget = "y"\n', encoding="utf-8")
    settings = configuration.load(config, environ={})
    heald = build(settings, pool="inline")
    try:
        puller = heald.loop.p.sources
    finally:
        heald.close()
    assert settings.models[0].source.kind == "landing"
    assert puller is not None and puller.sources == {}
