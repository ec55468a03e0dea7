"""healctl as a person runs it: real processes, real files, clear errors and no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEALCTL = str(Path(sys.executable).parent / "healctl")


def healctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HEALD_")}
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [HEALCTL, *args], check=False, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "heald.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n{extra}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api_port = 'x'\n", "key 'api_port' = 'x'"),
        ("nonsense = 1\n", "unknown key 'nonsense'"),
        ("api_port = \n", "is not valid TOML"),
        ("max_depth = -3\n", "key 'max_depth' = -3"),
    ],
)
def test_config_check_names_the_problem_and_exits_nonzero(tmp_path: Path, text: str, message: str) -> None:
    """A malformed config, an unknown key or a wrong type: one clear line on stderr, exit 2, no traceback."""
    path = config_file(tmp_path, text)
    result = healctl("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist is named."""
    result = healctl("status", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://heald@127.0.0.1:1/heald", "cannot reach the knowledge store"),
        ("not a url", "is not a valid SQLAlchemy URL"),
        ("oracle+nodriver://x@y/z", "unsupported backend"),
    ],
)
def test_unreachable_or_invalid_database_url(tmp_path: Path, url: str, message: str) -> None:
    """A database that cannot be reached (or named) is a clear error (exit 2: heald cannot start on it)."""
    result = healctl("status", "--config", str(config_file(tmp_path)), env={"HEALD_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_prints_the_effective_settings(tmp_path: Path) -> None:
    """A valid config is echoed with environment overrides applied, as JSON for scripts."""
    result = healctl(
        "config", "check", "--json", "--config", str(config_file(tmp_path)), env={"HEALD_API_PORT": "9123"}
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["api_port"] == 9123 and data["api_host"] == "127.0.0.1"


def test_usage_errors_exit_nonzero_without_traceback(tmp_path: Path) -> None:
    """An unknown command or a bad argument type is a usage error."""
    for args in (["frobnicate"], ["incidents", "not-a-number"], ["silence", "m", "--hours", "x"]):
        result = healctl(*args, "--config", str(config_file(tmp_path)))
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr + result.stdout


def test_unknown_model_and_incident_are_named(tmp_path: Path) -> None:
    """Asking about things that do not exist names them, with exit status 3 (not found)."""
    path = str(config_file(tmp_path))
    result = healctl("models", "ghost", "--config", path)
    assert result.returncode == 3 and "no model named 'ghost'" in result.stderr
    result = healctl("incidents", "42", "--config", path)
    assert result.returncode == 3 and "no incident 42" in result.stderr
