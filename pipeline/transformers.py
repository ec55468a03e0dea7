"""The transformers of heald's own inside every model artifact: coerce numbers, coerce text, clip, date parts.

scikit-learn has no transformer that reads "12.5" as a number or clips at quantiles, and a
``FunctionTransformer`` would put an arbitrary callable into the model file, which skops (rightly) will not
load without trusting it. These classes hold only numbers and names, so ``knowledge.artifacts`` trusts
them by their full names and nothing else of ours. They follow scikit-learn's conventions (``fit`` returns
self, learned attributes end in ``_``), so they sit in a ``Pipeline`` like any built-in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from pipeline import numbers

# What a model file of heald may ask skops to build beyond its defaults; ``knowledge.artifacts`` keeps the
# same list (a test checks they agree), since the pipeline may not import it.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "pipeline.transformers.NumberCoercer",
        "pipeline.transformers.TextCoercer",
        "pipeline.transformers.QuantileClipper",
        "pipeline.transformers.DateFeatures",
    }
)


def _frame(x: Any) -> pd.DataFrame:
    return x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x, dtype=object))


def _remember(estimator: Any, x: Any) -> None:
    frame = _frame(x)
    estimator.n_features_in_ = frame.shape[1]
    if isinstance(x, pd.DataFrame):
        estimator.feature_names_in_ = np.asarray([str(c) for c in x.columns], dtype=object)


class NumberCoercer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Numbers stay numbers, numeric text (plain, or with units such as "20%" or "$1,200") becomes a number,
    blanks become missing; words are refused."""

    def fit(self, x: Any, y: Any = None) -> NumberCoercer:
        _remember(self, x)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        frame = _frame(x)
        columns = [self._column(frame.iloc[:, i]) for i in range(frame.shape[1])]
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    @staticmethod
    def _column(values: pd.Series[Any]) -> np.ndarray[Any, Any]:
        if numbers.is_text(values):
            words = [v for v in pd.unique(values.dropna()) if numbers.is_word(v)]
            if words:
                # Words where a number belongs are refused, not guessed at: validation says the same of batches.
                raise ValueError(f"column {values.name!r} expects numbers, got {words[0]!r}")
        result: np.ndarray[Any, Any] = numbers.to_numbers(values).to_numpy()
        return result


class TextCoercer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Every value becomes trimmed text (so 1, "1" and " 1" are one category); missing stays missing."""

    def fit(self, x: Any, y: Any = None) -> TextCoercer:
        _remember(self, x)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        frame = _frame(x)
        out = np.empty(frame.shape, dtype=object)
        for i in range(frame.shape[1]):
            column = frame.iloc[:, i]
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            texts = np.asarray([_text(u) for u in uniques] + [np.nan], dtype=object)
            out[:, i] = texts[np.where(codes >= 0, codes, len(uniques))]
        return out


def _text(value: Any) -> Any:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # 1.0 read from a column with gaps is the category "1"
    text = str(value).strip()
    return text if text else np.nan


class QuantileClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clips each column to its [q, 1 - q] quantiles learned at fit: outliers keep their side, not their size."""

    def __init__(self, quantile: float = 0.01) -> None:
        self.quantile = quantile

    def fit(self, x: Any, y: Any = None) -> QuantileClipper:
        _remember(self, x)
        values = np.asarray(x, dtype=float)
        if self.quantile > 0 and len(values):
            self.lower_ = np.nanquantile(values, self.quantile, axis=0)
            self.upper_ = np.nanquantile(values, 1 - self.quantile, axis=0)
        else:
            self.lower_ = np.full(values.shape[1], -np.inf)
            self.upper_ = np.full(values.shape[1], np.inf)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        clipped: np.ndarray[Any, Any] = np.clip(np.asarray(x, dtype=float), self.lower_, self.upper_)
        return clipped


DATE_PARTS = ("dayofweek", "month", "age_days")
SECONDS_PER_DAY = 86_400.0


def _dates(values: pd.Series[Any]) -> pd.Series[Any]:
    """Any date spelling pandas reads in ISO 8601 (with or without a time or zone), as UTC; else missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps: pd.Series[Any] = pd.Series(values)
        utc: pd.Series[Any] = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
        return utc
    parsed: pd.Series[Any] = pd.to_datetime(values.astype("string"), format="ISO8601", errors="coerce", utc=True)
    return parsed


class DateFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Each date column becomes day of week, month and age in days (before the newest date seen at fit).

    The age is counted from a date learned at fit, not from today, so serving the same row twice gives the
    same features whenever it is asked.
    """

    def fit(self, x: Any, y: Any = None) -> DateFeatures:
        _remember(self, x)
        frame = _frame(x)
        newest = [_dates(frame.iloc[:, i]).max() for i in range(frame.shape[1])]
        self.origin_ = np.asarray([t.timestamp() if pd.notna(t) else 0.0 for t in newest], dtype=float)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        frame = _frame(x)
        out = np.full((len(frame), len(DATE_PARTS) * frame.shape[1]), np.nan)
        for i in range(frame.shape[1]):
            stamps = _dates(frame.iloc[:, i])
            seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
            out[:, 3 * i] = stamps.dt.day_of_week.to_numpy(dtype=float, na_value=np.nan)
            out[:, 3 * i + 1] = stamps.dt.month.to_numpy(dtype=float, na_value=np.nan)
            out[:, 3 * i + 2] = (self.origin_[i] - seconds) / SECONDS_PER_DAY
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        names = input_features if input_features is not None else getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{n}_{part}" for n in names for part in DATE_PARTS], dtype=object)
