"""Model sensor: how well the champion predicts, measured on labels and estimated while labels are late.

Labels arrive after predictions (in labelled batches or through feedback). On this tick's labelled rows the
sensor reports ``performance`` (the primary metric: accuracy for classifiers, R² for regressors, with the
per-row spread of squared errors that the planner's regime test needs) and, over
the last ``performance_window_rows`` labelled rows of the same champion, ``performance_window``: a rolling
window that steadies small batches. A reading needs ``performance_min_rows`` labelled rows: smaller
labelled batches (a few late labels through feedback) are pooled until they add up, so one row is never
taken for the model's accuracy. The window and the pool live in memory and refill after a restart.

For classifiers it also reports ``accuracy_estimate`` on every batch, labelled or not: the champion's mean
top-class probability, calibrated on held-out rows at registration by the difference of confidences (DoC:
holdout accuracy plus the change in mean confidence since). It is marked ``estimate`` in its evidence;
the analyzer trusts it only with a margin, and never to clear a drop that labels showed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from knowledge.values import Observation
from pipeline.evaluate import metrics, primary_metric
from pipeline.profile import Confidence
from sensors.base import SenseContext

SOURCE = "performance"


class RollingWindow:
    """The last ``size`` labelled rows (actual and predicted) of one champion version."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._chunks: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self.rows = 0

    def add(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        self._chunks.append((actual[-self.size :], predicted[-self.size :]))
        self.rows += min(len(actual), self.size)
        while self.rows - len(self._chunks[0][0]) >= self.size:
            self.rows -= len(self._chunks.popleft()[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        actual = np.concatenate([a for a, _ in self._chunks])[-self.size :]
        predicted = np.concatenate([p for _, p in self._chunks])[-self.size :]
        return actual, predicted


def estimate_accuracy(probabilities: np.ndarray, calibration: Confidence | None) -> tuple[float, dict[str, Any]]:
    """Accuracy estimated from confidence, and how it was made (for the evidence)."""
    confidence = float(np.mean(np.max(probabilities, axis=1)))
    if calibration is None:
        return confidence, {"method": "mean_confidence", "mean_confidence": round(confidence, 6)}
    value = float(np.clip(calibration.accuracy + confidence - calibration.confidence, 0.0, 1.0))
    return value, {
        "method": "difference_of_confidences",
        "mean_confidence": round(confidence, 6),
        "holdout_accuracy": round(calibration.accuracy, 6),
        "holdout_confidence": round(calibration.confidence, 6),
    }


def _spelled(ctx: SenseContext, actual: pd.Series[Any], predicted: np.ndarray) -> tuple[pd.Series[Any], pd.Series[Any]]:
    """Labels and predictions in one spelling (``pipeline.labels``): ``1``, ``1.0`` and ``"1"`` are one class.

    A label that cannot be one of the model's classes becomes missing and is left out of the score (intake
    refuses batches holding such labels; this keeps a stored older batch from mixing types in the metric).
    """
    profile = ctx.profile
    spec = profile.label_spec if profile is not None else None
    actual = actual.reset_index(drop=True)
    if spec is None:
        return actual, pd.Series(predicted)
    return spec.normalize(actual), spec.normalize(pd.Series(predicted))


class PerformanceSensor:
    """Reports ``performance``, ``performance_window`` and (classifiers) ``accuracy_estimate``."""

    def __init__(self) -> None:
        # Keyed by model alone (with the champion's version beside it): the loop senses models on several
        # threads at once, and each thread then only ever touches its own model's entry.
        self._windows: dict[str, tuple[int, RollingWindow]] = {}
        self._pooled: dict[str, tuple[int, list[tuple[np.ndarray, np.ndarray]]]] = {}

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion = ctx.champion
        if champion is None or not ctx.batches:
            return []
        observations = []
        target, task = ctx.model.target, ctx.model.task.value
        # Labelled rows include feedback batches (labels for rows served earlier), so they are scored apart.
        labelled = ctx.scored(labelled=True)
        if labelled.predicted is not None and target in labelled.rows.columns:
            actual, predicted = _spelled(ctx, labelled.rows[target], labelled.predicted)
            mask = actual.notna().to_numpy()
            if mask.any():
                pooled = self._pool(ctx, champion.number, actual.to_numpy()[mask], predicted.to_numpy()[mask])
                if pooled is not None:
                    observations += self._measured(ctx, champion.number, task, *pooled)
        scored = ctx.scored()
        probabilities = scored.probabilities
        if probabilities is not None and len(scored.rows) >= ctx.settings.drift_min_rows:
            profile = ctx.profile
            value, how = estimate_accuracy(probabilities, profile.confidence if profile else None)
            observations.append(
                ctx.observe(
                    SOURCE,
                    "accuracy_estimate",
                    value,
                    estimate=True,
                    version=champion.number,
                    rows=len(scored.rows),
                    **how,
                )
            )
        return observations

    def _pool(
        self, ctx: SenseContext, version: int, actual: np.ndarray, predicted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """This tick's labelled rows with those pooled before, once they reach the minimum; else None."""
        held_version, held = self._pooled.pop(ctx.model.name, (version, []))
        # A new champion starts a new pool: rows it did not predict say nothing about it.
        pool = (held if held_version == version else []) + [(actual, predicted)]
        if sum(len(a) for a, _ in pool) < ctx.settings.performance_min_rows:
            self._pooled[ctx.model.name] = (version, pool)
            return None
        return np.concatenate([a for a, _ in pool]), np.concatenate([p for _, p in pool])

    def _measured(
        self, ctx: SenseContext, version: int, task: str, actual: np.ndarray, predicted: np.ndarray
    ) -> list[Observation]:
        name = primary_metric(task)
        scores = metrics(actual, predicted, task)
        held = self._windows.get(ctx.model.name)
        if held is None or held[0] != version:
            # A new champion starts a new window; the old one's rows say nothing about it.
            held = (version, RollingWindow(ctx.settings.performance_window_rows))
            self._windows[ctx.model.name] = held
        window = held[1]
        window.add(actual, predicted)
        rolled = metrics(*window.arrays(), task)
        if task == "regression":
            # The spread of per-row squared errors: the planner tests batches' MSEs against each other with it.
            squared = (np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)) ** 2
            scores = {**scores, "squared_error_variance": float(np.var(squared))}
        return [
            ctx.observe(SOURCE, "performance", scores[name], metric=name, version=version, rows=len(actual), **scores),
            ctx.observe(
                SOURCE,
                "performance_window",
                rolled[name],
                metric=name,
                version=version,
                rows=window.rows,
                window_rows=window.size,
                **rolled,
            ),
        ]
