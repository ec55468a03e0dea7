"""Drift sensor: per-feature two-sample tests of this tick's rows against the champion's reference sample.

Numbers get a Kolmogorov-Smirnov test, categories a chi-square test on their frequencies. A feature counts
as drifted only when its p-value passes a Bonferroni-corrected threshold *and* its effect size (the KS
statistic, or the total variation distance for categories) reaches a floor, so huge samples with trivial
shifts do not raise alarms; below a minimum sample size no verdict is given at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from knowledge.values import Observation, Version
from sensors.base import SenseContext

SOURCE = "drift"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureTest:
    feature: str
    test: str
    statistic: float
    pvalue: float
    effect: float
    drifted: bool

    def evidence(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": round(self.statistic, 6),
            "pvalue": float(f"{self.pvalue:.3g}"),
            "effect": round(self.effect, 6),
            "drifted": self.drifted,
        }


def numeric_test(feature: str, ref: np.ndarray, cur: np.ndarray, alpha: float, floor: float) -> FeatureTest:
    result = stats.ks_2samp(ref, cur)
    statistic, pvalue = float(result.statistic), float(result.pvalue)
    return FeatureTest(
        feature=feature,
        test="ks",
        statistic=statistic,
        pvalue=pvalue,
        effect=statistic,
        drifted=pvalue < alpha and statistic >= floor,
    )


def categorical_test(feature: str, ref: pd.Series[Any], cur: pd.Series[Any], alpha: float, floor: float) -> FeatureTest:
    categories = sorted(set(ref.dropna().astype(str)) | set(cur.dropna().astype(str)))
    ref_counts = ref.dropna().astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    cur_counts = cur.dropna().astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    if len(categories) < 2 or ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return FeatureTest(feature=feature, test="chi2", statistic=0.0, pvalue=1.0, effect=0.0, drifted=False)
    chi2, pvalue, _, _ = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]) + 0.5)
    effect = 0.5 * float(np.abs(ref_counts / ref_counts.sum() - cur_counts / cur_counts.sum()).sum())
    return FeatureTest(
        feature=feature,
        test="chi2",
        statistic=float(chi2),
        pvalue=float(pvalue),
        effect=effect,
        drifted=float(pvalue) < alpha and effect >= floor,
    )


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], *, alpha: float, floor: float
) -> list[FeatureTest]:
    """Test every feature present in both tables; ``alpha`` is family-wise (Bonferroni over features)."""
    shared = [f for f in features if f in reference.columns and f in current.columns]
    corrected = alpha / max(len(shared), 1)
    tests = []
    for feature in shared:
        ref, cur = reference[feature], current[feature]
        if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
            ref_values = ref.dropna().to_numpy(dtype=float)
            cur_values = cur.dropna().to_numpy(dtype=float)
            if len(ref_values) and len(cur_values):
                tests.append(numeric_test(feature, ref_values, cur_values, corrected, floor))
        else:
            tests.append(categorical_test(feature, ref, cur, corrected, floor))
    return tests


class DriftSensor:
    """Reports ``drift_share`` (share of features drifted) with every feature's test as evidence."""

    def __init__(self) -> None:
        self._references: dict[tuple[str, int], pd.DataFrame] = {}

    def sense(self, ctx: SenseContext) -> list[Observation]:
        champion = ctx.champion
        current = ctx.rows()
        if champion is None or current.empty:
            return []
        if len(current) < ctx.settings.drift_min_rows:
            return [ctx.observe(SOURCE, "drift_rows_short", float(len(current)), min_rows=ctx.settings.drift_min_rows)]
        features = list(ctx.model.features)
        tests = compare(
            self._reference(ctx, champion),
            current,
            features,
            alpha=ctx.settings.drift_alpha,
            floor=ctx.settings.drift_min_effect,
        )
        drifted = [t.feature for t in tests if t.drifted]
        share = len(drifted) / len(tests) if tests else 0.0
        return [
            ctx.observe(
                SOURCE,
                "drift_share",
                share,
                version=champion.number,
                rows=len(current),
                drifted=drifted,
                features={t.feature: t.evidence() for t in tests},
            )
        ]

    def _reference(self, ctx: SenseContext, champion: Version) -> pd.DataFrame:
        key = (champion.model, champion.number)
        if key not in self._references:
            self._references[key] = ctx.registry.reference(champion)
        return self._references[key]
