"""Evaluation: the metrics of a fitted model on labelled rows, and whether they are healthy.

Classification reports accuracy, precision, recall and F1; regression reports MSE, RMSE, MAE and R².
``primary`` names the one metric the loop compares versions by (higher is better).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)


def primary_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def score(estimator: Any, features: pd.DataFrame, target: pd.Series[Any], task: str) -> dict[str, float]:
    """Metrics of ``estimator`` on these rows."""
    predicted = estimator.predict(features)
    return metrics(target, predicted, task)


def metrics(actual: Any, predicted: Any, task: str) -> dict[str, float]:
    if task == "classification":
        return {
            "accuracy": float(accuracy_score(actual, predicted)),
            "precision_macro": float(precision_score(actual, predicted, average="macro", zero_division=0)),
            "recall_macro": float(recall_score(actual, predicted, average="macro", zero_division=0)),
            "f1_macro": float(f1_score(actual, predicted, average="macro", zero_division=0)),
            "f1_weighted": float(f1_score(actual, predicted, average="weighted", zero_division=0)),
        }
    mse = float(mean_squared_error(actual, predicted))
    r2 = float(r2_score(actual, predicted)) if len(np.unique(actual)) > 1 else 0.0
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": r2,
    }
