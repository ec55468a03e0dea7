"""The performance sensor's classification metrics are counted without scikit-learn's input checks (a large part of
a model's tick): the values must be exactly scikit-learn's, and labels those checks exist for still meet them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from pipeline.evaluate import metrics


def reference(actual: Any, predicted: Any) -> dict[str, float]:
    """What scikit-learn's own scorers say, one call per metric."""
    out = {"accuracy": float(accuracy_score(actual, predicted))}
    for name, scorer in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        for average in ("macro", "weighted"):
            out[f"{name}_{average}"] = float(scorer(actual, predicted, average=average, zero_division=0))
    return out


def cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    made = []
    for k in range(60):
        classes = int(rng.integers(1, 6))
        rows = int(rng.integers(1, 400))
        actual = rng.integers(0, classes, rows)
        # Predictions right most of the time, sometimes a class the labels never had.
        predicted = np.where(rng.random(rows) < 0.7, actual, rng.integers(0, classes + 1, rows))
        made.append((f"ints-{k}", actual, predicted))
        words = np.array(["red", "green", "blue", "cyan", "pink", "gray", "teal"], dtype=object)
        made.append((f"text-{k}", words[actual], words[predicted]))
        made.append((f"floats-{k}", actual.astype(float), predicted.astype(float)))
    made.append(("one-class", np.array(["a"] * 5, dtype=object), np.array(["a"] * 5, dtype=object)))
    made.append(("none-right", np.array([0, 0, 1]), np.array([1, 1, 2])))
    return made


@pytest.mark.parametrize(("name", "actual", "predicted"), cases(), ids=[c[0] for c in cases()])
def test_counted_metrics_equal_scikit_learns_exactly(name: str, actual: np.ndarray, predicted: np.ndarray) -> None:
    """Accuracy and macro and weighted precision, recall and F1 are bit for bit scikit-learn's, whatever the label
    type, the class count, classes only predicted or never predicted."""
    assert metrics(actual, predicted, "classification") == reference(actual, predicted)


BAD = [
    (np.array([1, 0, 1], dtype=object), np.array(["1", "0", 1], dtype=object)),  # numbers and words mixed
    (np.array([0.5, 1.0, 2.0]), np.array([0.5, 1.0, 2.5])),  # continuous: not classes
    (np.array(["a", None, "b"], dtype=object), np.array(["a", "b", "b"], dtype=object)),  # a missing label
]


@pytest.mark.parametrize(("actual", "predicted"), BAD)
def test_labels_scikit_learn_refuses_are_still_refused(actual: np.ndarray, predicted: np.ndarray) -> None:
    """Mixed, continuous or missing labels go through scikit-learn's checks: the same error as its scorers give."""
    with pytest.raises((ValueError, TypeError)) as theirs:
        reference(actual, predicted)
    with pytest.raises(type(theirs.value)):
        metrics(actual, predicted, "classification")
