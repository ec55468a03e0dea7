"""Drift sensor: this tick's rows against the champion's reference profile, feature by feature.

Numbers get Kolmogorov-Smirnov and a normalised Wasserstein distance, categories chi-square, Jensen-Shannon
and PSI; the champion's predictions and, when labels came, the labels (in their canonical spelling, so a
reference read as floats and batches read as integers agree) are tested the same way (``pipeline.drift``
holds the statistics and the rules: minimum sample size, effect-size floors, Holm correction). The sensor
reports ``drift_share`` (share of features drifted) with every column's test as evidence, plus
``prediction_drift`` and ``label_drift``.
Persistence and hysteresis are the analyzer's and the incident tracker's job, not the sensor's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from knowledge.values import Observation
from pipeline.drift import ColumnDrift, DriftSettings, compare
from sensors.base import SenseContext

SOURCE = "drift"


def drift_settings(ctx: SenseContext) -> DriftSettings:
    s = ctx.settings
    return DriftSettings(
        alpha=s.drift_alpha,
        min_effect=s.drift_min_effect,
        min_wasserstein=s.drift_min_wasserstein,
        min_psi=s.drift_min_psi,
        min_js=s.drift_min_js,
        min_rows=s.drift_min_rows,
    )


class DriftSensor:
    """Reports ``drift_share`` with per-column evidence, and prediction and label drift."""

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion, profile = ctx.champion, ctx.profile
        current = ctx.rows()
        if champion is None or current.empty:
            return []
        if profile is None:
            return [
                ctx.observe(
                    SOURCE, "drift_unprofiled", 1.0, version=champion.number, reason="version has no reference profile"
                )
            ]
        if len(current) < ctx.settings.drift_min_rows:
            return [ctx.observe(SOURCE, "drift_rows_short", float(len(current)), min_rows=ctx.settings.drift_min_rows)]
        scored = ctx.scored()
        report = compare(
            profile,
            current,
            settings=drift_settings(ctx),
            predictions=scored.predicted,
            labels=_labels(current, ctx.model.target),
        )
        prediction, label = report.column("prediction", "prediction"), report.column("label", "label")
        common: dict[str, Any] = {"version": champion.number, "rows": len(current)}
        observations = [
            ctx.observe(
                SOURCE,
                "drift_share",
                report.share(),
                **common,
                drifted=report.drifted("feature"),
                prediction_drifted=bool(prediction and prediction.drifted),
                label_drifted=bool(label and label.drifted),
                max_effect=round(report.max_effect(), 6),
                correction=report.correction,
                alpha=report.settings.alpha,
                features={c.column: c.evidence() for c in report.columns if c.role == "feature"},
            )
        ]
        observations += [_single(ctx, c, common) for c in (prediction, label) if c is not None]
        return observations


def _labels(current: pd.DataFrame, target: str) -> pd.Series[Any] | None:
    if target not in current.columns:
        return None
    labels = current[target].dropna()
    return labels if len(labels) else None


def _single(ctx: SenseContext, column: ColumnDrift, common: dict[str, Any]) -> Observation:
    return ctx.observe(SOURCE, f"{column.role}_drift", column.effect, **{**column.evidence(), **common})
