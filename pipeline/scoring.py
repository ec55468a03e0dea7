"""Scoring a fitted pipeline quickly: the predictions the sensors judge and the API serves, every tick and request.

scikit-learn's fitted ``Pipeline`` answers through machinery built for fitting at scale: a ``ColumnTransformer``
and a ``RandomForest*`` each dispatch their parts through joblib's ``Parallel`` (even with ``n_jobs=1``), and
every dispatched call enters a configuration context and a warnings filter. For the small inputs heald scores
(one served row, a batch of a few hundred), that overhead is most of the cost: a 100-tree forest spends about
17 ms on one row where its trees need about 3 ms, and the feature stage's column dispatch doubles its own work.

``predict`` and ``predict_proba`` walk the same fitted objects sequentially instead: each column group's
fitted steps in turn, the selector's mask, then every tree's output summed in the forest's own order and
divided by the number of trees, exactly as scikit-learn does with one job. The results are bit-identical
(a test compares them on mixed, missing, unseen and one-row inputs, for classification and regression). Any
part this walk does not know (a sparse output, a multi-output forest, another estimator) is handed to
scikit-learn itself, so an unusual model is only slower, never wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import VarianceThreshold
from sklearn.pipeline import Pipeline

from pipeline import frames

Matrix = np.ndarray[Any, Any]
DTYPE = np.float32  # what the trees read (sklearn.tree keeps it private): converting once, before them, is their check


class _UnknownPartError(Exception):
    """A part the sequential walk does not handle: the caller falls back to scikit-learn's own method."""


def predict_proba(estimator: Any, features: pd.DataFrame) -> Matrix:
    """Class probabilities of ``estimator`` (as its ``predict_proba``) for the rows of ``features``."""
    try:
        forest, matrix = _split(estimator, features, RandomForestClassifier)
        return _forest_mean(forest, matrix, proba=True)
    except _UnknownPartError:
        return np.asarray(estimator.predict_proba(features))


def predict(estimator: Any, features: pd.DataFrame) -> Matrix:
    """Predictions of ``estimator`` (as its ``predict``): classes for a classifier, values for a regressor."""
    try:
        forest, matrix = _split(estimator, features, (RandomForestClassifier, RandomForestRegressor))
    except _UnknownPartError:
        return np.asarray(estimator.predict(features))
    if isinstance(forest, RandomForestClassifier):
        probabilities = _forest_mean(forest, matrix, proba=True)
        classes: Matrix = np.asarray(forest.classes_)
        chosen: Matrix = classes.take(np.argmax(probabilities, axis=1), axis=0)
        return chosen
    return _forest_mean(forest, matrix, proba=False)


def _split(estimator: Any, features: pd.DataFrame, kinds: Any) -> tuple[Any, Matrix]:
    """The final forest of ``estimator`` and the matrix its feature steps make of ``features``."""
    if not isinstance(estimator, Pipeline) or not isinstance(estimator.steps[-1][1], kinds):
        raise _UnknownPartError
    forest = estimator.steps[-1][1]
    if getattr(forest, "n_outputs_", 1) != 1:
        raise _UnknownPartError
    matrix: Any = features
    for _, step in estimator.steps[:-1]:
        matrix = _transform(step, matrix)
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
        raise _UnknownPartError
    return forest, np.ascontiguousarray(matrix, dtype=DTYPE)  # the trees' own input check, done once


def _transform(step: Any, data: Any) -> Any:
    if step is None or step == "passthrough":
        return data
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            data = _transform(inner, data)
        return data
    if isinstance(step, ColumnTransformer):
        return _columns(step, data)
    if isinstance(step, VarianceThreshold) and isinstance(data, np.ndarray):
        return data[:, step.get_support()]
    return step.transform(data)


def _columns(transformer: ColumnTransformer, data: Any) -> Matrix:
    """Each fitted column group's output side by side, as ``ColumnTransformer.transform`` stacks them."""
    if not isinstance(data, pd.DataFrame) or transformer.sparse_output_:
        raise _UnknownPartError
    missing = [c for c in transformer.feature_names_in_ if c not in data.columns]
    if missing:
        raise _UnknownPartError  # scikit-learn's own error names the columns
    parts = []
    for _, fitted, columns in transformer.transformers_:
        if (isinstance(fitted, str) and fitted == "drop") or _empty(columns):
            continue
        selected = frames.columns(data, columns)
        passthrough = isinstance(fitted, str) and fitted == "passthrough"
        out = selected.to_numpy() if passthrough else _transform(fitted, selected)
        if sparse.issparse(out) or not isinstance(out, np.ndarray):
            raise _UnknownPartError
        parts.append(out.reshape(len(data), -1))
    if not parts:
        raise _UnknownPartError
    return np.hstack(parts)


def _empty(columns: Any) -> bool:
    return len(columns) == 0 if hasattr(columns, "__len__") else False


def _forest_mean(forest: Any, matrix: Matrix, *, proba: bool) -> Matrix:
    """The mean of the trees' outputs, summed in the forest's order as scikit-learn does with one job."""
    if proba:
        total = np.zeros((matrix.shape[0], len(forest.classes_)), dtype=np.float64)
        for tree in forest.estimators_:
            total += tree.predict_proba(matrix, check_input=False)
    else:
        total = np.zeros(matrix.shape[0], dtype=np.float64)
        for tree in forest.estimators_:
            total += tree.predict(matrix, check_input=False)
    total /= len(forest.estimators_)
    return total
