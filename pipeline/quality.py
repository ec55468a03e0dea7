"""Data quality of a serving batch against the reference profile of the version that will score it.

Drift asks whether the data *moved*; quality asks whether it is still the data the model was built for:

- schema: feature columns missing, columns the reference never had, columns whose type changed (text where
  the reference had numbers, numbers where it had text labels);
- columns with no values at all, or a missing share well above the reference's;
- categories the reference never saw, and numbers outside the reference's range, above a share.

Each problem names the column, the check and what was seen, so the symptom it becomes can be read by a
person. ``blocking`` problems (missing or empty or retyped features) mean the model cannot score the
batch as it is. Unseen categories and out-of-range numbers are ``notices``: they are how a shifted
distribution looks, so the drift checks own them as symptoms; quality reports their shares as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.profile import CategoricalProfile, NumericProfile, Profile

BLOCKING = ("missing_column", "all_missing", "retyped")
NOTICES = ("unseen_categories", "out_of_range")


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySettings:
    """How far a batch may stray from the reference before it is a quality problem."""

    max_missing_increase: float = 0.2
    max_unseen_share: float = 0.05
    max_out_of_range_share: float = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a batch."""

    column: str
    check: str
    detail: str
    share: float = 1.0

    @property
    def blocking(self) -> bool:
        return self.check in BLOCKING

    @property
    def notice(self) -> bool:
        return self.check in NOTICES

    def evidence(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "detail": self.detail, "share": round(self.share, 4)}


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityReport:
    """The problems of one batch and the shares measured on it."""

    rows: int
    problems: list[Problem]
    missing_share: float
    unseen_share: float
    out_of_range_share: float
    # What the batch was judged with, so that a caller holding this report can tell whether it answers its own
    # question (intake checks each batch once and the quality sensor reuses the report when these match).
    settings: QualitySettings = QualitySettings()
    ignored: tuple[str, ...] = ()

    @property
    def blocking(self) -> bool:
        return any(p.blocking for p in self.problems)

    def summary(self) -> str:
        return "; ".join(p.detail for p in self.problems) or "no problems"


def check(
    profile: Profile, current: pd.DataFrame, *, ignore: tuple[str, ...] = (), settings: QualitySettings | None = None
) -> QualityReport:
    """Problems of ``current`` against ``profile``; columns in ``ignore`` (target, ids) may come and go."""
    settings = settings or QualitySettings()
    problems = [
        Problem(column=c, check="missing_column", detail=f"feature column {c!r} is missing")
        for c in profile.columns
        if c not in current.columns
    ]
    problems += [
        Problem(column=str(c), check="new_column", detail=f"column {c!r} is not in the reference", share=0.0)
        for c in current.columns
        if c not in profile.columns and c not in ignore
    ]
    missing: list[float] = []
    unseen: list[float] = []
    outside: list[float] = []
    for name, ref in profile.columns.items():
        if name not in current.columns:
            continue
        values = current[name]
        found, share = _column(name, ref, values, settings)
        problems += found
        missing.append(float(values.isna().mean()) if len(values) else 0.0)
        (outside if isinstance(ref, NumericProfile) else unseen).append(share)
    return QualityReport(
        rows=len(current),
        problems=problems,
        missing_share=max(missing, default=0.0),
        unseen_share=max(unseen, default=0.0),
        out_of_range_share=max(outside, default=0.0),
        settings=settings,
        ignored=ignore,
    )


def _column(
    name: str, ref: NumericProfile | CategoricalProfile, values: pd.Series[Any], settings: QualitySettings
) -> tuple[list[Problem], float]:
    """Problems of one column, and its unseen or out-of-range share (for the anomaly vector)."""
    if len(values) and values.isna().all():
        return [Problem(column=name, check="all_missing", detail=f"column {name!r} has no values (all missing)")], 0.0
    problems = []
    missing = float(values.isna().mean()) if len(values) else 0.0
    if missing > ref.missing_share + settings.max_missing_increase:
        problems.append(
            Problem(
                column=name,
                check="missing_share",
                detail=f"column {name!r} is {missing:.0%} missing (reference {ref.missing_share:.0%})",
                share=missing,
            )
        )
    if isinstance(ref, NumericProfile):
        found, share = _numeric(name, ref, values.dropna(), settings)
    else:
        found, share = _categorical(name, ref, values.dropna(), settings)
    return problems + found, share


def _numeric(
    name: str, ref: NumericProfile, present: pd.Series[Any], settings: QualitySettings
) -> tuple[list[Problem], float]:
    if pd.api.types.is_bool_dtype(present) or not pd.api.types.is_numeric_dtype(present):
        parsed = pd.to_numeric(present.astype("object"), errors="coerce")
        bad = present[parsed.isna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
            detail = (
                f"column {name!r} was numeric in the reference but has {len(bad)} of {len(present)} "
                f"non-numeric values ({examples})"
            )
            return [Problem(column=name, check="retyped", detail=detail, share=len(bad) / len(present))], 0.0
        present = parsed
    numbers = present.to_numpy(dtype=float)
    if ref.rows == 0 or numbers.size == 0:
        return [], 0.0
    share = float(np.mean((numbers < ref.minimum) | (numbers > ref.maximum)))
    if share <= settings.max_out_of_range_share:
        return [], share
    bounds = f"[{ref.minimum:.4g}, {ref.maximum:.4g}]"
    detail = f"column {name!r} has {share:.1%} of values outside the reference range {bounds}"
    return [Problem(column=name, check="out_of_range", detail=detail, share=share)], share


def _categorical(
    name: str, ref: CategoricalProfile, present: pd.Series[Any], settings: QualitySettings
) -> tuple[list[Problem], float]:
    if present.empty or ref.truncated:
        return [], 0.0
    text = present.astype(str)
    unseen = ~text.isin(ref.frequencies.keys())
    share = float(unseen.mean())
    if pd.api.types.is_numeric_dtype(present) and share == 1.0 and not _numeric_labels(ref):
        detail = f"column {name!r} held text categories in the reference but now holds numbers"
        return [Problem(column=name, check="retyped", detail=detail, share=1.0)], share
    if share <= settings.max_unseen_share:
        return [], share
    examples = ", ".join(repr(v) for v in text[unseen].unique()[:5])
    detail = f"column {name!r} has {share:.1%} of rows in categories the reference never saw ({examples})"
    return [Problem(column=name, check="unseen_categories", detail=detail, share=share)], share


def _numeric_labels(ref: CategoricalProfile) -> bool:
    return all(pd.notna(pd.to_numeric(k, errors="coerce")) for k in ref.frequencies)
