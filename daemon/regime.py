"""Analyze, for the planner: where the current concept began, read off the champion's per-batch losses.

A retrain should learn from rows of the concept the model will serve. When a concept changes gradually,
the first sick batches still mix old and new, and a fit on them is stale by the time it is judged. This
module finds the start of the current *regime*: the longest recent run of a champion's labelled readings
in which no split into older and newer parts shows a significant difference in mean loss (the window rule
of ADWIN, Bifet and Gavaldà 2007, applied to batches rather than rows). While the regime is short the loss
is still moving, and the planner waits for more rows of it.

Each reading carries the batch's mean per-row loss (0/1 error for classifiers, squared error for
regressors), its per-row variance and its row count, so the test is a two-sample z-test on means with
each side's own variance, at ``z`` standard errors (a Bonferroni-sized bar: there are many splits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Z = 3.5  # about 1 in 4300 one-sided per split; at most ~100 splits are examined per call
TREND_Z = 3.0  # one test per call
MAX_READINGS = 100


@dataclass(frozen=True, slots=True)
class Reading:
    """One labelled batch as the champion saw it: mean per-row loss, its per-row variance, rows."""

    loss: float
    variance: float
    rows: int


def regime_start(readings: Sequence[Reading], z: float = Z) -> int:
    """Index of the first reading of the current regime (0 when nothing changed; readings oldest first)."""
    recent = list(readings)[-MAX_READINGS:]
    offset = len(readings) - len(recent)
    if len(recent) < 2:
        return offset
    # Prefix sums of rows, loss mass and variance mass make each split O(1).
    rows, mass, spread = [0.0], [0.0], [0.0]
    for r in recent:
        rows.append(rows[-1] + r.rows)
        mass.append(mass[-1] + r.loss * r.rows)
        spread.append(spread[-1] + r.variance * r.rows)
    end = len(recent)
    start = end - 1
    # Grow the window one reading back at a time while every split of it looks like one regime.
    while start > 0 and not _changed(start - 1, end, rows, mass, spread, z):
        start -= 1
    return offset + start


def rising(readings: Sequence[Reading], z: float = TREND_Z) -> bool:
    """Whether the loss is still climbing: a significant upward slope over the readings (at least three).

    The ADWIN window rule is slow to split a steady climb into parts that differ at ``Z``; a weighted
    least-squares slope over batch order, with each batch's known sampling variance, sees it sooner. Batches
    are weighted by rows over variance, so the slope's standard error needs no estimate from the residuals.
    """
    if len(readings) < 3:
        return False
    weights = [r.rows / max(r.variance, 1e-12) for r in readings]
    total = sum(weights)
    centre = sum(w * i for i, w in enumerate(weights)) / total
    mean = sum(w * r.loss for w, r in zip(weights, readings, strict=True)) / total
    spread = sum(w * (i - centre) ** 2 for i, w in enumerate(weights))
    slope = sum(w * (i - centre) * (r.loss - mean) for i, (w, r) in enumerate(zip(weights, readings, strict=True)))
    slope /= spread
    return slope > z * math.sqrt(1.0 / spread)


def _changed(first: int, end: int, rows: list[float], mass: list[float], spread: list[float], z: float) -> bool:
    """Whether some split of readings[first:end] into older and newer parts differs in mean loss."""
    for cut in range(first + 1, end):
        older, newer = _side(first, cut, rows, mass, spread), _side(cut, end, rows, mass, spread)
        if older is None or newer is None:
            continue
        (mean_a, var_a, n_a), (mean_b, var_b, n_b) = older, newer
        if abs(mean_a - mean_b) > z * math.sqrt(var_a / n_a + var_b / n_b):
            return True
    return False


def _side(
    a: int, b: int, rows: list[float], mass: list[float], spread: list[float]
) -> tuple[float, float, float] | None:
    n = rows[b] - rows[a]
    if n <= 0:
        return None
    return (mass[b] - mass[a]) / n, (spread[b] - spread[a]) / n, n


def classification_reading(accuracy: float, rows: int) -> Reading:
    """A classifier's batch: the 0/1 loss is the error rate, a Bernoulli variable."""
    error = 1.0 - accuracy
    # Floored as if one more row had disagreed: a perfect batch has no variance, and with none on either
    # side any difference at all would look significant.
    return Reading(loss=error, variance=max(error * (1.0 - error), 1.0 / (rows + 1)), rows=rows)


def regression_reading(mse: float, squared_error_variance: float, rows: int) -> Reading:
    """A regressor's batch: the loss is the squared error, its mean the batch's MSE."""
    return Reading(loss=mse, variance=squared_error_variance, rows=rows)


def reading(value: float, evidence: Mapping[str, Any]) -> Reading | None:
    """The reading in a ``performance`` observation (the sensor's evidence), or None if it lacks one."""
    rows = int(evidence.get("rows", 0) or 0)
    if rows <= 0:
        return None
    if evidence.get("metric") == "accuracy":
        return classification_reading(value, rows)
    mse, spread = evidence.get("mse"), evidence.get("squared_error_variance")
    if isinstance(mse, int | float) and isinstance(spread, int | float):
        return regression_reading(float(mse), float(spread), rows)
    return None
