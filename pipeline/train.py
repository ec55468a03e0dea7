"""Training: a RandomForest behind the feature preprocessing, fitted and scored on a held-out split.

``train`` is what ``healctl init`` and the retrain actuator call: it splits 80:20 (stratified where the
classes allow), fits, scores on the held-out rows and returns the fitted pipeline with its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from pipeline.evaluate import score
from pipeline.features import FeatureSpec, infer_spec, preprocessor
from pipeline.fingerprint import fingerprint


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainParams:
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_split: int = 2
    min_samples_leaf: int = 1
    max_features: str | float | None = "sqrt"
    test_size: float = 0.2
    random_state: int = 0
    n_jobs: int = -1

    def forest_kwargs(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "min_samples_split": self.min_samples_split,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Trained:
    """A fitted pipeline and what is known about it."""

    estimator: Pipeline
    metrics: dict[str, float]
    spec: FeatureSpec
    fingerprint: str
    rows: int
    params: dict[str, Any] = field(default_factory=dict)
    holdout: pd.Index | None = None  # the rows it was scored on, for calibrating its confidence


def forest(task: str, params: TrainParams) -> RandomForestClassifier | RandomForestRegressor:
    if task == "classification":
        return RandomForestClassifier(**params.forest_kwargs())
    return RandomForestRegressor(**params.forest_kwargs())


def build(task: str, spec: FeatureSpec, params: TrainParams) -> Pipeline:
    return Pipeline([("features", preprocessor(spec)), ("forest", forest(task, params))])


def train(
    frame: pd.DataFrame,
    *,
    target: str,
    task: str,
    params: TrainParams | None = None,
    spec: FeatureSpec | None = None,
) -> Trained:
    """Fit on 80 % of ``frame`` and score on the other 20 %."""
    params = params or TrainParams()
    spec = spec or infer_spec(frame, target)
    features, labels = frame[spec.columns], frame[target]
    stratify = labels if task == "classification" and labels.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=params.test_size, random_state=params.random_state, stratify=stratify
    )
    estimator = build(task, spec, params).fit(x_train, y_train)
    return Trained(
        estimator=estimator,
        metrics=score(estimator, x_test, y_test, task),
        spec=spec,
        fingerprint=fingerprint(frame),
        rows=len(frame),
        params=params.forest_kwargs(),
        holdout=x_test.index,
    )


def fit_all(frame: pd.DataFrame, *, target: str, task: str, spec: FeatureSpec, params: TrainParams) -> Pipeline:
    """Fit on every row (no split): for a challenger that is judged on separate recent rows."""
    return build(task, spec, params).fit(frame[spec.columns], frame[target])
