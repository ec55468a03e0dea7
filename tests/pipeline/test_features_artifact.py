"""Features: the fitted preprocessing is part of the model file, which loads with only the trusted types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skops.io import dumps, get_untrusted_types

from knowledge.artifacts import TRUSTED_TYPES, ArtifactStore
from pipeline import transformers
from pipeline.features import FeatureOptions, infer_spec, select
from pipeline.train import TrainParams, build
from tests.conftest import mixed_frame


def test_the_pipeline_and_the_registry_trust_the_same_types() -> None:
    """knowledge may not import the pipeline, so it keeps its own copy of the list: they must agree."""
    assert transformers.TRUSTED_TYPES == TRUSTED_TYPES


def test_a_fitted_model_round_trips_through_skops_with_only_the_trusted_types(tmp_path: Path) -> None:
    """Save, verify, load: same predictions; the file asks for nothing outside TRUSTED_TYPES."""
    frame = mixed_frame(300)
    spec = infer_spec(frame, "churned")
    model = build("classification", spec, TrainParams(n_estimators=10)).fit(frame[spec.columns], frame["churned"])
    assert set(get_untrusted_types(data=dumps(model))) <= TRUSTED_TYPES
    store = ArtifactStore(tmp_path)
    sha = store.save_model("m.skops", model)
    loaded = store.load_model("m.skops", sha)
    assert (loaded.predict(frame[spec.columns]) == model.predict(frame[spec.columns])).all()


def test_prediction_coerces_numeric_text_and_handles_unknown_categories() -> None:
    """Rows arriving with numbers as text and categories never seen still get predictions, as the numbers would."""
    frame = mixed_frame(300)
    spec = infer_spec(frame, "churned")
    model = build("classification", spec, TrainParams(n_estimators=10)).fit(frame[spec.columns], frame["churned"])
    rows = frame[spec.columns].head(20)
    as_text = rows.assign(age=rows["age"].map(lambda v: f" {v} "), region="atlantis")
    assert len(model.predict(as_text)) == 20
    assert (model.predict(as_text.assign(region=rows["region"])) == model.predict(rows)).all()
    with pytest.raises(ValueError, match="column 'age' expects numbers, got 'old'"):
        model.predict(rows.assign(age="old"))


def test_constant_correlated_and_datetime_columns_are_left_out_with_reasons() -> None:
    """Columns that carry nothing new are chosen at fit time as plain column lists, each with its reason; a
    date column is kept as the source of date parts."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame(
        {
            "x": x,
            "x_again": x * 2 + 0.001 * rng.normal(size=200),
            "other": rng.normal(size=200),
            "same": 7,
            "when": pd.date_range("2024-01-01", periods=200).astype(str),
            "y": (x > 0).astype(int),
        }
    )
    spec = select(frame, infer_spec(frame, "y"), threshold=0.95)
    assert spec.numeric == ["x", "other"]
    assert spec.dropped["same"] == "a single value" and spec.dates == ["when"]
    assert spec.dropped["x_again"].startswith("correlated with 'x'")
    assert spec.columns == ["x", "other", "when"]  # what serving must send: the columns used, dates included


def test_outliers_are_clipped_and_scaling_is_configurable() -> None:
    """With min-max scaling every engineered numeric value lies in [0, 1] and a huge value is clipped."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"v": np.append(rng.normal(size=199), 1e9), "y": [0, 1] * 100})
    spec = infer_spec(frame, "y", FeatureOptions(scaling="minmax", clip_quantile=0.01))
    prep = build("classification", spec, TrainParams(n_estimators=5)).steps[0][1]
    out = prep.fit_transform(frame[spec.columns])
    assert out.min() >= 0 and out.max() <= 1
    assert prep.transform(pd.DataFrame({"v": [1e12]}))[0, 0] == 1.0
