"""Runner: named stages with records, persisted outputs, retries with backoff, and resume from a failure."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import TransientError
from pipeline.runner import RetryPolicy, Runner, read_manifest
from pipeline.settings import RunConfig
from pipeline.stages import (
    EvaluateStage,
    FeaturesStage,
    FlakyStage,
    IngestStage,
    TrainStage,
    ValidateStage,
    model_of,
)
from pipeline.train import TrainParams, TuningParams


def config(data: Path) -> RunConfig:
    return RunConfig(
        model="m",
        data=[str(data)],
        target="churned",
        train=TrainParams(n_estimators=10),
        tuning=TuningParams(cv_folds=2),
    )


def counted() -> list[FlakyStage]:
    stages = [IngestStage(), ValidateStage(), FeaturesStage(), TrainStage(), EvaluateStage()]
    return [FlakyStage(s, failures=0) for s in stages]


def test_a_run_records_every_stage_and_keeps_its_outputs(tmp_path: Path, mixed_csv: Path) -> None:
    """Five records in order with durations and fingerprints; the manifest on disk says the same."""
    run = Runner(counted()).run(config(mixed_csv), tmp_path / "run")
    assert run.record.status == "succeeded"
    assert [s.stage for s in run.record.stages] == ["ingest", "validate", "features", "train", "evaluate"]
    assert all(s.status == "succeeded" and s.seconds > 0 and len(s.output_fingerprint) == 64 for s in run.record.stages)
    assert len({s.input_fingerprint for s in run.record.stages}) == 5
    assert read_manifest(tmp_path / "run").as_json() == run.record.as_json()
    assert (tmp_path / "run" / "features" / "preprocessor.skops").is_file()
    assert len(model_of(run).predict(run.value("features").test_rows)) == run.value("evaluate").test_rows


def test_a_run_failed_at_training_resumes_there_without_recomputing_earlier_stages(
    tmp_path: Path, mixed_csv: Path
) -> None:
    """The rerun reuses ingest, validate and features (not run again, records say 'reused', same fingerprints)."""
    stages = counted()
    train = stages[3]
    train.failures, train.error = 1, ValueError("out of luck")
    first = Runner(stages, retry=RetryPolicy(attempts=1)).run(config(mixed_csv), tmp_path / "first")
    assert first.record.status == "failed" and first.record.failed_stage == "train"
    assert first.record.stage("train").error == "ValueError: out of luck"
    assert first.record.stage("evaluate").status == "pending"
    assert [s.runs for s in stages] == [1, 1, 1, 1, 0]

    second = Runner(stages).resume(tmp_path / "first", tmp_path / "second")
    assert second.record.status == "succeeded" and second.record.resumed_from == str(tmp_path / "first")
    assert [s.runs for s in stages] == [1, 1, 1, 2, 1]  # earlier stages were not run again
    statuses = {s.stage: s.status for s in second.record.stages}
    assert statuses == {
        "ingest": "reused",
        "validate": "reused",
        "features": "reused",
        "train": "succeeded",
        "evaluate": "succeeded",
    }
    for name in ("ingest", "validate", "features"):
        assert second.record.stage(name).output_fingerprint == first.record.stage(name).output_fingerprint
        assert second.record.stage(name).folder == first.record.stage(name).folder
    assert stages[2].loads == 1  # the features' outputs were read back from disk, once
    assert not (tmp_path / "second" / "features").exists()


def test_transient_failures_are_retried_with_growing_delays(tmp_path: Path, mixed_csv: Path) -> None:
    """Two transient failures, then success: three attempts recorded, and the runner slept 0.5 s then 1 s."""
    stages = counted()
    stages[0].failures = 2
    slept: list[float] = []
    run = Runner(stages, retry=RetryPolicy(attempts=3, first_delay=0.5), sleep=slept.append).run(
        config(mixed_csv), tmp_path / "run"
    )
    assert run.record.status == "succeeded"
    assert run.record.stage("ingest").attempts == 3 and slept == [0.5, 1.0]


def test_a_transient_failure_that_persists_fails_the_run(tmp_path: Path, mixed_csv: Path) -> None:
    """After the last attempt the stage fails with the error, and no later stage runs."""
    stages = counted()
    stages[1].failures, stages[1].error = 5, TransientError("disk busy")
    run = Runner(stages, retry=RetryPolicy(attempts=2), sleep=lambda _: None).run(config(mixed_csv), tmp_path / "r")
    assert run.record.failed_stage == "validate" and run.record.stage("validate").attempts == 2
    assert run.record.error == "disk busy" and stages[2].runs == 0


def test_damaged_outputs_are_computed_again_not_trusted(tmp_path: Path, mixed_csv: Path) -> None:
    """If a kept stage's files changed since, the rerun starts from that stage instead of reusing it."""
    stages = counted()
    stages[3].failures, stages[3].error = 1, ValueError("x")
    Runner(stages, retry=RetryPolicy(attempts=1)).run(config(mixed_csv), tmp_path / "first")
    report = tmp_path / "first" / "validate" / "report.json"
    report.write_text(json.dumps({"tampered": True}), encoding="utf-8")
    second = Runner(stages).resume(tmp_path / "first", tmp_path / "second")
    assert second.record.status == "succeeded"
    assert [s.status for s in second.record.stages][:3] == ["reused", "succeeded", "succeeded"]
    assert stages[1].runs == 2
