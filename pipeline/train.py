"""Train and tune, the fourth stage: a RandomForest on the engineered features, checked by cross-validation.

``split`` holds out 20 % of the labelled rows (stratified by class where every class has two rows).
``fit_forest`` fits the forest on the rest, either with the configured parameters (and k-fold
cross-validation for the mean and spread of the primary metric) or with a grid or random search over
n_estimators, max_depth, min_samples_split, min_samples_leaf and max_features. The cores go to the forest
itself (its trees fit on threads, without copying the data to worker processes); folds and candidates run
one after another. ``train`` and ``fit_all`` are the one-call forms the retrain actuator uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import randint
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, StratifiedKFold, cross_val_score
from sklearn.model_selection import train_test_split as sk_split
from sklearn.pipeline import Pipeline

from pipeline.evaluate import primary_metric, score
from pipeline.features import FeatureSpec, infer_spec, preprocessor
from pipeline.fingerprint import fingerprint

Tuning = Literal["none", "grid", "random"]


def available_cores() -> int:
    """The cores this process may use (its CPU affinity, which containers and systemd narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
            "n_jobs": self.n_jobs if self.n_jobs > 0 else available_cores(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TuningParams:
    """``tuning``: none, grid or random; ``cv_folds`` below 2 turns cross-validation off."""

    tuning: Tuning = "none"
    cv_folds: int = 5
    search_iterations: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CvSummary:
    metric: str
    folds: int
    mean: float
    std: float
    scores: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "folds": self.folds, "mean": self.mean, "std": self.std, "scores": self.scores}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fitted:
    """A fitted forest, the parameters it was fitted with, and what cross-validation said."""

    forest: RandomForestClassifier | RandomForestRegressor
    params: dict[str, Any]
    cv: CvSummary | None
    tuning: Tuning = "none"
    candidates: int = 1
    note: str = ""


def forest(task: str, params: TrainParams) -> RandomForestClassifier | RandomForestRegressor:
    if task == "classification":
        return RandomForestClassifier(**params.forest_kwargs())
    return RandomForestRegressor(**params.forest_kwargs())


def can_stratify(labels: pd.Series[Any], task: str) -> bool:
    return task == "classification" and int(labels.value_counts().min()) >= 2


def split(
    frame: pd.DataFrame, *, target: str, task: str, test_size: float = 0.2, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows (labelled rows only), stratified by class where the classes allow."""
    labelled = frame[frame[target].notna()]
    stratify = labelled[target] if can_stratify(labelled[target], task) else None
    train_rows, test_rows = sk_split(labelled, test_size=test_size, random_state=random_state, stratify=stratify)
    return train_rows, test_rows


def search_space(base: TrainParams, tuning: Tuning) -> dict[str, Any]:
    """The grid, or the distributions, searched around the configured number of trees."""
    n = base.n_estimators
    if tuning == "grid":
        return {
            "n_estimators": sorted({max(10, n // 2), n}),
            "max_depth": [None, 8, 16],
            "min_samples_split": [2, 8],
            "min_samples_leaf": [1, 4],
            "max_features": ["sqrt", 0.5],
        }
    return {
        "n_estimators": randint(max(10, n // 2), 2 * n + 1),
        "max_depth": [None, 4, 8, 12, 16, 24, 32],
        "min_samples_split": randint(2, 21),
        "min_samples_leaf": randint(1, 11),
        "max_features": ["sqrt", "log2", 0.3, 0.5, 0.8],
    }


def _folds(labels: np.ndarray[Any, Any], task: str, wanted: int, seed: int) -> tuple[Any, str]:
    """A splitter with at most ``wanted`` folds, fewer if the smallest class is smaller; None if < 2."""
    folds = min(wanted, len(labels))
    if task == "classification":
        smallest = int(pd.Series(labels).value_counts().min())
        if smallest < folds:
            note = f"cross-validation uses {smallest} folds: the smallest class has {smallest} rows"
            folds = smallest
            if folds < 2:
                return None, "no cross-validation: a class has a single training row"
            return StratifiedKFold(folds, shuffle=True, random_state=seed), note
        return StratifiedKFold(folds, shuffle=True, random_state=seed), ""
    return (KFold(folds, shuffle=True, random_state=seed), "") if folds >= 2 else (None, "")


def fit_forest(x: Any, y: Any, *, task: str, params: TrainParams, tuning: TuningParams) -> Fitted:
    """Fit (and, if configured, tune and cross-validate) a forest on engineered features."""
    y = np.asarray(y)
    metric = primary_metric(task)
    splitter, note = _folds(y, task, tuning.cv_folds, params.random_state) if tuning.cv_folds >= 2 else (None, "")
    estimator = forest(task, params)
    if tuning.tuning != "none" and splitter is not None:
        return _search(estimator, x, y, task=task, params=params, tuning=tuning, splitter=splitter, note=note)
    cv = None
    if splitter is not None:
        scores = cross_val_score(estimator, x, y, cv=splitter, scoring=metric)
        cv = CvSummary(
            metric=metric,
            folds=splitter.get_n_splits(),
            mean=float(np.mean(scores)),
            std=float(np.std(scores)),
            scores=[float(s) for s in scores],
        )
    estimator.fit(x, y)
    return Fitted(forest=estimator, params=params.forest_kwargs(), cv=cv, note=note)


def _search(
    estimator: Any, x: Any, y: Any, *, task: str, params: TrainParams, tuning: TuningParams, splitter: Any, note: str
) -> Fitted:
    metric = primary_metric(task)
    space = search_space(params, tuning.tuning)
    if tuning.tuning == "grid":
        search: Any = GridSearchCV(estimator, space, scoring=metric, cv=splitter, n_jobs=1, refit=True)
    else:
        search = RandomizedSearchCV(
            estimator,
            space,
            n_iter=tuning.search_iterations,
            scoring=metric,
            cv=splitter,
            n_jobs=1,
            refit=True,
            random_state=params.random_state,
        )
    search.fit(x, y)
    best = search.best_index_
    results = search.cv_results_
    folds = splitter.get_n_splits()
    cv = CvSummary(
        metric=metric,
        folds=folds,
        mean=float(results["mean_test_score"][best]),
        std=float(results["std_test_score"][best]),
        scores=[float(results[f"split{i}_test_score"][best]) for i in range(folds)],
    )
    chosen = {**params.forest_kwargs(), **{k: _plain(v) for k, v in search.best_params_.items()}}
    return Fitted(
        forest=search.best_estimator_,
        params=chosen,
        cv=cv,
        tuning=tuning.tuning,
        candidates=len(results["params"]),
        note=note,
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- one-call forms ------------------------------------------------------------------------------------


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
    learn, test = split(frame, target=target, task=task, test_size=params.test_size, random_state=params.random_state)
    estimator = build(task, spec, params).fit(learn[spec.columns], learn[target])
    return Trained(
        estimator=estimator,
        metrics=score(estimator, test[spec.columns], test[target], task),
        spec=spec,
        fingerprint=fingerprint(frame),
        rows=len(frame),
        params=params.forest_kwargs(),
        holdout=test.index,
    )


def fit_all(frame: pd.DataFrame, *, target: str, task: str, spec: FeatureSpec, params: TrainParams) -> Pipeline:
    """Fit on every row (no split): for a challenger that is judged on separate recent rows."""
    return build(task, spec, params).fit(frame[spec.columns], frame[target])
