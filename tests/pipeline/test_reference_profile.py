"""Reference profiles: computed once at registration, plain JSON, and faithful to the reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.drift import distances
from pipeline.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    profile_version,
    sketch,
)


def test_profile_survives_a_json_round_trip() -> None:
    """What the registry stores (JSON) reads back into the same summaries."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    frame.loc[:9, "x"] = np.nan
    profile = build_profile(frame, labels=pd.Series(rng.integers(0, 2, 500)), classification=True)
    again = Profile.from_json(json.loads(json.dumps(profile.to_json(), allow_nan=False)))
    assert again is not None
    x, c = again.columns["x"], again.columns["c"]
    assert isinstance(x, NumericProfile) and isinstance(c, CategoricalProfile)
    assert x.rows == 490 and x.missing_share == 0.02
    assert np.array_equal(x.sketch, np.sort(frame["x"].dropna().to_numpy()))
    assert abs(sum(c.frequencies.values()) - 1.0) < 1e-9
    assert isinstance(again.label, CategoricalProfile) and set(again.label.frequencies) == {"0", "1"}


def test_versions_without_a_profile_read_as_none() -> None:
    """A version registered before profiles existed has ``{}``; the sensors treat it as unprofiled."""
    assert Profile.from_json({}) is None


def test_sketch_keeps_the_empirical_cdf_within_one_over_its_size() -> None:
    """Thinning 200k values to 1,000 order statistics moves the KS statistic by at most 1/1000."""
    rng = np.random.default_rng(1)
    reference = np.sort(rng.gamma(2.0, 3.0, 200_000))
    current = np.sort(rng.gamma(2.2, 3.0, 5_000))
    thin = sketch(reference, 1000)
    assert thin.size == 1000 and thin[0] == reference[0] and thin[-1] == reference[-1]
    exact = stats.ks_2samp(reference, current).statistic
    approx, _ = distances(thin, current)
    assert abs(approx - exact) <= 1 / 1000 + 1e-12


def test_an_all_missing_reference_column_has_no_nan_in_its_json() -> None:
    """PostgreSQL's JSON refuses NaN, so an empty numeric column is summarised with zeros and rows=0."""
    frame = pd.DataFrame({"x": [np.nan] * 10, "y": np.arange(10.0)})
    text = json.dumps(build_profile(frame).to_json(), allow_nan=False)
    assert '"rows": 0' in text


def test_profile_version_calibrates_confidence_on_holdout_rows() -> None:
    """Predictions are profiled on rows the model did not learn from, which also calibrate its confidence."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(2)
    x = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200)})
    y = pd.Series((x["a"] + 0.5 * rng.normal(size=1200) > 0).astype(int))
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x[:1000], y[:1000])
    profile = profile_version(
        model,
        x[:1000],
        features=["a", "b"],
        labels=y[:1000],
        classification=True,
        holdout=x[1000:],
        holdout_labels=y[1000:],
    )
    assert profile.confidence is not None and profile.confidence.rows == 200
    held_out_accuracy = float((model.predict(x[1000:]) == y[1000:]).mean())
    assert profile.confidence.accuracy == held_out_accuracy
    assert isinstance(profile.prediction, CategoricalProfile) and profile.prediction.rows == 200
