"""Paired comparison of two models on the same labelled rows: per-row gains and a one-sided bound.

Used where heald decides between two versions (a retrain's challenger against the champion, a promoted
champion against the version it replaced in shadow). Judging both on the same rows removes the rows' own
difficulty from the comparison, so a small real difference shows and a noisy one does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# One-sided 95 %: a gain whose lower bound is above the bar is not noise.
Z_95 = 1.645


def gains(actual: Any, new: Any, old: Any, *, classification: bool) -> np.ndarray:
    """Per-row gains of ``new`` over ``old`` whose mean is the difference of the primary metric.

    Accuracy for classifiers (each row +1, 0 or -1); for regressors the drop in squared error over the
    labels' variance, whose mean is the difference of R².
    """
    y = np.asarray(actual)
    if classification:
        return np.asarray((np.asarray(new) == y).astype(float) - (np.asarray(old) == y).astype(float), dtype=float)
    y = y.astype(float)
    variance = float(np.var(y)) or 1.0
    return np.asarray(((y - np.asarray(old, dtype=float)) ** 2 - (y - np.asarray(new, dtype=float)) ** 2) / variance)


def lower_bound(values: np.ndarray) -> float:
    """The one-sided 95 % lower bound of the mean gain (the mean itself for fewer than two rows)."""
    if len(values) < 2:
        return float(np.mean(values)) if len(values) else 0.0
    return float(np.mean(values) - Z_95 * np.std(values, ddof=1) / np.sqrt(len(values)))


def judge_rows(rows: int, features: int, classes: int) -> int:
    """How many of ``rows`` to hold out for judging: a fifth, but enough for the model's size.

    At least 10 per feature and 30 per class (a handful of rows per class cannot tell two models apart), and
    never more than half the rows, which the challenger must learn from.
    """
    return min(max(rows // 5, 10 * features, 30 * max(classes, 1), 50), rows // 2)
