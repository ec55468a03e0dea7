"""The rerun action: a pipeline run that failed at training is resumed from there, by the loop or healctl."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from actuators.runs import recorded_run
from daemon import config as configuration
from daemon.compose import Heald, build, runs_folder
from daemon.onboard import run_config
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, ActionState, IncidentStatus, PipelineRun, SymptomKind
from pipeline.runner import RetryPolicy, Runner
from pipeline.stages import FlakyStage, standard_stages
from tests.conftest import Cli


@pytest.fixture
def heald(healctl: Cli, config_file: Path, mixed_csv: Path):  # type: ignore[no-untyped-def]
    assert healctl("init", "--name", "churn", "--data", str(mixed_csv), "--target", "churned").code == 0
    clock = ManualClock()
    heald = build(configuration.load(config_file), clock=clock, pool="inline")
    yield heald
    heald.close()


def fail_at_training(heald: Heald, data: Path) -> PipelineRun:
    """A recorded pipeline run of churn whose train stage fails (as a crashed worker would make it)."""
    stages = standard_stages()
    stages[3] = FlakyStage(stages[3], failures=1, error=RuntimeError("worker lost"))
    model = heald.store.get_model("churn")
    config = run_config(heald.settings, name="churn", data=[data], target="churned", task=model.task)
    done = recorded_run(
        heald.store,
        Runner(stages, retry=RetryPolicy(attempts=1)),
        root=runs_folder(heald.settings),
        now=heald.clock.now(),
        trigger="operator",
        actor="healctl",
        config=config,
    )
    assert done.row.status == "failed" and done.row.failed_stage == "train"
    return done.row


def test_healctl_pipeline_rerun_reuses_the_stages_before_the_failure(
    heald: Heald, healctl: Cli, mixed_csv: Path
) -> None:
    """The rerun's stage records say ingest, validate and features were reused, with the failed run's
    fingerprints and folders; train and evaluate ran; the new version is registered."""
    failed = fail_at_training(heald, mixed_csv)
    result = healctl("pipeline", "rerun", "churn", "--json")
    assert result.code == 0, result.text
    out = json.loads(result.stdout)
    assert out["reused"] == ["ingest", "validate", "features"] and out["version"] == 2
    rerun = heald.store.pipeline_runs("churn")[-1]
    assert rerun.resumed_from == failed.id and rerun.status == "succeeded" and rerun.trigger == "rerun"
    before = {s.stage: s for s in failed.stages}
    for stage in rerun.stages:
        if stage.stage in ("ingest", "validate", "features"):
            assert stage.status == "reused" and stage.attempts == 0
            assert stage.output_fingerprint == before[stage.stage].output_fingerprint
            assert stage.folder == before[stage.stage].folder
        else:
            assert stage.status == "succeeded" and not stage.folder.startswith(failed.folder)
    [action] = heald.store.actions(model="churn", kind=ActionKind.RERUN)
    assert action.state is ActionState.SUCCEEDED and action.actor == "healctl"
    again = healctl("pipeline", "rerun", "churn")
    assert again.code == 1 and "no failed pipeline run" in again.text


def test_the_loop_answers_a_failed_run_with_a_rerun_and_resolves(heald: Heald, mixed_csv: Path) -> None:
    """pipeline_failed opens an incident, the planner picks rerun, the rerun succeeds and the incident clears."""
    fail_at_training(heald, mixed_csv)
    clock = heald.clock
    assert isinstance(clock, ManualClock)
    reports = []
    for _ in range(5):
        clock.advance(timedelta(minutes=1))
        reports.append(heald.loop.tick())
    [incident] = heald.store.list_incidents(model="churn")
    assert incident.kind is SymptomKind.PIPELINE_FAILED and "failed at train" in incident.summary
    [action] = heald.store.actions(incident_id=incident.id)
    assert action.kind is ActionKind.RERUN and action.state is ActionState.SUCCEEDED
    assert action.result["reused"] == ["ingest", "validate", "features"]
    assert heald.store.get_incident(incident.id).status is IncidentStatus.RESOLVED
    assert heald.store.pipeline_runs("churn")[-1].status == "succeeded"


def test_a_run_interrupted_by_a_crash_is_settled_on_restart_and_can_be_rerun(
    heald: Heald, healctl: Cli, mixed_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run left `running` (heald died mid-training) becomes failed at its unfinished stage on reconcile,
    and `healctl pipeline rerun` then resumes it from there."""
    failed = fail_at_training(heald, mixed_csv)
    heald.store.finish_pipeline_run(failed.id, status="running", at=heald.clock.now())
    train = next(s for s in failed.stages if s.stage == "train")
    heald.store.record_stage(failed.id, replace(train, status="running", error=None))
    heald.loop.reconcile()
    settled = heald.store.get_pipeline_run(failed.id)
    assert settled.status == "failed" and settled.failed_stage == "train"
    assert settled.error is not None and "interrupted" in settled.error
    assert "pipeline_run_reconciled" in capsys.readouterr().out
    result = healctl("pipeline", "rerun", "churn", "--json")
    assert result.code == 0, result.text
    assert json.loads(result.stdout)["reused"] == ["ingest", "validate", "features"]


def test_only_the_newest_run_folders_are_kept(heald: Heald, mixed_csv: Path) -> None:
    """Stage outputs of old runs are deleted (their rows stay), so a long-running daemon does not fill the disk."""
    for _ in range(6):
        fail_at_training(heald, mixed_csv)
    runs = heald.store.pipeline_runs("churn", limit=100)
    assert len(runs) == 7
    on_disk = [r for r in runs if Path(r.folder).is_dir()]
    assert [r.id for r in on_disk] == [r.id for r in runs[-5:]]
