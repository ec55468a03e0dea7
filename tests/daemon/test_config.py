"""Configuration: TOML plus HEALD_* overrides, validated once, with errors naming key, value and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load
from knowledge.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "heald.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_table2_settings_are_read_from_the_file(tmp_path: Path) -> None:
    """Every setting of the paper's Table 2 exists and is read from TOML."""
    path = write(
        tmp_path,
        'data_path = "/srv/landing"\nmodel_path = "/srv/models"\nbatch_size = 256\nn_estimators = 300\n'
        'max_depth = 12\napi_host = "127.0.0.1"\napi_port = 9001\nlog_level = "debug"\ndrift_threshold = 0.01\n'
        'state_dir = "/srv/heald"\n',
    )
    s = load(path, environ={})
    assert (s.landing, s.artifacts, s.batch_size, s.n_estimators, s.max_depth) == (
        Path("/srv/landing"),
        Path("/srv/models"),
        256,
        300,
        12,
    )
    assert (s.api_host, s.api_port, s.log_level, s.drift_threshold) == ("127.0.0.1", 9001, "debug", 0.01)
    assert s.database == "sqlite:////srv/heald/heald.db"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """HEALD_<KEY> overrides a top-level key and HEALD_POLICY__<KEY> a nested one."""
    path = write(tmp_path, "api_port = 9001\n[policy]\nwindow = 3\n")
    s = load(path, environ={"HEALD_API_PORT": "9100", "HEALD_POLICY__WINDOW": "7", "HEALD_MAX_DEPTH": "5"})
    assert (s.api_port, s.policy.window, s.max_depth) == (9100, 7, 5)


def test_defaults_bind_the_api_to_loopback() -> None:
    """With no file at all the API listens on 127.0.0.1 only."""
    assert load(None, environ={}).api_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("api_port = 'eighty'\n", {}, r"key 'api_port' = 'eighty': Input should be a valid integer"),
        ("api_port = 70000\n", {}, r"key 'api_port' = 70000: Input should be less than or equal to 65535"),
        ("colour = 'blue'\n", {}, r"unknown key 'colour'"),
        ("[policy]\nwindw = 3\n", {}, r"unknown key 'policy.windw'"),
        ("log_level = 'loud'\n", {}, r"key 'log_level' = 'loud'"),
        ("drift_threshold = 2\n", {}, r"key 'drift_threshold' = 2"),
        ("", {"HEALD_N_ESTIMATORS": "many"}, r"key 'n_estimators' = 'many'"),
        ("[[models]]\nname = 'bad name!'\ntarget = 'y'\n", {}, r"key 'models.0.name'"),
        ("[[models]]\nname = 'a'\n", {}, r"key 'models.0.target': Field required"),
        ("api_port = \n", {}, r"is not valid TOML"),
    ],
)
def test_bad_settings_name_the_key_value_and_file(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    """Each kind of mistake gives a ConfigError that says which key, which value and which file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load(path, environ=env)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """Pointing at a file that does not exist is an error, not a silent fall back to defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", environ={})


def test_duplicate_model_names_are_refused(tmp_path: Path) -> None:
    """Two [[models]] with one name would be ambiguous."""
    path = write(tmp_path, "[[models]]\nname = 'a'\ntarget = 'y'\n[[models]]\nname = 'a'\ntarget = 'z'\n")
    with pytest.raises(ConfigError, match="repeated: \\['a'\\]"):
        load(path, environ={})


def test_redacted_view_hides_secrets(tmp_path: Path) -> None:
    """config check never prints the API token or a database password."""
    path = write(tmp_path, "api_token = 's3cret'\ndatabase_url = 'postgresql+psycopg://u:pw@db/heald'\n")
    shown = load(path, environ={}).redacted()
    assert shown["api_token"] == "***"
    assert "pw" not in shown["database_url"] and shown["database_url"].endswith("@db/heald")
