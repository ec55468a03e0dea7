"""Recorded pipeline runs: the bridge from ``pipeline.runner`` to the knowledge store, and the judgement
that turns a finished run into a version (promoted only if it is not worse than the champion).

``recorded_run`` writes the run's row before its first stage and every stage's record as it changes, so
a crash mid-run leaves a row that says how far it got. Given a ``compute`` (an action's ``ActContext.compute``),
the stages run there, in a worker process with the ``process`` executor, together with everything heavy that
registering and judging the run's model needs (profile, skops bytes, the champion's score: ``run_stages``); the
daemon follows the run's manifest as the worker rewrites it and writes the stage records, the run's row, the
version and any alias move itself (journaling and lease fencing stay in the daemon). A worker that dies fails
the run at the stage it was running, so that ``rerun`` can resume it. ``register_run`` stores the run's model as a new
version with its metrics, health, dataset description, evaluation and reference profile (what the data
sensors compare batches with); ``promote_if_not_worse`` scores the champion on the run's own held-out rows
and moves ``champion`` only if the new version is at least as good (plus the configured margin).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from knowledge.artifacts import ArtifactStore, dump_model
from knowledge.errors import ActionError, ArtifactError, StoreError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import JSON, Alias, ModelRecord, PipelineRun, StageRun, Version
from pipeline.errors import DataError
from pipeline.evaluate import Evaluation, primary_metric, score
from pipeline.profile import profile_version
from pipeline.runner import (
    RetryPolicy,
    Run,
    Runner,
    RunRecord,
    Stage,
    StageListener,
    StageRecord,
    read_manifest,
    save_manifest,
)
from pipeline.settings import RunConfig
from pipeline.stages import Engineered, Forest, Ingested, model_of

KEEP_RUNS = 5  # run folders kept per model; a 100k-row run's stage outputs take about 170 MB
WATCH_SECONDS = 0.25  # how often the daemon re-reads the manifest of a run going on in a worker process
Compute = Callable[..., Any]  # ``ActContext.compute``: runs a function (and its arguments) where the pool runs fits


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
class Registration:
    """Everything registering a succeeded run's model needs, made where the run ran (a worker process)."""

    estimator: Any
    dumped: bytes | None  # the estimator's skops bytes (None: the registry dumps it)
    reference: pd.DataFrame
    params: JSON
    metrics: JSON
    data_fingerprint: str
    profile: JSON
    health: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChampionFile:
    """Where a worker process finds the champion to score on a run's held-out rows (it verifies the sha256)."""

    root: str
    artifact: str
    sha256: str
    features: list[str]
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Worked:
    """What ``run_stages`` hands back: the run's record and, if it succeeded, its model ready to register and the
    champion's score on its held-out rows (None without a champion that loads and fits these columns)."""

    record: RunRecord
    registration: Registration | None = None
    champion_score: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """A finished run: its row in the store and the run itself (whose outputs can be read); ``worked`` when it ran
    through a ``compute`` (its model is registered from there, without reading the run's outputs back)."""

    row: PipelineRun
    run: Run
    worked: Worked | None = None


def run_stages(
    stages: Sequence[Stage],
    *,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
    folder: str,
    config: RunConfig | None,
    resume: str | None,
    champion: ChampionFile | None,
    dump: bool,
) -> Worked:
    """Run (or resume) the pipeline in ``folder`` and, if it succeeds, prepare its registration and score the
    champion. Pure work on files and its arguments, so that a worker process can run it."""
    runner = Runner(stages, retry=retry, sleep=sleep, now=now)
    if resume is not None:
        run = runner.resume(Path(resume), Path(folder))
    else:
        assert config is not None
        run = runner.run(config, Path(folder))
    if run.record.status != "succeeded":
        return Worked(record=run.record)
    return Worked(
        record=run.record,
        registration=registration(run, dump=dump),
        champion_score=None if champion is None else _score_file(run, champion),
    )


def _score_file(run: Run, champion: ChampionFile) -> float | None:
    engineered: Engineered = run.value("features")
    if any(c not in engineered.test_rows.columns for c in champion.features):
        return None  # the champion was trained on other columns: it cannot be judged on these rows
    try:
        estimator = ArtifactStore(Path(champion.root)).load_model(champion.artifact, champion.sha256)
    except ArtifactError:
        return None
    scores = score(estimator, engineered.test_rows[champion.features], engineered.y_test, champion.task)
    return float(scores[primary_metric(champion.task)])


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
    compute: Compute | None = None,
    champion: ChampionFile | None = None,
) -> Recorded:
    """Run the pipeline (``config``) or resume a failed run (``resume``), recording it as it goes; with ``compute``,
    the stages (and ``champion``'s scoring) run through it, in a worker process with the process executor."""
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
    listener = StoreListener(store, row.id, forward)
    worked = None
    if compute is not None:
        worked = _worked(compute, runner, listener, folder=folder, config=config, resume=resume, champion=champion)
        run = Run(worked.record, {s.name: s for s in runner.stages})
    else:
        # A runner of its own for this run, so runs on several worker threads never share a listener.
        mine = Runner(runner.stages, retry=runner.retry, listener=listener, sleep=runner.sleep, now=runner.now)
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
    return Recorded(row=finished, run=run, worked=worked)


