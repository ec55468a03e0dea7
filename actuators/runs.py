"""Recorded pipeline runs: the bridge from ``pipeline.runner`` to the knowledge store, and the judgement
that turns a finished run into a version (promoted only if it is not worse than the champion).

``recorded_run`` writes the run's row before its first stage and every stage's record as it changes, so
a crash mid-run leaves a row that says how far it got. ``register_run`` stores the run's model as a new
version with its metrics, health, dataset description, evaluation and reference profile (what the data
sensors compare batches with); ``promote_if_not_worse`` scores the champion on the run's own held-out rows
and moves ``champion`` only if the new version is at least as good (plus the configured margin).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knowledge.errors import ActionError, ArtifactError, StoreError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, PipelineRun, StageRun, Version
from pipeline.evaluate import Evaluation, primary_metric, score
from pipeline.profile import profile_version
from pipeline.runner import Run, Runner, RunRecord, StageListener, StageRecord
from pipeline.settings import RunConfig
from pipeline.stages import Engineered, Forest, Ingested, model_of

KEEP_RUNS = 5  # run folders kept per model; a 100k-row run's stage outputs take about 170 MB


def prune_runs(store: SqlKnowledgeStore, model: str, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the stage outputs of all but the newest ``keep`` runs of ``model`` (their rows stay)."""
    runs = store.pipeline_runs(model, limit=10_000)
    removed = []
    for old in runs[: max(len(runs) - keep, 0)]:
        folder = Path(old.folder)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(old.folder)
    return removed


def interrupted(store: SqlKnowledgeStore, model: str, at: datetime) -> list[PipelineRun]:
    """Mark runs a crash left ``running`` as failed at their first unfinished stage, so ``rerun`` can resume them."""
    settled = []
    for run in store.pipeline_runs(model, status="running", limit=100):
        unfinished = next((s.stage for s in run.stages if s.status not in ("succeeded", "reused")), None)
        settled.append(
            store.finish_pipeline_run(
                run.id, status="failed", at=at, failed_stage=unfinished, error="interrupted: heald stopped mid-run"
            )
        )
    return settled


def run_folder(root: Path, model: str, now: datetime) -> Path:
    """A new folder for a run of ``model``: time-ordered, unique even within one second."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    folder = root / model / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = root / model / f"{stamp}-{n}"
    return folder


class StoreListener:
    """Records every stage change in the knowledge store, then passes it on (e.g. to progress bars)."""

    def __init__(self, store: SqlKnowledgeStore, run_id: int, forward: StageListener | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.forward = forward
        self._seeded = False

    def stage_changed(self, run: RunRecord, record: StageRecord) -> None:
        if not self._seeded:  # every stage gets its row at once, so a run shows what is still to come
            for position, stage in enumerate(run.stages):
                self.store.record_stage(self.run_id, stage_run(stage, position))
            self._seeded = True
        position = [s.stage for s in run.stages].index(record.stage)
        self.store.record_stage(self.run_id, stage_run(record, position))
        if self.forward is not None:
            self.forward.stage_changed(run, record)


def stage_run(record: StageRecord, position: int) -> StageRun:
    return StageRun(
        stage=record.stage,
        position=position,
        status=record.status,
        folder=record.folder,
        started_at=record.started_at,
        finished_at=record.finished_at,
        seconds=record.seconds,
        attempts=record.attempts,
        input_fingerprint=record.input_fingerprint,
        output_fingerprint=record.output_fingerprint,
        error=record.error,
        summary=record.summary,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """A finished run: its row in the store and the run itself (whose outputs can be read)."""

    row: PipelineRun
    run: Run


def recorded_run(
    store: SqlKnowledgeStore,
    runner: Runner,
    *,
    root: Path,
    now: datetime,
    trigger: str,
    actor: str,
    config: RunConfig | None = None,
    resume: PipelineRun | None = None,
    action_id: int | None = None,
    forward: StageListener | None = None,
) -> Recorded:
    """Run the pipeline (``config``) or resume a failed run (``resume``), recording it as it goes."""
    model = resume.model if resume is not None else config.model if config is not None else ""
    folder = run_folder(root, model, now)
    row = store.add_pipeline_run(
        model=model,
        folder=str(folder),
        trigger=trigger,
        actor=actor,
        started_at=now,
        config=(config.as_json() if config is not None else {"resumed": resume.folder if resume else None}),
        resumed_from=resume.id if resume is not None else None,
        action_id=action_id,
    )
    # A runner of its own for this run, so runs on several worker threads never share a listener.
    mine = Runner(
        runner.stages,
        retry=runner.retry,
        listener=StoreListener(store, row.id, forward),
        sleep=runner.sleep,
        now=runner.now,
    )
    if resume is not None:
        run = mine.resume(Path(resume.folder), folder)
    else:
        assert config is not None
        run = mine.run(config, folder)
    record = run.record
    finished = store.finish_pipeline_run(
        row.id,
        status=record.status,
        at=record.finished_at or now,
        failed_stage=record.failed_stage,
        error=record.error,
    )
    prune_runs(store, model)
    return Recorded(row=finished, run=run)


def register_run(
    registry: ModelRegistry, run: Run, *, model: str, at: datetime, created_by: str, run_id: int
) -> Version:
    """Store a succeeded run's model as a new version, with everything the run learned about it."""
    ingested: Ingested = run.value("ingest")
    engineered: Engineered = run.value("features")
    forest: Forest = run.value("train")
    evaluation: Evaluation = run.value("evaluate")
    estimator = model_of(run)
    target = run.record.config.target
    labelled = ingested.frame[ingested.frame[target].notna()]
    reference = profile_version(
        estimator,
        labelled,
        features=engineered.spec.columns,
        labels=labelled[target],
        classification=ingested.info.task == "classification",
        holdout=engineered.test_rows,
        holdout_labels=engineered.y_test,
    )
    profile: dict[str, Any] = {
        **reference.to_json(),  # what the data sensors compare batches with
        "dataset": ingested.info.as_json(),
        "validation": run.value("validate"),
        "features": engineered.spec.as_json(),
        "fit": forest.fit_json(),
        "evaluation": evaluation.as_json(),
        "pipeline_run": run_id,
    }
    version = registry.register(
        model,
        estimator,
        at=at,
        reference=engineered.reference,
        params=forest.params,
        metrics=evaluation.metrics,
        data_fingerprint=ingested.info.fingerprint,
        profile=profile,
        health=evaluation.health,
        created_by=created_by,
    )
    registry.store.set_pipeline_run_version(run_id, version.number)
    return version


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    promoted: bool
    metric: str
    challenger: float
    champion: float | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "metric": self.metric,
            "challenger": self.challenger,
            "champion": self.champion,
        }


