"""Onboarding: from a user's table to a managed model whose version 1 is champion and stable.

``create`` is what ``healctl init`` calls: it runs the managed pipeline (ingest, validate, features,
train, evaluate) on the user's file as a recorded run, creates the model, registers version 1 with its
metrics, health, dataset description and reference profile (what the data sensors compare every batch
with), and points ``champion`` and ``stable`` at it. ``run_config`` turns the settings into a pipeline
run's config, for ``init``, ``healctl pipeline run`` and the benchmarks. ``onboard`` is the in-memory form
the demo uses (a frame instead of a file, no recorded run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from actuators.runs import Recorded, recorded_run, register_run
from daemon.compose import Heald, model_settings, retry_policy, runs_folder
from daemon.config import ModelSettings, Settings
from knowledge.errors import ActionError, StoreError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Task, Version
from pipeline import ingest
from pipeline.errors import DataError
from pipeline.evaluate import Evaluation, HealthThresholds, primary_metric
from pipeline.features import FeatureOptions
from pipeline.ingest import Kind
from pipeline.profile import profile_version
from pipeline.runner import Runner, StageListener
from pipeline.settings import REFERENCE_ROWS, RunConfig
from pipeline.stages import Forest, standard_stages
from pipeline.train import TrainParams, TuningParams, train
from pipeline.validate import ValidationPolicy


def detect_task(target: pd.Series[Any]) -> Task:
    """Classification for text, booleans and whole numbers with few distinct values; otherwise regression."""
    return Task(ingest.detect_task(target))


def health_bounds(entry: ModelSettings, task: Task | None) -> dict[str, float]:
    """The model's health thresholds: its primary floor (by task, or both if not known yet) and any others."""
    bounds: dict[str, float] = {}
    if task in (None, Task.CLASSIFICATION):
        bounds["accuracy"] = entry.min_accuracy
    if task in (None, Task.REGRESSION):
        bounds["r2"] = entry.min_r2
    return {**bounds, **entry.health}


def run_config(
    settings: Settings,
    *,
    name: str,
    data: list[Path],
    target: str,
    task: Task | None = None,
    schema: dict[str, Kind] | None = None,
    exclude: list[str] | None = None,
) -> RunConfig:
    """A pipeline run's config for model ``name`` from the settings ([pipeline] and the model's entry)."""
    p = settings.pipeline
    entry = model_settings(settings, name)
    exclude = sorted({*entry.exclude, *(exclude or [])})
    return RunConfig(
        model=name,
        data=[str(d.resolve()) for d in data],
        target=target,
        task=task.value if task is not None else None,
        schema=schema,
        features=FeatureOptions(
            numeric_impute=p.numeric_impute,
            scaling=p.scaling,
            clip_quantile=p.clip_quantile,
            correlation_threshold=p.correlation_threshold,
            max_categories=p.max_categories,
            exclude=exclude,
        ),
        train=TrainParams(
            n_estimators=settings.n_estimators, max_depth=settings.max_depth, test_size=p.test_size, n_jobs=p.n_jobs
        ),
        tuning=TuningParams(tuning=p.tuning, cv_folds=p.cv_folds, search_iterations=p.search_iterations),
        validation=ValidationPolicy(
            min_rows=p.min_rows, test_size=p.test_size, exclude=exclude, numeric=list(entry.numeric)
        ),
        health=health_bounds(entry, task),
        reference_rows=REFERENCE_ROWS,
    )


def runner(settings: Settings, listener: StageListener | None = None) -> Runner:
    return Runner(standard_stages(), retry=retry_policy(settings), listener=listener)


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    version: Version
    recorded: Recorded


