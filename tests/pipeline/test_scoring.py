"""Scoring: the sequential walk gives exactly scikit-learn's predictions, and hands it what it does not know."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import scoring
from pipeline.features import infer_spec
from pipeline.train import TrainParams, build
from tests.conftest import mixed_frame


def _served(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """Inputs a model meets: a batch, one row, rows with gaps, unseen categories and numbers sent as text."""
    odd = frame.head(40).copy()
    odd["plan"] = odd["plan"].astype(object)
    odd.loc[odd.index[:10], "plan"] = "enterprise"  # never seen in training
    odd.loc[odd.index[10:20], "age"] = np.nan
    odd["income"] = odd["income"].astype(str)  # numbers as text, as a CSV or JSON client may send them
    empty_plan = frame.head(5).copy()
    empty_plan["plan"] = None
    return [frame, frame.head(1), odd, empty_plan, frame.iloc[::-1]]


@pytest.mark.parametrize("trees", [1, 7, 30])
def test_classifier_probabilities_and_classes_are_scikit_learns_bit_for_bit(trees: int) -> None:
    """predict_proba and predict equal the pipeline's own on every kind of input, with no tolerance."""
    frame = mixed_frame(300)
    spec = infer_spec(frame, "churned")
    model = build("classification", spec, TrainParams(n_estimators=trees, n_jobs=1)).fit(
        frame[spec.columns], frame["churned"]
    )
    for rows in _served(frame[spec.columns]):
        assert np.array_equal(scoring.predict_proba(model, rows), model.predict_proba(rows))
        assert np.array_equal(scoring.predict(model, rows), model.predict(rows))


def test_regressor_predictions_are_scikit_learns_bit_for_bit() -> None:
    """A regression forest's mean over trees equals RandomForestRegressor.predict exactly."""
    frame = load_diabetes(as_frame=True).frame
    spec = infer_spec(frame, "target")
    model = build("regression", spec, TrainParams(n_estimators=25, n_jobs=1)).fit(frame[spec.columns], frame["target"])
    for rows in (frame[spec.columns], frame[spec.columns].head(1)):
        assert np.array_equal(scoring.predict(model, rows), model.predict(rows))


def test_a_model_of_another_shape_is_scored_by_scikit_learn_itself() -> None:
    """Not our pipeline (a boosted model, no ColumnTransformer): the result is the estimator's own method's."""
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (x["a"] > 0).astype(int)
    boosted = Pipeline([("scale", StandardScaler()), ("model", GradientBoostingClassifier(n_estimators=5))]).fit(x, y)
    bare = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    for model in (boosted, bare):
        assert np.array_equal(scoring.predict_proba(model, x), model.predict_proba(x))
        assert np.array_equal(scoring.predict(model, x), model.predict(x))


def test_missing_columns_raise_scikit_learns_error_naming_them() -> None:
    """Rows without a trained column get the same ValueError as the pipeline's, not a KeyError of the walk."""
    frame = mixed_frame(200)
    spec = infer_spec(frame, "churned")
    model = build("classification", spec, TrainParams(n_estimators=3)).fit(frame[spec.columns], frame["churned"])
    rows: Any = frame[spec.columns].drop(columns=["plan"])
    with pytest.raises(ValueError, match="plan"):
        scoring.predict_proba(model, rows)
