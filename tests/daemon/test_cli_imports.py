"""healctl's commands over the knowledge store start without the ML stack (issue 14, a fast CLI).

Each command runs in a fresh interpreter, as a shell runs it, against a store that holds a trained model
with a champion; afterwards the interpreter lists which of the heavy packages it imported. The commands an
operator types most (`--help`, `--version`, `status`, `incidents`, `models`, `history`) must import none of
them; a command that trains still does (the check can tell the two apart).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.compose import Heald, build
from daemon.config import load
from daemon.onboard import onboard
from pipeline.train import TrainParams
from tests.conftest import table

HEAVY = ("sklearn", "pandas", "scipy", "skops")

# Runs healctl's entry point with the given arguments, then prints the heavy packages the process imported.
PROBE = f"""
import sys
from daemon.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
print("IMPORTED=" + ",".join(sorted(p for p in {HEAVY} if p in sys.modules)))
"""


def imported(*args: str) -> list[str]:
    """The heavy packages a fresh interpreter imported to run ``healctl ARGS``; the command must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALD_", "_HEALCTL"))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("IMPORTED=")][-1]
    return [p for p in line.removeprefix("IMPORTED=").split(",") if p]


@pytest.fixture
def trained(config_file: Path) -> Iterator[Heald]:
    """The store behind ``config_file`` holds model ``m`` with a champion, so the commands have rows to show."""
    built = build(load(config_file, environ={}), pool="inline")
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    params = TrainParams(n_estimators=5, max_depth=4, n_jobs=1)
    onboard(built.store, built.registry, name="m", frame=table(300), target="y", now=now, params=params)
    yield built
    built.close()


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["--version"],
        ["status", "--json"],
        ["status"],
        ["incidents", "--json"],
        ["models", "--json"],
        ["models", "m"],
        ["history", "m", "--json"],
    ],
    ids=" ".join,
)
def test_read_only_commands_import_no_ml_stack(trained: Heald, config_file: Path, command: list[str]) -> None:
    """`healctl COMMAND` answers without importing scikit-learn, pandas, scipy or skops."""
    config = [] if command[0].startswith("--") else ["--config", str(config_file)]
    assert imported(*command, *config) == []


def test_a_command_that_needs_the_stack_still_gets_it(tmp_path: Path, config_file: Path) -> None:
    """`healctl drift` compares two tables, so it does import pandas and scipy: the probe sees imports."""
    frame = table(200)
    frame.to_csv(tmp_path / "ref.csv", index=False)
    table(200, seed=1).to_csv(tmp_path / "cur.csv", index=False)
    args = ["drift", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv")]
    found = imported(*args, "--target", "y", "--json", "--config", str(config_file))
    assert {"pandas", "scipy"} <= set(found)
