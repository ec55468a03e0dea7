"""Reference profiles: what a version's data looked like, summarised once when the version is registered.

The data sensors compare each incoming batch with this summary rather than with raw reference rows, so a
tick reads only the current batch. Per column the profile keeps its kind, dtype and missing share, and

- for numbers: min, max, mean, standard deviation, deciles (histogram bin edges) with the reference share
  in each bin, and a *sketch*: the sorted values, thinned to at most ``SKETCH_SIZE`` evenly ranked order
  statistics. KS and Wasserstein distances are computed against the sketch; below that size it is the exact
  sorted sample, above it the empirical CDF it gives is off by at most 1/``SKETCH_SIZE``;
- for categories: the share of every category (at most ``MAX_CATEGORIES``).

The model's predictions on the reference rows and the labels get the same summary, so prediction drift and
label drift are checked like features. For classifiers, the accuracy and mean top-class probability on
held-out rows calibrate the accuracy estimate the model sensor reports while labels are late.

A profile is plain JSON (``to_json`` / ``from_json``), kept in ``Version.profile``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from pipeline import scoring
from pipeline.ingest import column_kind
from pipeline.labels import LabelSpec

SKETCH_SIZE = 1000
MAX_CATEGORIES = 1000
DECILES = np.linspace(0.0, 1.0, 11)
FORMAT = 1
# Columns heald adds to the rows it captures itself: they say where a row came from, not what it holds, so
# they are never profiled nor checked against a reference.
# ``source_key`` and ``source_watermark``: a pulled source's row key and watermark (``sensors.sources``).
OWN_COLUMNS = frozenset({"request_id", "served_at", "source_key", "source_watermark"})


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class NumericProfile:
    """A number column of the reference."""

    name: str
    dtype: str
    rows: int
    missing_share: float
    minimum: float
    maximum: float
    mean: float
    std: float
    bin_edges: np.ndarray
    bin_shares: np.ndarray
    sketch: np.ndarray
    kind: str = "numeric"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "rows": self.rows,
            "missing_share": self.missing_share,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "bin_edges": self.bin_edges.tolist(),
            "bin_shares": self.bin_shares.tolist(),
            "sketch": self.sketch.tolist(),
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CategoricalProfile:
    """A category column of the reference: the share of each category (as text)."""

    name: str
    dtype: str
    rows: int
    missing_share: float
    frequencies: dict[str, float]
    truncated: bool = False
    kind: str = "categorical"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "rows": self.rows,
            "missing_share": self.missing_share,
            "frequencies": self.frequencies,
            "truncated": self.truncated,
        }


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, slots=True, kw_only=True)
class Confidence:
    """A classifier's accuracy and mean top-class probability on held-out rows."""

    accuracy: float
    confidence: float
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "confidence": self.confidence, "rows": self.rows}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Profile:
    """Summaries of a version's reference: features, predictions, labels and confidence calibration."""

    rows: int
    columns: dict[str, ColumnProfile]
    prediction: ColumnProfile | None = None
    label: ColumnProfile | None = None
    confidence: Confidence | None = None

    @property
    def label_spec(self) -> LabelSpec | None:
        """How this model's labels are spelled, from the label summary (None without labels)."""
        if isinstance(self.label, CategoricalProfile):
            return LabelSpec.from_classes(list(self.label.frequencies))
        return None if self.label is None else LabelSpec.learn(pd.Series([], dtype=float), classification=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {name: c.to_json() for name, c in self.columns.items()},
            "prediction": self.prediction.to_json() if self.prediction else None,
            "label": self.label.to_json() if self.label else None,
            "confidence": self.confidence.to_json() if self.confidence else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile | None:
        """The profile stored in ``data``, or None for versions registered before profiles existed."""
        if not data or data.get("format") != FORMAT:
            return None
        confidence = data.get("confidence")
        return cls(
            rows=int(data["rows"]),
            columns={name: _column_from_json(name, c) for name, c in data["columns"].items()},
            prediction=_column_from_json("prediction", data["prediction"]) if data.get("prediction") else None,
            label=_label_from_json(data["label"]) if data.get("label") else None,
            confidence=Confidence(**confidence) if confidence else None,
        )


def is_numeric(values: pd.Series[Any]) -> bool:
    """Numbers are tested as distributions; booleans and text are tested as categories."""
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def column_profile(
    name: str, values: pd.Series[Any], *, categorical: bool = False, sketch_size: int = SKETCH_SIZE
) -> ColumnProfile:
    """The summary of one column; ``categorical`` forces category treatment (e.g. predicted classes)."""
    if categorical or not is_numeric(values):
        return _categorical(name, values)
    array = float_values(values)
    numbers = array[~np.isnan(array)]
    numbers.sort()  # the only sort: deciles, sketch, bin shares and extremes are all read off it
    missing = (array.size - numbers.size) / array.size if array.size else 0.0
    return _numeric(name, str(values.dtype), numbers, missing, sketch_size)


def _feature_profile(name: str, values: pd.Series[Any], sketch_size: int) -> ColumnProfile | None:
    """A feature's summary, or None for a date column.

    Dates move with time by nature: they are features (day of week, month, age), not a distribution to hold
    batches to, so they are not profiled (and never "drift"). A text column is counted once: what its values
    mean (dates, numbers, categories) depends only on its distinct values, so the kind is read off those and
    the counts become the category shares, instead of hashing every row again for each question."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        if column_kind(values) == "datetime":
            return None
        return column_profile(name, values, sketch_size=sketch_size)
    counts = raw_counts(values)
    if column_kind(pd.Series(counts.index, dtype=object)) == "datetime":
        return None
    return _categorical(name, values, _text_keyed(counts))


def float_values(values: pd.Series[Any]) -> np.ndarray:
    """A number column as floats, missing as NaN; a float64 column is read without a copy."""
    if values.dtype == np.float64:
        return np.asarray(values.to_numpy())
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return values.to_numpy(dtype=float)
    return values.to_numpy(dtype=float, na_value=np.nan)


def label_profile(labels: pd.Series[Any], spec: LabelSpec) -> ColumnProfile:
    """The summary of a target: class shares in canonical spelling, or a regression target's distribution."""
    normalized = spec.normalize(labels.reset_index(drop=True))
    return column_profile("label", normalized, categorical=spec.classification)


def build_profile(
    reference: pd.DataFrame,
    *,
    features: list[str] | None = None,
    labels: pd.Series[Any] | None = None,
    predictions: Any = None,
    classification: bool = False,
    confidence: Confidence | None = None,
    sketch_size: int = SKETCH_SIZE,
) -> Profile:
    """Summarise ``reference`` (and optionally the labels and the model's predictions on the same rows).

    heald's own columns (``OWN_COLUMNS``) are left out: they are not data the model sees.
    """
    names = list(reference.columns) if features is None else [f for f in features if f in reference.columns]
    names = [n for n in names if n not in OWN_COLUMNS]
    prediction = None
    if predictions is not None:
        prediction = column_profile(
            "prediction", pd.Series(np.asarray(predictions)), categorical=classification, sketch_size=sketch_size
        )
    label = None
    if labels is not None:
        label = label_profile(labels, LabelSpec.learn(labels, classification=classification))
    columns = {}
    for name in names:
        profiled = _feature_profile(name, reference[name], sketch_size)
        if profiled is not None:
            columns[name] = profiled
    return Profile(
        rows=len(reference),
        columns=columns,
        prediction=prediction,
        label=label,
        confidence=confidence,
    )


def profile_version(
    estimator: Any,
    reference: pd.DataFrame,
    *,
    features: list[str],
    labels: pd.Series[Any] | None,
    classification: bool,
    holdout: pd.DataFrame | None = None,
    holdout_labels: pd.Series[Any] | None = None,
) -> Profile:
    """The profile a new version is registered with.

    Features and labels are summarised on ``reference`` (its training rows). Predictions are summarised on
    ``holdout`` rows the model did not learn from when there are some, since a forest predicting its own
    training rows looks more certain and more like the labels than it will on new data; the same rows
    calibrate a classifier's confidence.
    """
    scored = holdout if holdout is not None and len(holdout) else reference
    rows = scored[features]
    probabilities = None
    if classification and hasattr(estimator, "predict_proba"):
        probabilities = scoring.predict_proba(estimator, rows)
        predictions = np.asarray(estimator.classes_)[np.argmax(probabilities, axis=1)]
    else:
        predictions = scoring.predict(estimator, rows)
    confidence = None
    if probabilities is not None and holdout_labels is not None and scored is holdout:
        confidence = measure_confidence(probabilities, np.asarray(estimator.classes_), holdout_labels)
    return build_profile(
        reference,
        features=features,
        labels=labels,
        predictions=predictions,
        classification=classification,
        confidence=confidence,
    )


def measure_confidence(probabilities: np.ndarray, classes: np.ndarray, actual: Any) -> Confidence:
    """Accuracy and mean top-class probability of a classifier on held-out rows (its calibration point)."""
    predicted = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    return Confidence(
        accuracy=float(np.mean(predicted == np.asarray(actual))),
        confidence=float(np.mean(np.max(probabilities, axis=1))),
        rows=len(probabilities),
    )


def sketch(sorted_values: np.ndarray, size: int = SKETCH_SIZE) -> np.ndarray:
    """At most ``size`` evenly ranked order statistics of ``sorted_values`` (all of them if fewer)."""
    if sorted_values.size <= size:
        return sorted_values.copy()
    ranks = np.round(np.linspace(0, sorted_values.size - 1, size)).astype(np.int64)
    return sorted_values[ranks]


def _numeric(name: str, dtype: str, numbers: np.ndarray, missing: float, sketch_size: int) -> NumericProfile:
    """The summary of ``numbers``, which are sorted (so no quantile or bin count needs another pass)."""
    if numbers.size == 0:
        # No values at all: zeros rather than NaN, which PostgreSQL's JSON refuses; rows=0 says it.
        empty = np.array([], dtype=float)
        return NumericProfile(
            name=name,
            dtype=dtype,
            rows=0,
            missing_share=missing,
            minimum=0.0,
            maximum=0.0,
            mean=0.0,
            std=0.0,
            bin_edges=empty,
            bin_shares=empty,
            sketch=empty,
        )
    edges = np.unique(sorted_quantiles(numbers, DECILES))
    return NumericProfile(
        name=name,
        dtype=dtype,
        rows=int(numbers.size),
        missing_share=missing,
        minimum=float(numbers[0]),
        maximum=float(numbers[-1]),
        mean=float(numbers.mean()),
        std=float(numbers.std()),
        bin_edges=edges,
        bin_shares=sorted_bin_shares(numbers, edges),
        sketch=sketch(numbers, sketch_size),
    )


def sorted_quantiles(numbers: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """``np.quantile(numbers, quantiles)`` (linear interpolation) for an already sorted array, without a sort."""
    position = quantiles * (numbers.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, numbers.size - 1)
    weight = position - low
    result: np.ndarray = numbers[low] * (1.0 - weight) + numbers[high] * weight
    return result


def bin_shares(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``numbers`` in each reference bin; values beyond the edges fall in the outer bins."""
    if edges.size < 2:
        return np.ones(1)
    index = np.searchsorted(edges[1:-1], numbers, side="right")
    counts = np.bincount(index, minlength=edges.size - 1)
    return np.asarray(counts / max(numbers.size, 1), dtype=float)


def sorted_bin_shares(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``bin_shares`` for sorted ``numbers``: the edges are looked up in the numbers, not each number in the edges."""
    if edges.size < 2:
        return np.ones(1)
    cuts = np.concatenate(([0], np.searchsorted(numbers, edges[1:-1], side="left"), [numbers.size]))
    return np.asarray(np.diff(cuts) / max(numbers.size, 1), dtype=float)


def category_counts(values: pd.Series[Any]) -> pd.Series[Any]:
    """Counts of each category of ``values`` (missing left out), keyed by its text.

    Counting happens on the raw values and only the distinct ones are turned into text, which is far cheaper
    than ``astype(str)`` on every row; values that differ but read the same (``1`` and ``"1"`` in one column)
    are added together.
    """
    return _text_keyed(raw_counts(values))


def text_counts(values: pd.Series[Any]) -> dict[str, int]:
    """``category_counts`` as a plain dict in first-seen order: what a drift check reads, without building
    and sorting a Series (which costs more than the counting on a small batch)."""
    counts = raw_counts(values)
    result: dict[str, int] = {}
    for key, count in zip(counts.index, counts.to_numpy().tolist(), strict=True):
        text = str(key)
        result[text] = result.get(text, 0) + int(count)
    return result


def raw_counts(values: pd.Series[Any]) -> pd.Series[Any]:
    """How often each distinct value occurs (missing left out), keyed by the value itself, in first-seen order.

    ``factorize`` + ``bincount`` is what ``value_counts`` does inside, without the index building around it:
    about half the time on a text column. A categorical column keeps its declared but unseen categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.value_counts(dropna=True, sort=False)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    return pd.Series(counts, index=uniques)


def _text_keyed(counts: pd.Series[Any]) -> pd.Series[Any]:
    """Raw value counts keyed by each value's text, commonest first (values that read the same added up)."""
    keys = [str(k) for k in counts.index]
    if len(set(keys)) < len(keys):
        counts = pd.Series(counts.to_numpy(), index=keys).groupby(level=0, sort=False).sum()
    else:
        counts.index = pd.Index(keys, dtype=object)
    return counts.sort_values(ascending=False, kind="stable")


def _categorical(name: str, values: pd.Series[Any], counts: pd.Series[Any] | None = None) -> CategoricalProfile:
    counts = category_counts(values) if counts is None else counts
    present = int(counts.sum())
    kept = counts.head(MAX_CATEGORIES)
    shares = kept.to_numpy(dtype=float) / max(present, 1)
    return CategoricalProfile(
        name=name,
        dtype=str(values.dtype),
        rows=present,
        missing_share=(len(values) - present) / len(values) if len(values) else 0.0,
        frequencies=dict(zip(map(str, kept.index), shares.tolist(), strict=True)),
        truncated=len(counts) > MAX_CATEGORIES,
    )


def _label_from_json(data: dict[str, Any]) -> ColumnProfile:
    """A stored label summary, its classes re-spelled canonically (profiles stored before spelled "1.0")."""
    label = _column_from_json("label", data)
    if not isinstance(label, CategoricalProfile):
        return label
    spec = LabelSpec.from_classes(list(label.frequencies))
    shares: dict[str, float] = {}
    for key, share in label.frequencies.items():
        spelled = spec.normalize(pd.Series([key], dtype=object)).iloc[0]
        shares[str(spelled)] = shares.get(str(spelled), 0.0) + share
    return replace(label, frequencies=shares)


def _column_from_json(name: str, data: dict[str, Any]) -> ColumnProfile:
    if data["kind"] == "numeric":
        return NumericProfile(
            name=name,
            dtype=data["dtype"],
            rows=int(data["rows"]),
            missing_share=float(data["missing_share"]),
            minimum=float(data["min"]),
            maximum=float(data["max"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            bin_edges=np.asarray(data["bin_edges"], dtype=float),
            bin_shares=np.asarray(data["bin_shares"], dtype=float),
            sketch=np.asarray(data["sketch"], dtype=float),
        )
    return CategoricalProfile(
        name=name,
        dtype=data["dtype"],
        rows=int(data["rows"]),
        missing_share=float(data["missing_share"]),
        frequencies={str(k): float(v) for k, v in data["frequencies"].items()},
        truncated=bool(data.get("truncated", False)),
    )