def _worked(
    compute: Compute,
    runner: Runner,
    listener: StageListener,
    *,
    folder: Path,
    config: RunConfig | None,
    resume: PipelineRun | None,
    champion: ChampionFile | None,
) -> Worked:
    """``run_stages`` through ``compute``, while a watcher thread replays the manifest's stage changes to
    ``listener`` (the worker rewrites the manifest after every change). ``compute`` is called on this thread, so
    what the pool set up for it stays in force (the Dask pool's joblib backend is per thread). A failure of the
    compute itself (a killed worker) fails the run at the stage it was running, in the manifest too, so that a
    rerun resumes from there."""
    seen: dict[str, StageRecord] = {}
    lock = threading.Lock()  # the watcher and this thread never replay at the same time
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(WATCH_SECONDS):
            with lock:
                _replay(_manifest(folder), seen, listener)

    watcher = threading.Thread(target=watch, name="heald-run-watch", daemon=True)
    watcher.start()
    try:
        worked: Worked = compute(
            run_stages,
            runner.stages,
            retry=runner.retry,
            sleep=runner.sleep,
            now=runner.now,
            folder=str(folder),
            config=config,
            resume=resume.folder if resume is not None else None,
            champion=champion,
            dump=True,
        )
    except Exception as exc:  # the worker died (or could not be reached): the run failed where it stood
        stop.set()
        watcher.join()
        record = _broken(_manifest(folder), folder, config, resume, runner, f"{type(exc).__name__}: {exc}")
        save_manifest(record)
        _replay(record, seen, listener)
        return Worked(record=record)
    finally:
        stop.set()
        watcher.join()
    _replay(worked.record, seen, listener)
    return worked


def _manifest(folder: Path) -> RunRecord | None:
    try:
        return read_manifest(folder)
    except DataError:  # not written yet, or being replaced: the next look will see it
        return None


def _replay(record: RunRecord | None, seen: dict[str, StageRecord], listener: StageListener) -> None:
    """Tell ``listener`` about every stage record that changed since the last look."""
    if record is None:
        return
    for stage in record.stages:
        if seen.get(stage.stage) != stage:
            seen[stage.stage] = stage
            listener.stage_changed(record, stage)


def _broken(
    last: RunRecord | None,
    folder: Path,
    config: RunConfig | None,
    resume: PipelineRun | None,
    runner: Runner,
    error: str,
) -> RunRecord:
    """The record of a run whose worker stopped answering: failed at its first unfinished stage."""
    now = runner.now()
    if last is None:  # it died before writing anything: every stage is still to do
        run_config = config if config is not None else read_manifest(Path(resume.folder)).config if resume else None
        assert run_config is not None
        last = RunRecord(
            folder=str(folder),
            config=run_config,
            status="running",
            stages=[StageRecord(stage=s.name) for s in runner.stages],
            started_at=now,
            resumed_from=resume.folder if resume is not None else None,
        )
    unfinished = next((s for s in last.stages if s.status not in ("succeeded", "reused")), None)
    stages = [
        replace(s, status="failed", finished_at=now, error=error, folder=s.folder or str(folder / s.stage))
        if s is unfinished
        else s
        for s in last.stages
    ]
    return replace(last, stages=stages, status="failed", finished_at=now, error=error)


def register_run(
    registry: ModelRegistry, run: Run, *, model: str, at: datetime, created_by: str, run_id: int
) -> Version:
    """Store a succeeded run's model as a new version, with everything the run learned about it."""
    return register_made(
        registry, registration(run, dump=False), model=model, at=at, created_by=created_by, run_id=run_id
    )


def registration(run: Run, *, dump: bool) -> Registration:
    """What registering a succeeded run's model needs (the profile and, with ``dump``, the skops bytes are the
    heavy part: a worker process makes them)."""
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
    }
    return Registration(
        estimator=estimator,
        dumped=dump_model(estimator) if dump else None,
        reference=engineered.reference,
        params=forest.params,
        metrics=evaluation.metrics,
        data_fingerprint=ingested.info.fingerprint,
        profile=profile,
        health=evaluation.health,
    )


def register_made(
    registry: ModelRegistry, made: Registration, *, model: str, at: datetime, created_by: str, run_id: int
) -> Version:
    """Store a run's prepared model as a new version and link the run to it."""
    version = registry.register(
        model,
        made.estimator,
        at=at,
        reference=made.reference,
        params=made.params,
        metrics=made.metrics,
        data_fingerprint=made.data_fingerprint,
        profile={**made.profile, "pipeline_run": run_id},
        health=made.health,
        created_by=created_by,
        dumped=made.dumped,
    )
    registry.store.set_pipeline_run_version(run_id, version.number)
    return version


def champion_file(registry: ModelRegistry, model: ModelRecord, champion: Version | None) -> ChampionFile | None:
    """Where a worker process finds ``model``'s champion to score it (None without one)."""
    if champion is None:
        return None
    return ChampionFile(
        root=str(registry.artifacts.root),
        artifact=champion.artifact,
        sha256=champion.sha256,
        features=list(model.features),
        task=model.task.value,
    )


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
    scored: Worked | None = None,
) -> Judgement:
    """Make ``version`` champion if it scores at least the champion's score (plus ``min_gain``) on the
    run's held-out rows; otherwise it stays a challenger. ``scored``: the champion was scored where the run ran."""
    model = version.model
    task = registry.store.get_model(model).task.value
    metric = primary_metric(task)
    challenger = float(version.metrics[metric])
    champion = scored.champion_score if scored is not None else _champion_score(registry, model, run, task, metric)
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
