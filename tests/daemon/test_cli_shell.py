"""healctl in a shell: tables that survive pipes, --version, completion, exit statuses, and `promote`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.compose import Heald, build
from daemon.config import load
from daemon.exit_codes import ExitCode
from daemon.onboard import onboard
from daemon.output import number, rounded
from daemon.service import Service
from knowledge.values import (
    ActionKind,
    ActionState,
    Alias,
    IncidentStatus,
    ModelRecord,
    Severity,
    Symptom,
    SymptomKind,
    Task,
)
from pipeline.train import TrainParams
from tests.conftest import Cli, table

BIN = Path(sys.executable).parent
LONG = "accuracy 0.6123 on the newest 500 labelled rows is below the floor 0.80 of model churn-with-a-long-name"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command as a shell pipeline runs it: stdout is a pipe, the terminal 80 columns wide."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HEALD_", "_HEALCTL"))}
    full.update({"COLUMNS": "80", **(env or {})})
    return subprocess.run(list(args), check=False, capture_output=True, text=True, env=full, timeout=120)


@pytest.fixture
def wired(config_file: Path) -> Iterator[Heald]:
    """The heald behind ``config_file`` (the same store the in-process ``healctl`` fixture opens)."""
    built = build(load(config_file, environ={}), pool="inline")
    yield built
    built.close()


def add_incidents(heald: Heald) -> list[int]:
    """Three incidents with long summaries: one resolved, one escalated, one open (of another kind: a model has
    at most one active incident per kind, so a second one would join the escalated one)."""
    at = datetime(2026, 1, 5, 12, tzinfo=UTC)
    model = "churn-with-a-long-name"
    heald.store.add_model(ModelRecord(name=model, task=Task.CLASSIFICATION, target="y", features=["a"], created_at=at))
    ids = []
    kinds = (SymptomKind.PERFORMANCE_DROP, SymptomKind.PERFORMANCE_DROP, SymptomKind.DATA_DRIFT)
    statuses = (IncidentStatus.RESOLVED, IncidentStatus.ESCALATED, IncidentStatus.OPEN)
    for n, (kind, status) in enumerate(zip(kinds, statuses, strict=True)):
        symptom = Symptom(
            at=at + timedelta(hours=n),
            model=model,
            kind=kind,
            severity=Severity.WARNING,
            score=0.45416666666666666,
            summary=LONG,
        )
        incident = heald.store.open_incident(symptom)
        heald.store.update_incident(incident.id, status=status, updated_at=at + timedelta(hours=n))
        ids.append(incident.id)
    return ids


def test_incidents_in_a_pipe_keep_every_id_and_full_status(wired: Heald, config_file: Path) -> None:
    """`healctl incidents | cat` at 80 columns: a header and one tab-separated line per incident, nothing cut."""
    ids = add_incidents(wired)
    result = run(str(BIN / "healctl"), "incidents", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["id", "model", "kind", "status", "opened", "resolved", "actions", "summary"]
    rows = [line.split("\t") for line in lines]
    assert sorted(int(r[0]) for r in rows) == sorted(ids)
    assert sorted(r[3] for r in rows) == ["escalated", "open", "resolved"]
    assert all(r[7] == LONG and r[1] == "churn-with-a-long-name" for r in rows)
    assert len([line for line in lines if "escalated" in line]) == 1  # what `| grep escalated` finds


def test_both_programs_print_their_version() -> None:
    """`healctl --version` and `heald --version` print the installed distribution's version and exit 0."""
    expected = version("heald")
    for program in ("healctl", "heald"):
        result = run(str(BIN / program), "--version")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{program} {expected}"


def test_shell_completion_offers_commands() -> None:
    """Bash completion is on: completing `healctl pro` offers `promote`; `--install-completion` is offered."""
    env = {"_HEALCTL_COMPLETE": "complete_bash", "COMP_WORDS": "healctl pro", "COMP_CWORD": "1"}
    result = run(str(BIN / "healctl"), env=env)
    assert result.returncode == 0, result.stderr
    assert "promote" in result.stdout.split()
    assert "--install-completion" in run(str(BIN / "healctl"), "--help", env={"COLUMNS": "200"}).stdout


def test_help_shows_the_config_default_and_the_exit_statuses() -> None:
    """`--config` names where the config comes from when it is not given; the top help lists exit statuses."""
    result = run(str(BIN / "healctl"), "status", "--help", env={"COLUMNS": "200"})
    assert "$HEALD_CONFIG" in result.stdout and "/etc/heald/heald.toml" in result.stdout
    top = run(str(BIN / "healctl"), "--help", env={"COLUMNS": "200"})
    assert "3 not found" in top.stdout and "4 refused" in top.stdout


def test_exit_statuses_tell_failures_apart(tmp_path: Path, config_file: Path) -> None:
    """Usage 2, not found 3, failure 1: a script can tell a typo from a missing model from a dead store."""
    healctl, config = str(BIN / "healctl"), str(config_file)
    assert run(healctl, "frobnicate").returncode == ExitCode.USAGE
    assert run(healctl, "status", "--config", str(tmp_path / "absent.toml")).returncode == ExitCode.USAGE
    assert run(healctl, "models", "ghost", "--config", config).returncode == ExitCode.NOT_FOUND
    assert run(healctl, "incidents", "42", "--config", config).returncode == ExitCode.NOT_FOUND
    dead = {"HEALD_DATABASE_URL": "postgresql+psycopg://heald@127.0.0.1:1/heald"}
    # A store that cannot be opened is a start-up failure: status 2, like every start-up failure (issue 10).
    assert run(healctl, "status", "--config", config, env=dead).returncode == ExitCode.USAGE


