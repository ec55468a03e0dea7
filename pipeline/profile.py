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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.ingest import column_kind

SKETCH_SIZE = 1000
MAX_CATEGORIES = 1000
DECILES = np.linspace(0.0, 1.0, 11)
FORMAT = 1


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
            label=_column_from_json("label", data["label"]) if data.get("label") else None,
            confidence=Confidence(**confidence) if confidence else None,
        )


def is_numeric(values: pd.Series[Any]) -> bool:
    """Numbers are tested as distributions; booleans and text are tested as categories."""
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def column_profile(
    name: str, values: pd.Series[Any], *, categorical: bool = False, sketch_size: int = SKETCH_SIZE
) -> ColumnProfile:
    """The summary of one column; ``categorical`` forces category treatment (e.g. predicted classes)."""
    total = len(values)
    present = values.dropna()
    missing = (total - len(present)) / total if total else 0.0
    if categorical or not is_numeric(values):
        return _categorical(name, values, present, missing)
    numbers = np.sort(present.to_numpy(dtype=float))
    return _numeric(name, str(values.dtype), numbers, missing, sketch_size)


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
    """Summarise ``reference`` (and optionally the labels and the model's predictions on the same rows)."""
    names = list(reference.columns) if features is None else [f for f in features if f in reference.columns]
    # Dates move with time by nature: they are features (day of week, month, age), not a distribution to hold
    # batches to, so they are not profiled (and never "drift").
    names = [n for n in names if column_kind(reference[n]) != "datetime"]
    prediction = None
    if predictions is not None:
        prediction = column_profile(
            "prediction", pd.Series(np.asarray(predictions)), categorical=classification, sketch_size=sketch_size
        )
    label = None
    if labels is not None:
        label = column_profile("label", labels.reset_index(drop=True), categorical=classification)
    return Profile(
        rows=len(reference),
        columns={n: column_profile(n, reference[n], sketch_size=sketch_size) for n in names},
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
        probabilities = np.asarray(estimator.predict_proba(rows))
        predictions = np.asarray(estimator.classes_)[np.argmax(probabilities, axis=1)]
    else:
        predictions = np.asarray(estimator.predict(rows))
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
    edges = np.unique(np.quantile(numbers, DECILES))
    shares = bin_shares(numbers, edges)
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
        bin_shares=shares,
        sketch=sketch(numbers, sketch_size),
    )


def bin_shares(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``numbers`` in each reference bin; values beyond the edges fall in the outer bins."""
    if edges.size < 2:
        return np.ones(1)
    index = np.searchsorted(edges[1:-1], numbers, side="right")
    counts = np.bincount(index, minlength=edges.size - 1)
    return np.asarray(counts / max(numbers.size, 1), dtype=float)


def _categorical(name: str, values: pd.Series[Any], present: pd.Series[Any], missing: float) -> CategoricalProfile:
    counts = present.astype(str).value_counts()
    truncated = len(counts) > MAX_CATEGORIES
    shares = (counts / max(len(present), 1)).head(MAX_CATEGORIES)
    return CategoricalProfile(
        name=name,
        dtype=str(values.dtype),
        rows=len(present),
        missing_share=missing,
        frequencies={str(k): float(v) for k, v in shares.items()},
        truncated=truncated,
    )


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
