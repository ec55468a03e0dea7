"""Training: stratified split, k-fold cross-validation, grid and random search chosen by config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from pipeline.train import TrainParams, TuningParams, fit_forest, search_space, split


def test_the_split_holds_out_a_fifth_and_keeps_class_shares() -> None:
    """80:20, stratified: both parts keep the 10 % minority class."""
    frame = pd.DataFrame({"x": range(500), "y": [1] * 50 + [0] * 450})
    learn, test = split(frame, target="y", task="classification")
    assert (len(learn), len(test)) == (400, 100)
    assert learn["y"].mean() == pytest.approx(0.1) and test["y"].mean() == pytest.approx(0.1)


def test_cross_validation_reports_mean_and_spread() -> None:
    """With cv_folds = 4 the summary has four scores whose mean and standard deviation it reports."""
    x, y = make_classification(200, 6, random_state=0)
    fitted = fit_forest(
        x, y, task="classification", params=TrainParams(n_estimators=10), tuning=TuningParams(cv_folds=4)
    )
    assert fitted.cv is not None and fitted.cv.folds == 4 and len(fitted.cv.scores) == 4
    assert fitted.cv.mean == pytest.approx(np.mean(fitted.cv.scores))
    assert fitted.cv.std == pytest.approx(np.std(fitted.cv.scores))


@pytest.mark.parametrize("tuning", ["grid", "random"])
def test_searches_choose_parameters_from_their_space(tuning: str) -> None:
    """Grid and random search try several candidates and the chosen parameters come from the space."""
    x, y = make_classification(150, 5, random_state=0)
    params = TrainParams(n_estimators=10)
    fitted = fit_forest(
        x,
        y,
        task="classification",
        params=params,
        tuning=TuningParams(tuning=tuning, cv_folds=2, search_iterations=3),  # type: ignore[arg-type]
    )
    space = search_space(params, tuning)  # type: ignore[arg-type]
    grid_size = int(np.prod([len(v) for v in space.values()])) if tuning == "grid" else 3
    assert fitted.tuning == tuning and fitted.candidates == grid_size
    assert fitted.params["max_features"] in space["max_features"]
    assert set(space) == {"n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features"}


def test_folds_shrink_to_the_smallest_class() -> None:
    """Three rows of a class cannot fill five stratified folds: three are used, and the note says why."""
    x = np.arange(60, dtype=float).reshape(-1, 1)
    y = np.array([1] * 3 + [0] * 57)
    fitted = fit_forest(
        x, y, task="classification", params=TrainParams(n_estimators=5), tuning=TuningParams(cv_folds=5)
    )
    assert fitted.cv is not None and fitted.cv.folds == 3 and "smallest class" in fitted.note