def create(
    heald: Heald,
    *,
    name: str,
    data: Path,
    target: str,
    task: Task | None = None,
    actor: str = "healctl",
    listener: StageListener | None = None,
    accept_unhealthy: bool = False,
    exclude: list[str] | None = None,
) -> Created:
    """Create model ``name`` from the file ``data``: a recorded pipeline run, then v1 as champion and stable.

    A first version below the model's health threshold is refused (``ActionError``, with a threshold the
    cross-validated score supports) unless ``accept_unhealthy``: serving it would open a performance
    incident at once that no retrain on the same data could resolve. ``exclude`` names columns never to use
    (besides the config's): they are not features and ``/predict`` does not ask for them.
    """
    if heald.store.find_model(name) is not None:
        raise StoreError(f"model {name!r} already exists; use `healctl pipeline run {name}` to train it again")
    now = heald.clock.now()
    config = run_config(heald.settings, name=name, data=[data], target=target, task=task, exclude=exclude)
    done = recorded_run(
        heald.store,
        runner(heald.settings),
        root=runs_folder(heald.settings),
        now=now,
        trigger="init",
        actor=actor,
        config=config,
        forward=listener,
    )
    done.run.record.raise_for_failure()
    evaluation: Evaluation = done.run.value("evaluate")
    if evaluation.health != "healthy" and not accept_unhealthy:
        raise ActionError(_unhealthy(name, evaluation, done.run.value("train")))
    info = done.run.value("ingest").info
    features = done.run.value("features").spec.columns
    record = ModelRecord(name=name, task=Task(info.task), target=target, features=features, created_at=now)
    heald.store.add_model(record)
    version = register_run(heald.registry, done.run, model=name, at=now, created_by=actor, run_id=done.row.id)
    _first(heald.registry, name, version.number, now, actor)
    return Created(version=heald.registry.version(name, version.number), recorded=done)


def suggested_floor(forest: Forest, evaluation: Evaluation) -> tuple[str, float]:
    """A health floor this model meets on data like its training data: the cross-validated mean less two
    standard deviations (the held-out score less 0.05 without cross-validation), never above the held-out
    score, rounded down to two decimals."""
    metric = primary_metric(evaluation.task)
    held_out = evaluation.metrics.get(metric, 0.0)
    if forest.cv is not None and forest.cv.metric == metric:
        floor = min(forest.cv.mean - 2 * forest.cv.std, held_out)
    else:
        floor = held_out - 0.05
    return metric, max(0.0, math.floor(floor * 100) / 100)


def _unhealthy(name: str, evaluation: Evaluation, forest: Forest) -> str:
    metric, floor = suggested_floor(forest, evaluation)
    key = "min_accuracy" if metric == "accuracy" else "min_r2" if metric == "r2" else f"health.{metric}"
    why = "; ".join(evaluation.health_reasons) or evaluation.health
    return (
        f"model {name!r} v1 is below its health threshold ({why}), so it was not made champion; "
        f"set `{key} = {floor}` under [[models]] (what cross-validation supports) or pass --accept-unhealthy"
    )


def _first(registry: ModelRegistry, name: str, number: int, now: datetime, actor: str) -> None:
    registry.promote(name, number, at=now, actor=actor, reason="first version")
    registry.mark_stable(name, number, at=now, reason="first version, evaluated at onboarding")


def onboard(
    store: SqlKnowledgeStore,
    registry: ModelRegistry,
    *,
    name: str,
    frame: pd.DataFrame,
    target: str,
    now: datetime,
    task: Task | None = None,
    params: TrainParams | None = None,
    healthy_floor: float | None = None,
    actor: str = "healctl",
) -> Version:
    """Create model ``name`` from an in-memory ``frame`` and make its first version champion and stable."""
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in the data (columns: {list(frame.columns)[:10]})")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    task = task or detect_task(frame[target])
    trained = train(frame, target=target, task=task.value, params=params)
    features = trained.spec.columns
    store.add_model(ModelRecord(name=name, task=task, target=target, features=features, created_at=now))
    metric = primary_metric(task.value)
    bounds = {} if healthy_floor is None else {metric: healthy_floor}
    health, reasons = HealthThresholds(bounds=bounds).judge(trained.metrics)
    dataset = ingest.describe(frame, target=target, task=task.value)
    holdout = frame.loc[trained.holdout] if trained.holdout is not None else None
    profile = profile_version(
        trained.estimator,
        frame,
        features=features,
        labels=frame[target],
        classification=task is Task.CLASSIFICATION,
        holdout=holdout,
        holdout_labels=holdout[target] if holdout is not None else None,
    )
    version = registry.register(
        name,
        trained.estimator,
        at=now,
        reference=frame[features].sample(min(len(frame), REFERENCE_ROWS), random_state=0).reset_index(drop=True),
        params=trained.params,
        metrics=trained.metrics,
        data_fingerprint=trained.fingerprint,
        profile={
            **profile.to_json(),
            "dataset": dataset.as_json(),
            "features": trained.spec.as_json(),
            "health_reasons": reasons,
        },
        health=health,
        created_by=actor,
    )
    _first(registry, name, version.number, now, actor)
    return registry.version(name, version.number)
