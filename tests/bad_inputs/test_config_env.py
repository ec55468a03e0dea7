"""Bad configuration, in the file and in the environment: each is refused with a ConfigError naming the key
and the file, or the HEALD_* variable that carried it; unknown variables are ignored and named, never fatal;
the file itself is never touched (nothing lost)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load
from knowledge.errors import ConfigError

# name -> (file text, environment, words the message must hold); each must fail to load
BAD: dict[str, tuple[str, dict[str, str], str]] = {
    "unknown top-level key": ("checkout = 'main'\n", {}, "heald.toml: unknown key 'checkout'"),
    "unknown nested key": ("[policy]\nwindoww = 3\n", {}, "heald.toml: unknown key 'policy.windoww'"),
    "unknown table": ("[polcy]\nwindow = 3\n", {}, "heald.toml: unknown key 'polcy'"),
    "port is text": ("api_port = 'http'\n", {}, "key 'api_port' = 'http'"),
    "port out of range": ("api_port = 70000\n", {}, "key 'api_port' = 70000"),
    "negative batch size": ("batch_size = -5\n", {}, "key 'batch_size' = -5"),
    "zero tick": ("tick_seconds = 0\n", {}, "key 'tick_seconds' = 0"),
    "drift threshold 1": ("drift_threshold = 1.0\n", {}, "key 'drift_threshold' = 1.0"),
    "log level unknown": ("log_level = 'loud'\n", {}, "key 'log_level' = 'loud'"),
    "executor unknown": ("executor = 'gpu'\n", {}, "key 'executor' = 'gpu'"),
    "row limit zero": ("api_max_rows = 0\n", {}, "key 'api_max_rows' = 0"),
    "byte limit too small": ("api_max_bytes = 10\n", {}, "key 'api_max_bytes' = 10"),
    "policy window zero": ("[policy]\nwindow = 0\n", {}, "key 'policy.window' = 0"),
    "cv folds too many": ("[pipeline]\ncv_folds = 99\n", {}, "key 'pipeline.cv_folds' = 99"),
    "model without target": ("[[models]]\nname = 'a'\n", {}, "key 'models.0.target': Field required"),
    "model name with a slash": ("[[models]]\nname = 'a/b'\ntarget = 'y'\n", {}, "key 'models.0.name' = 'a/b'"),
    "models twice": (
        "[[models]]\nname = 'a'\ntarget = 'y'\n[[models]]\nname = 'a'\ntarget = 'z'\n",
        {},
        "repeated: ['a']",
    ),
    "models not a list": ("models = 'churn'\n", {}, "key 'models' = 'churn'"),
    "not TOML": ("api_port = \n", {}, "is not valid TOML"),
    "env: port is text": ("", {"HEALD_API_PORT": "http"}, "environment variable HEALD_API_PORT"),
    "env: nested value out of range": ("", {"HEALD_POLICY__WINDOW": "0"}, "environment variable HEALD_POLICY__WINDOW"),
    "env: boolean not a boolean": ("", {"HEALD_API_ENABLED": "perhaps"}, "environment variable HEALD_API_ENABLED"),
    "env: models entry lacks target": (
        "",
        {"HEALD_MODELS": '[{"name": "a"}]'},
        "environment variable HEALD_MODELS (over",
    ),
    "env: models not JSON": ("", {"HEALD_MODELS": "[oops"}, "environment variable HEALD_MODELS"),
    "env: log level": ("", {"HEALD_LOG_LEVEL": "LOUD"}, "environment variable HEALD_LOG_LEVEL"),
    "env: max rows negative": ("", {"HEALD_API_MAX_ROWS": "-1"}, "environment variable HEALD_API_MAX_ROWS"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_setting_names_its_key_and_where_it_came_from(tmp_path: Path, case: str) -> None:
    """ConfigError with the key and the file, plus the variable when the value came from the environment;
    the config file is left byte for byte as it was."""
    content, env, words = BAD[case]
    path = tmp_path / "heald.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path, environ=env)
    message = str(caught.value)
    assert words in message, message
    assert str(path) in message
    if env:
        assert next(iter(env)) in message
    assert path.read_text(encoding="utf-8") == content


# name -> (environment, the variables that must be reported as ignored); each must load
IGNORED: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "another tool's variable": ({"HEALD_CHECKOUT": "main"}, ("HEALD_CHECKOUT",)),
    "unknown nested key": ({"HEALD_POLICY__NOPE": "3"}, ("HEALD_POLICY__NOPE",)),
    "nested under a scalar": ({"HEALD_API_PORT__X": "3"}, ("HEALD_API_PORT__X",)),
    "internal field": ({"HEALD_SOURCE": "x", "HEALD_IGNORED_ENV": "y"}, ("HEALD_IGNORED_ENV", "HEALD_SOURCE")),
    "lower-case look-alike": ({"HEALD_api_portt": "1"}, ("HEALD_api_portt",)),
}


@pytest.mark.parametrize("case", sorted(IGNORED))
def test_unknown_variables_are_ignored_and_named(tmp_path: Path, case: str) -> None:
    """An unknown HEALD_* variable is not an error: the settings load, keep the file's values, and list the
    variable in ``ignored_env`` for the programs to warn about; a known variable beside it still applies."""
    env, names = IGNORED[case]
    path = tmp_path / "heald.toml"
    path.write_text("api_port = 9001\n", encoding="utf-8")
    settings = load(path, environ={**env, "HEALD_BATCH_SIZE": "42"})
    assert settings.ignored_env == names
    assert settings.api_port == 9001 and settings.batch_size == 42
