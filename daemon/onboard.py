"""Onboarding: from a user's table to a managed model whose version 1 is champion and stable.

This is what ``healctl init`` and the demo call: detect the task, train and evaluate version 1 with the
managed pipeline, profile its reference data once (what the data sensors compare every batch with),
register it, and point ``champion`` and ``stable`` at it, recording who did it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Task, Version
from pipeline.errors import DataError
from pipeline.evaluate import primary_metric
from pipeline.profile import profile_version
from pipeline.train import TrainParams, train

REFERENCE_ROWS = 5000


def detect_task(target: pd.Series[Any]) -> Task:
    """Classification for text, booleans and integers with few distinct values; otherwise regression."""
    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return Task.CLASSIFICATION
    if pd.api.types.is_integer_dtype(values) and values.nunique() <= max(20, int(len(values) ** 0.5 / 2)):
        return Task.CLASSIFICATION
    return Task.REGRESSION


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
    """Create model ``name`` from ``frame`` and make its first version champion and stable."""
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in the data (columns: {list(frame.columns)[:10]})")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    task = task or detect_task(frame[target])
    trained = train(frame, target=target, task=task.value, params=params)
    features = trained.spec.columns
    store.add_model(ModelRecord(name=name, task=task, target=target, features=features, created_at=now))
    metric = primary_metric(task.value)
    health = "healthy" if healthy_floor is None or trained.metrics[metric] >= healthy_floor else "sick"
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
        profile=profile.to_json(),
        health=health,
        created_by=actor,
    )
    registry.promote(name, version.number, at=now, actor=actor, reason="first version")
    registry.mark_stable(name, version.number, at=now, reason="first version, evaluated at onboarding")
    return registry.version(name, version.number)
