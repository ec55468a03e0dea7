"""Features, the third stage: the preprocessing half of every model heald trains.

``infer_spec`` decides what each column is for: numbers (and booleans, and numbers written with units) are
numeric features, text is categorical, dates become day of week, month and age in days; columns unique
per row (identifiers), columns the user excluded and columns without a usable value are left out with the
reason recorded, and are not inputs of the model: ``FeatureSpec.columns`` is what serving must send.
``select`` then drops, on the training rows only, numeric columns that nearly repeat another (|r| above a
threshold), so the choice is fixed at fit time as plain column lists. ``preprocessor`` builds the
scikit-learn ``Pipeline``: a ``ColumnTransformer`` that coerces, imputes (median or mean; most frequent
for categories), clips outliers at quantiles and scales (standard or min-max) the numbers, and one-hot
encodes the categories with unknown and rare ones grouped; then a ``VarianceThreshold`` drops any output
that does not vary. The fitted preprocessing travels inside the model artifact, so prediction applies
exactly the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from pipeline import numbers
from pipeline.ingest import column_kind, is_identifier
from pipeline.transformers import DateFeatures, NumberCoercer, QuantileClipper, TextCoercer

Scaling = Literal["standard", "minmax", "none"]
Impute = Literal["median", "mean"]
CORRELATION_SAMPLE = 20_000  # rows enough to tell |r| > 0.95 from below it, at a fraction of the cost


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureOptions:
    """How features are engineered; taken from the ``[pipeline]`` config table."""

    numeric_impute: Impute = "median"
    scaling: Scaling = "standard"
    clip_quantile: float = 0.01
    correlation_threshold: float = 0.95
    max_categories: int = 50
    exclude: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSpec:
    """The input columns, which of them are used as numbers or categories, and why the others are not."""

    numeric: list[str]
    categorical: list[str]
    numeric_impute: str = "median"
    scaling: str = "standard"
    clip_quantile: float = 0.01
    max_categories: int = 50
    inputs: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """What the fitted pipeline takes as input: the used columns, in the table's order."""
        used = set(self.used)
        return [c for c in self.inputs if c in used] if self.inputs else self.used

    @property
    def used(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.dates]

    def as_json(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "numeric_impute": self.numeric_impute,
            "scaling": self.scaling,
            "clip_quantile": self.clip_quantile,
            "max_categories": self.max_categories,
            "inputs": self.inputs,
            "dropped": self.dropped,
            "dates": self.dates,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**data)


def infer_spec(frame: pd.DataFrame, target: str | None = None, options: FeatureOptions | None = None) -> FeatureSpec:
    """Numbers and booleans are numeric features, text is categorical, dates give date parts; the rest is
    left out with a reason."""
    options = options or FeatureOptions()
    inputs = [str(c) for c in frame.columns if c != target]
    numeric: list[str] = []
    categorical: list[str] = []
    dates: list[str] = []
    dropped: dict[str, str] = {}
    for column in inputs:
        values = frame[column]
        reason = _unused(column, values, options)
        if reason:
            dropped[column] = reason
            continue
        kind = column_kind(values)
        if kind == "datetime":
            dates.append(column)
        elif kind in ("numeric", "boolean"):
            numeric.append(column)
        elif is_identifier(values):
            dropped[column] = "unique per row (an identifier)"
        else:
            categorical.append(column)
    return FeatureSpec(
        dates=dates,
        numeric=numeric,
        categorical=categorical,
        numeric_impute=options.numeric_impute,
        scaling=options.scaling,
        clip_quantile=options.clip_quantile,
        max_categories=options.max_categories,
        inputs=inputs,
        dropped=dropped,
    )


def _unused(column: str, values: pd.Series[Any], options: FeatureOptions) -> str | None:
    """Why ``column`` cannot or should not be a feature, or None."""
    if column in options.exclude:
        return "excluded by the config"
    if values.notna().sum() == 0:
        return "no values"
    if values.nunique(dropna=True) <= 1:
        return "a single value"
    if pd.api.types.is_integer_dtype(values) and is_identifier(values):
        return "unique per row (an identifier)"
    return None


def select(frame: pd.DataFrame, spec: FeatureSpec, threshold: float = 0.95) -> FeatureSpec:
    """Drop numeric columns whose |correlation| with an earlier kept column exceeds ``threshold``."""
    if threshold >= 1 or len(spec.numeric) < 2:
        return spec
    rows = frame if len(frame) <= CORRELATION_SAMPLE else frame.iloc[:: len(frame) // CORRELATION_SAMPLE]
    block = np.column_stack([numbers.to_numbers(rows[c]).to_numpy() for c in spec.numeric])
    medians = pd.DataFrame(block).median().fillna(0.0).to_numpy()  # pandas: no warning on an empty column
    block = np.where(np.isnan(block), medians, block)
    spread = block.std(axis=0)
    varying = spread > 0
    corr = np.zeros((len(spec.numeric), len(spec.numeric)))
    if varying.sum() >= 2:
        corr[np.ix_(varying, varying)] = np.abs(np.corrcoef(block[:, varying], rowvar=False))
    kept: list[int] = []
    dropped = dict(spec.dropped)
    for j, column in enumerate(spec.numeric):
        twin = next((i for i in kept if corr[i, j] > threshold), None)
        if twin is None:
            kept.append(j)
        else:
            dropped[column] = f"correlated with {spec.numeric[twin]!r} (|r| = {corr[twin, j]:.3f})"
    return replace(spec, numeric=[spec.numeric[i] for i in kept], dropped=dropped)


def preprocessor(spec: FeatureSpec) -> Pipeline:
    """An unfitted preprocessing pipeline for ``spec``."""
    steps: list[tuple[str, Pipeline, list[str]]] = []
    if spec.numeric:
        steps.append(("numeric", _numeric(spec), spec.numeric))
    if spec.categorical:
        steps.append(("categorical", _categorical(spec), spec.categorical))
    if spec.dates:
        dated = Pipeline(
            [("parts", DateFeatures()), ("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        )
        steps.append(("dates", dated, spec.dates))
    columns = ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)
    return Pipeline([("columns", columns), ("varying", VarianceThreshold(0.0))])


def _numeric(spec: FeatureSpec) -> Pipeline:
    scaler: Any = {"standard": StandardScaler(), "minmax": MinMaxScaler()}.get(spec.scaling, "passthrough")
    return Pipeline(
        [
            ("coerce", NumberCoercer()),
            ("impute", SimpleImputer(strategy=spec.numeric_impute, keep_empty_features=True)),
            ("clip", QuantileClipper(quantile=spec.clip_quantile)),
            ("scale", scaler),
        ]
    )


def _categorical(spec: FeatureSpec) -> Pipeline:
    return Pipeline(
        [
            ("coerce", TextCoercer()),
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", max_categories=spec.max_categories, sparse_output=False
                ),
            ),
        ]
    )


def source_columns(names: list[str], spec: FeatureSpec) -> list[str]:
    """The input column behind each output name of a fitted preprocessor (for feature importances)."""
    out = []
    for name in names:
        branch, _, rest = name.partition("__")
        if branch == "numeric":
            out.append(rest)
            continue
        candidates = spec.dates if branch == "dates" else spec.categorical
        owners = [c for c in candidates if rest == c or rest.startswith(f"{c}_")]
        out.append(max(owners, key=len) if owners else rest)
    return out