def promote_if_not_worse(
    registry: ModelRegistry,
    run: Run,
    version: Version,
    *,
    at: datetime,
    actor: str,
    min_gain: float,
    action_id: int | None = None,
    epoch: int | None = None,
) -> Judgement:
    """Make ``version`` champion if it scores at least the champion's score (plus ``min_gain``) on the
    run's held-out rows; otherwise it stays a challenger."""
    model = version.model
    task = registry.store.get_model(model).task.value
    metric = primary_metric(task)
    challenger = float(version.metrics[metric])
    champion = _champion_score(registry, model, run, task, metric)
    registry.store.move_alias(
        model, Alias.CHALLENGER, version.number, at=at, actor=actor, reason="pipeline run", epoch=epoch
    )
    if champion is not None and challenger < champion + min_gain:
        detail = (
            f"v{version.number} {metric} {challenger:.4f} is not above champion {champion:.4f} + {min_gain}; "
            "champion kept"
        )
        return Judgement(promoted=False, metric=metric, challenger=challenger, champion=champion, detail=detail)
    try:
        registry.promote(
            model,
            version.number,
            at=at,
            actor=actor,
            reason=f"pipeline run: {metric} {challenger:.4f} vs champion {champion}",
            action_id=action_id,
            epoch=epoch,
        )
    except (ActionError, ArtifactError, StoreError) as exc:
        return Judgement(promoted=False, metric=metric, challenger=challenger, champion=champion, detail=str(exc))
    detail = f"promoted v{version.number}: {metric} {challenger:.4f} (champion {champion})"
    return Judgement(promoted=True, metric=metric, challenger=challenger, champion=champion, detail=detail)


def _champion_score(registry: ModelRegistry, model: str, run: Run, task: str, metric: str) -> float | None:
    """The champion's score on the run's test rows; None if there is none or it cannot load."""
    champion = registry.champion(model)
    if champion is None:
        return None
    try:
        estimator = registry.load(champion)
    except ArtifactError:
        return None
    engineered: Engineered = run.value("features")
    features = list(registry.store.get_model(model).features)
    missing = [c for c in features if c not in engineered.test_rows.columns]
    if missing:
        return None  # the champion was trained on other columns: it cannot be judged on these rows
    return score(estimator, engineered.test_rows[features], engineered.y_test, task)[metric]
