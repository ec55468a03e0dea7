"""The deployment files that ship with heald are valid: the unit verifies and is hardened, and the example
config loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import load

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "heald.service"
ANALYZE = shutil.which("systemd-analyze")


def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's heald, so verify can check the command."""
    text = UNIT.read_text().replace("/opt/heald/bin/heald", str(Path(sys.executable).parent / "heald"))
    copy = tmp_path / "heald.service"
    copy.write_text(text)
    return copy


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_verifies_without_errors(tmp_path: Path) -> None:
    """systemd-analyze verify finds no unknown keys or bad values (recursive errors make warnings fail)."""
    result = subprocess.run(
        [str(ANALYZE), "verify", "--recursive-errors=yes", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_is_hardened(tmp_path: Path) -> None:
    """The offline security score stays at or below exposure 2.0 (a naive unit scores about 9.6)."""
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", "--threshold=20", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-500:]


def test_unit_speaks_the_daemon_protocol() -> None:
    """Type=notify with a watchdog, reload by SIGHUP, and no restart loop on configuration errors."""
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=2", "WatchdogSec="):
        assert line in text


def test_example_config_loads() -> None:
    """The commented example config is valid as shipped."""
    settings = load(ROOT / "systemd" / "heald.example.toml", environ={})
    assert settings.api_host == "127.0.0.1" and settings.models[0].name == "churn"
