"""Evaluate, the last stage: a fitted model's metrics on held-out rows, and whether they are healthy.

Classification reports accuracy, precision, recall and F1 (macro and weighted) and the confusion matrix;
regression reports MSE, RMSE, MAE and R². Cross-validation's mean and spread and the forest's feature
importances (summed back onto input columns) come along. ``HealthThresholds`` from the config decide
``healthy`` or ``sick``: a floor for scores, a ceiling for errors. ``primary`` names the one metric the
loop compares versions by (higher is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
)

from pipeline import scoring

ERRORS = frozenset({"mse", "rmse", "mae"})  # lower is better: a threshold on these is a ceiling
TOP_IMPORTANCES = 20


def primary_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def score(estimator: Any, features: pd.DataFrame, target: pd.Series[Any], task: str) -> dict[str, float]:
    """Metrics of ``estimator`` on these rows."""
    predicted = scoring.predict(estimator, features)
    return metrics(target, predicted, task)


def metrics(actual: Any, predicted: Any, task: str) -> dict[str, float]:
    if task == "classification":
        counted = _counts(actual, predicted)
        if counted is None:  # labels scikit-learn must check (mixed types, missing, continuous): it says why
            out = {"accuracy": float(accuracy_score(actual, predicted))}
            per_class = precision_recall_fscore_support(actual, predicted, average=None, zero_division=0)
        else:
            out = {"accuracy": counted[0]}
            per_class = counted[1]
        # One per-class pass, averaged here exactly as scikit-learn's ``average=`` does (macro: plain mean over the
        # labels seen; weighted: by true count): six scorer calls cost six times its input checks, and the loop
        # scores every labelled batch of every model.
        support = per_class[3]
        for name, values in zip(("precision", "recall", "f1"), per_class[:3], strict=False):
            out[f"{name}_macro"] = float(np.average(values))
            out[f"{name}_weighted"] = float(np.average(values, weights=support)) if support.sum() else 0.0
        return out
    mse = float(mean_squared_error(actual, predicted))
    r2 = float(r2_score(actual, predicted)) if len(np.unique(actual)) > 1 else 0.0
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(mean_absolute_error(actual, predicted)), "r2": r2}


def _counts(actual: Any, predicted: Any) -> tuple[float, tuple[np.ndarray, ...]] | None:
    """Accuracy and per-class precision, recall, F1 and support, computed as scikit-learn does (the same counts and
    the same float divisions, zero division giving 0) without its input checks, which cost more than the counting
    for a batch of a few hundred rows; None for labels those checks are for: let scikit-learn judge them."""
    a, p = np.asarray(actual), np.asarray(predicted)
    if a.ndim != 1 or p.shape != a.shape or not len(a) or a.dtype.kind != p.dtype.kind or a.dtype.kind not in "iubfOU":
        return None
    both = np.concatenate([a, p])
    if both.dtype.kind == "O" and not all(isinstance(v, str) for v in both):
        return None
    if both.dtype.kind == "f" and not (np.isfinite(both).all() and (both == np.round(both)).all()):
        return None
    labels, codes = np.unique(both, return_inverse=True)
    n = len(labels)
    true_codes, predicted_codes = codes[: len(a)], codes[len(a) :]
    true_sum = np.bincount(true_codes, minlength=n)
    pred_sum = np.bincount(predicted_codes, minlength=n)
    tp_sum = np.bincount(true_codes[true_codes == predicted_codes], minlength=n)
    precision = _divide(tp_sum.astype(float), pred_sum)
    recall = _divide(tp_sum.astype(float), true_sum)
    f_score = _divide(2.0 * tp_sum, 1.0 * true_sum + pred_sum)
    return float(np.average(a == p)), (precision, recall, f_score, true_sum)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as floats, 0 where the denominator is 0 (``zero_division=0``)."""
    mask = denominator == 0
    safe = np.asarray(denominator, dtype=float).copy()
    safe[mask] = 1
    result: np.ndarray = numerator / safe
    result[mask] = 0.0
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthThresholds:
    """Bounds per metric: ``accuracy = 0.8`` is a floor, ``rmse = 12.0`` a ceiling (errors are lower-better)."""

    bounds: dict[str, float] = field(default_factory=dict)

    def judge(self, values: dict[str, float]) -> tuple[str, list[str]]:
        """``healthy`` or ``sick``, with a reason per broken bound."""
        reasons = []
        for metric, bound in self.bounds.items():
            if metric not in values:
                continue
            value = values[metric]
            if metric in ERRORS and value > bound:
                reasons.append(f"{metric} {value:.4g} above {bound:.4g}")
            elif metric not in ERRORS and value < bound:
                reasons.append(f"{metric} {value:.4g} below {bound:.4g}")
        return ("sick" if reasons else "healthy"), reasons


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What the evaluate stage found; ``metrics`` is flat numbers, the rest goes in the version's profile."""

    task: str
    metrics: dict[str, float]
    health: str
    health_reasons: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)
    test_rows: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": self.metrics,
            "health": self.health,
            "health_reasons": self.health_reasons,
            "labels": self.labels,
            "confusion_matrix": self.confusion,
            "importances": self.importances,
            "test_rows": self.test_rows,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        return cls(
            task=data["task"],
            metrics=data["metrics"],
            health=data["health"],
            health_reasons=data["health_reasons"],
            labels=data["labels"],
            confusion=data["confusion_matrix"],
            importances=data["importances"],
            test_rows=data["test_rows"],
        )


def importances(values: np.ndarray[Any, Any], sources: list[str]) -> dict[str, float]:
    """Forest importances summed per input column (one-hot outputs add up), largest first."""
    totals: dict[str, float] = {}
    for source, value in zip(sources, values, strict=True):
        totals[source] = totals.get(source, 0.0) + float(value)
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:TOP_IMPORTANCES]
    return {k: round(v, 6) for k, v in ranked}


def evaluate(
    estimator: Any,
    features: pd.DataFrame,
    target: pd.Series[Any],
    *,
    task: str,
    thresholds: HealthThresholds,
    cv: dict[str, float] | None = None,
    importance: dict[str, float] | None = None,
) -> Evaluation:
    """Score ``estimator`` on held-out rows; ``cv`` (mean, std) joins the metrics and the health judgement."""
    predicted = scoring.predict(estimator, features)
    values = metrics(target, predicted, task)
    if cv:
        values.update({f"cv_{k}": float(v) for k, v in cv.items()})
    health, reasons = thresholds.judge(values)
    labels: list[str] = []
    matrix: list[list[int]] = []
    if task == "classification":
        classes = np.unique(np.concatenate([np.asarray(target), np.asarray(predicted)]))
        labels = [str(c) for c in classes]
        matrix = confusion_matrix(target, predicted, labels=classes).tolist()
    return Evaluation(
        task=task,
        metrics=values,
        health=health,
        health_reasons=reasons,
        labels=labels,
        confusion=matrix,
        importances=importance or {},
        test_rows=len(features),
    )
