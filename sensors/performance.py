"""Model sensor: how well the champion predicts the labelled rows that arrived this tick.

Labels arrive after predictions (in labelled batches or through feedback); scoring the champion on them is
the prequential measure of its health: accuracy for classifiers, R² for regressors.
"""

from __future__ import annotations

from knowledge.errors import ArtifactError
from knowledge.values import Observation
from pipeline.evaluate import metrics, primary_metric
from sensors.base import SenseContext

SOURCE = "performance"


class PerformanceSensor:
    """Reports ``performance`` (the primary metric) with every metric and the row count as evidence."""

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion = ctx.champion
        labelled = ctx.rows(labelled=True)
        target = ctx.model.target
        if champion is None or labelled.empty or target not in labelled:
            return []
        labelled = labelled[labelled[target].notna()]
        if labelled.empty:
            return []
        try:
            estimator = ctx.registry.load(champion)
        except ArtifactError:
            return []  # the artifact sensor reports this; a score would only repeat it
        task = ctx.model.task.value
        predicted = estimator.predict(labelled[list(ctx.model.features)])
        actual = labelled[target]
        scores = metrics(actual, predicted, task)
        name = primary_metric(task)
        return [
            ctx.observe(
                SOURCE,
                "performance",
                scores[name],
                metric=name,
                version=champion.number,
                rows=len(labelled),
                **scores,
            )
        ]
