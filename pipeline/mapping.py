"""Schema breaks: rows that lack a feature column are served degraded, and a renamed column is recognised.

Monitor and serve. When a batch or a request lacks a column the champion was trained on (renamed or dropped
upstream), heald keeps answering: ``fill_missing`` fills the missing feature with the reference profile's
typical value (the median of the numbers, the most frequent category), and the caller says the answer is
degraded. Meanwhile ``propose`` looks for the column under a new name: an unknown column whose values look
like the missing one's reference (the same kind; numbers within ``MAX_KS`` Kolmogorov-Smirnov distance of
the reference sketch, categories within ``MAX_TVD`` total variation distance of the reference shares). A
person accepts a proposal (``healctl map``); ``conform`` then renames the column back before anything else
reads the rows, so batches are served and learned normally again. ``conform`` also reads numbers written
with units ("20%", "$1,200") so every consumer sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline import numbers
from pipeline.profile import CategoricalProfile, NumericProfile, Profile

MAX_KS = 0.15  # a 2-sample KS distance a same-distribution column of >= 50 rows stays well under
MAX_TVD = 0.2
MIN_ROWS = 20  # fewer values cannot tell one column from another


def rename(frame: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with each accepted ``new -> old`` rename applied (only where the old name is absent)."""
    renames = {new: old for new, old in mapping.items() if new in frame.columns and old not in frame.columns}
    return frame.rename(columns=renames) if renames else frame


def conform(frame: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Accepted renames applied and numbers written with units read: the shape every consumer expects."""
    return numbers.parse_frame(rename(frame, mapping or {}))[0]


def typical(ref: NumericProfile | CategoricalProfile) -> Any:
    """The value a missing feature is filled with: the reference median, or its most frequent category."""
    if isinstance(ref, NumericProfile):
        return float(np.median(ref.sketch)) if ref.sketch.size else np.nan
    if not ref.frequencies:
        return np.nan
    top = max(ref.frequencies.items(), key=lambda kv: kv[1])[0]
    return {"True": True, "False": False}.get(top, top) if ref.dtype == "bool" else top


def missing_features(frame: pd.DataFrame, features: Iterable[str]) -> list[str]:
    return [f for f in features if f not in frame.columns]


def fill_missing(frame: pd.DataFrame, features: Iterable[str], profile: Profile | None) -> pd.DataFrame:
    """Missing feature columns added, filled from the profile (left missing where it has no summary)."""
    missing = missing_features(frame, features)
    if not missing:
        return frame
    columns = profile.columns if profile is not None else {}
    filled = {c: [typical(columns[c]) if c in columns else np.nan] * len(frame) for c in missing}
    return frame.assign(**filled)


def propose(profile: Profile, frame: pd.DataFrame, missing: list[str], known: Iterable[str]) -> dict[str, str]:
    """Unknown columns of ``frame`` that look like missing features: ``{new: old}``, each used once."""
    unknown = [str(c) for c in frame.columns if c not in set(known) and c not in profile.columns]
    scored = sorted(
        (distance, new, old)
        for old in missing
        if old in profile.columns
        for new in unknown
        if (distance := _distance(profile.columns[old], frame[new])) is not None
    )
    proposals: dict[str, str] = {}
    for _, new, old in scored:
        if new not in proposals and old not in proposals.values():
            proposals[new] = old
    return proposals


def hint(proposals: Mapping[str, str], model: str) -> str:
    """The proposals as a sentence for a person, with the command that accepts each."""
    if not proposals:
        return ""
    each = "; ".join(f"healctl map {model} --from {new} --to {old}" for new, old in proposals.items())
    shown = ", ".join(f"{new!r} looks like the missing {old!r}" for new, old in proposals.items())
    return f" ({shown}: to accept, {each})"


def rename_hint(
    profile: Profile | None, frame: pd.DataFrame, features: list[str], known: Iterable[str], model: str
) -> str:
    """For rows lacking some of ``features``: the renames that would restore them, as a sentence, or ""."""
    missing = missing_features(frame, features)
    if profile is None or not missing:
        return ""
    return hint(propose(profile, frame, missing, {*known, *features}), model)


def _distance(ref: NumericProfile | CategoricalProfile, values: pd.Series[Any]) -> float | None:
    """How far ``values`` are from the reference column, or None if they cannot be the same column."""
    present = values.dropna()
    if len(present) < MIN_ROWS:
        return None
    if isinstance(ref, NumericProfile):
        return _numeric_distance(ref, present)
    return _category_distance(ref, present)


def _numeric_distance(ref: NumericProfile, present: pd.Series[Any]) -> float | None:
    parsed = numbers.to_numbers(present).to_numpy()
    if np.isnan(parsed).any() or ref.sketch.size == 0:
        return None
    current = np.sort(parsed)
    grid = np.union1d(ref.sketch, current)
    reference_cdf = np.searchsorted(ref.sketch, grid, side="right") / ref.sketch.size
    current_cdf = np.searchsorted(current, grid, side="right") / current.size
    statistic = float(np.max(np.abs(reference_cdf - current_cdf)))
    return statistic if statistic <= MAX_KS else None


def _category_distance(ref: CategoricalProfile, present: pd.Series[Any]) -> float | None:
    shares = present.astype(str).value_counts(normalize=True)
    keys = set(ref.frequencies) | set(shares.index)
    tvd = 0.5 * sum(abs(ref.frequencies.get(k, 0.0) - float(shares.get(k, 0.0))) for k in keys)
    return tvd if tvd <= MAX_TVD else None
