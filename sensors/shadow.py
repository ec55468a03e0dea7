"""Shadow sensor: after heald promotes a retrained version, is it really better than the one it replaced?

For the first ``batches`` labelled batches after a promotion by a retrain, the version it replaced is scored
in shadow on the same labelled rows as the new champion. The reading is ``shadow``: its value is this tick's
mean per-row gain of the champion over the previous version (accuracy points for classifiers; the share of
the batch's label variance explained for regressors, whose mean is the difference of R²), and its evidence
carries the sums the analyzer pools over the window for a paired test (``gain_sum``, ``gain_squares``,
``rows``). Outside a window, a labelled batch gives a reading with ``active`` false: evidence that no
harmful promotion is being judged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from knowledge.errors import ArtifactError
from knowledge.values import Alias, Metric, Task, Version
from pipeline import paired, scoring
from pipeline.evaluate import metrics, primary_metric
from sensors.base import SenseContext

SOURCE = "shadow"


class ShadowSensor:
    """Reports ``shadow`` while a promoted champion is judged against the version it replaced."""

    def __init__(self, batches: int = 4) -> None:
        self.batches = batches

    def sense(self, ctx: SenseContext) -> list[Any]:
        champion = ctx.champion
        labelled = ctx.scored(labelled=True)
        target = ctx.model.target
        if champion is None or labelled.predicted is None or target not in labelled.rows.columns:
            return []
        mask = labelled.rows[target].notna().to_numpy()
        if not mask.any():
            return []
        previous = self._previous(ctx, champion)
        if previous is None:
            return [ctx.observe(SOURCE, Metric.SHADOW, 0.0, active=False, version=champion.number)]
        rows = labelled.rows[mask]
        try:
            old = scoring.predict(ctx.registry.load(previous), rows[list(ctx.model.features)])
        except (ArtifactError, ValueError, TypeError):
            return [ctx.observe(SOURCE, Metric.SHADOW, 0.0, active=False, version=champion.number)]
        actual = rows[target].to_numpy()
        new = labelled.predicted[mask]
        gains, new_score, old_score = _gains(actual, new, old, ctx.model.task)
        return [
            ctx.observe(
                SOURCE,
                Metric.SHADOW,
                float(np.mean(gains)),
                active=True,
                version=champion.number,
                previous=previous.number,
                rows=len(gains),
                gain_sum=float(np.sum(gains)),
                gain_squares=float(np.sum(gains**2)),
                champion_score=new_score,
                previous_score=old_score,
            )
        ]

    def _previous(self, ctx: SenseContext, champion: Version) -> Version | None:
        """The version a retrain's promotion replaced, while the window after that promotion lasts."""
        store = ctx.registry.store
        history = store.alias_history(ctx.model.name, Alias.CHAMPION)
        if not history:
            return None
        move = history[-1]
        made_by_move = move.action_id is not None and champion.created_by == f"action:{move.action_id}"
        if move.to_version != champion.number or move.from_version is None or not made_by_move:
            return None
        seen = len(
            store.batches(
                ctx.model.name, since=move.at + timedelta(microseconds=1), labelled=True, limit=self.batches + 2
            )
        )
        if seen > self.batches:
            return None
        return store.get_version(ctx.model.name, move.from_version)


def _gains(actual: np.ndarray, new: np.ndarray, old: np.ndarray, task: Task) -> tuple[np.ndarray, float, float]:
    """Per-row gains of ``new`` over ``old`` (``pipeline.paired``) and both models' primary metric."""
    name = primary_metric(task.value)
    return (
        paired.gains(actual, new, old, classification=task is Task.CLASSIFICATION),
        metrics(actual, new, task.value)[name],
        metrics(actual, old, task.value)[name],
    )