@pytest.fixture
def two_versions(wired: Heald) -> Heald:
    """Model m with v1 (champion, stable) and v2 (registered, not serving)."""
    now = wired.clock.now()
    params = TrainParams(n_estimators=10, max_depth=4, n_jobs=1)
    first = onboard(wired.store, wired.registry, name="m", frame=table(400), target="y", now=now, params=params)
    estimator = wired.registry.load(first)
    wired.registry.register("m", estimator, at=now, reference=wired.registry.reference(first), metrics=first.metrics)
    return wired


def test_promote_moves_the_champion_and_is_journaled(two_versions: Heald, healctl: Cli) -> None:
    """`healctl promote m 2 --reason ...` makes v2 champion, records who and why, and journals the action."""
    result = healctl("promote", "m", "2", "--reason", "release 2.0 approved")
    assert result.code == 0, result.text
    assert two_versions.store.alias("m", Alias.CHAMPION) == 2
    move = two_versions.store.alias_history("m", Alias.CHAMPION)[-1]
    assert (move.actor, move.reason, move.from_version, move.to_version) == ("healctl", "release 2.0 approved", 1, 2)
    action = two_versions.store.actions(model="m", kind=ActionKind.PROMOTE)[-1]
    assert action.state is ActionState.SUCCEEDED and move.action_id == action.id


def test_promote_refuses_a_rolled_back_version_unless_forced(two_versions: Heald, healctl: Cli) -> None:
    """A version that was rolled back needs --force (a person's decision); the refusal exits 4 and is journaled."""
    assert healctl("promote", "m", "2", "--reason", "try v2").code == 0
    two_versions.registry.rollback("m", at=two_versions.clock.now(), actor="heald", reason="v2 was worse")
    refused = healctl("promote", "m", "2", "--reason", "again")
    assert refused.code == ExitCode.REFUSED and "was rolled back" in refused.text
    assert two_versions.store.alias("m", Alias.CHAMPION) == 1
    assert two_versions.store.actions(model="m", kind=ActionKind.PROMOTE)[-1].state is ActionState.FAILED
    forced = healctl("promote", "m", "2", "--reason", "person checked it", "--force")
    assert forced.code == 0, forced.text
    assert two_versions.store.alias("m", Alias.CHAMPION) == 2


def test_promote_refuses_a_file_that_does_not_verify(two_versions: Heald, healctl: Cli) -> None:
    """Like a rollback, a promotion never points the champion at an artifact whose sha256 does not match."""
    artifact = two_versions.settings.artifacts / two_versions.registry.version("m", 2).artifact
    artifact.write_bytes(b"not a model")
    result = healctl("promote", "m", "2", "--reason", "x", "--force")
    assert result.code == ExitCode.REFUSED and "v0002" in result.text
    assert two_versions.store.alias("m", Alias.CHAMPION) == 1


def test_promote_of_an_unknown_version_exits_not_found(two_versions: Heald, healctl: Cli) -> None:
    """A version that does not exist is named, with exit status 3."""
    result = healctl("promote", "m", "9", "--reason", "x")
    assert result.code == ExitCode.NOT_FOUND and "9" in result.text


def test_submit_drops_a_batch_the_next_tick_takes_in(two_versions: Heald, healctl: Cli, tmp_path: Path) -> None:
    """`healctl submit m FILE` leaves one whole file in landing/m (no partial dot-file); a tick accepts it
    and logs `batch_accepted`; the daemon creates every model's landing folder itself."""
    landing = two_versions.settings.landing / "m"
    Service(two_versions, None).landing_folders()
    assert landing.is_dir()
    batch = tmp_path / "monday.csv"
    table(60, seed=3).to_csv(batch, index=False)
    result = healctl("submit", "m", str(batch))
    assert result.code == 0, result.text
    [dropped] = list(landing.iterdir())
    assert dropped.name.startswith("monday-") and dropped.suffix == ".csv"
    assert dropped.read_bytes() == batch.read_bytes()
    with capture_logs() as logs:
        two_versions.loop.tick()
    [accepted] = two_versions.store.batches("m")
    assert accepted.rows == 60 and accepted.labelled
    assert any(e["event"] == "batch_accepted" and e["batch_id"] == accepted.id for e in logs)
    assert not list(landing.iterdir())


def test_submit_refuses_what_is_not_a_batch(two_versions: Heald, healctl: Cli, tmp_path: Path) -> None:
    """A file of another kind, a missing file (usage, 2) or an unknown model (3) is named; nothing lands."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert healctl("submit", "m", str(notes)).code == ExitCode.USAGE
    assert healctl("submit", "m", str(tmp_path / "absent.csv")).code == ExitCode.USAGE
    assert healctl("submit", "ghost", str(notes)).code == ExitCode.NOT_FOUND
    landing = two_versions.settings.landing / "m"
    assert not landing.exists() or not list(landing.iterdir())


def test_numbers_for_people_are_rounded() -> None:
    """Floats shown to people keep four significant digits, inside dicts and lists too; the rest is untouched."""
    shown = rounded({"accuracy": 0.45416666666666666, "rows": 500, "scores": [123.456789, 0.000123456], "ok": True})
    assert shown == {"accuracy": 0.4542, "rows": 500, "scores": [123.5, 0.0001235], "ok": True}
    assert number(0.45416666666666666) == "0.4542" and number(None) == "-"
