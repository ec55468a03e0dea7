"""Data quality of a batch against the reference: each problem named with its column and what was seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.profile import build_profile
from pipeline.quality import check


def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=500), "region": rng.choice(["north", "south"], 500)})


def checks(current: pd.DataFrame) -> dict[str, str]:
    report = check(build_profile(reference()), current, ignore=("label",))
    return {f"{p.check}:{p.column}": p.detail for p in report.problems}


def test_a_clean_batch_has_no_problems() -> None:
    """Rows like the reference (plus the label column, which may come and go) pass."""
    rng = np.random.default_rng(1)
    clean = pd.DataFrame({"x": rng.normal(size=200), "region": rng.choice(["north", "south"], 200), "label": 1})
    assert checks(clean) == {}


def test_schema_changes_are_named() -> None:
    """A missing feature, a new column and a retyped column each get their own problem."""
    batch = pd.DataFrame({"x": ["1.5", "abc", "2"], "extra": [1, 2, 3]})
    found = checks(batch)
    assert "feature column 'region' is missing" in found["missing_column:region"]
    assert "'extra' is not in the reference" in found["new_column:extra"]
    assert "non-numeric values ('abc')" in found["retyped:x"]


def test_numbers_where_text_categories_were_are_retyped() -> None:
    """A category column that arrives as numbers is a type change, not merely unseen categories."""
    found = checks(pd.DataFrame({"x": [0.1, 0.2], "region": [1, 2]}))
    assert "now holds numbers" in found["retyped:region"]


def test_empty_columns_missing_shares_unseen_categories_and_range() -> None:
    """All-missing, mostly missing, unseen categories and out-of-range values are each reported."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    x[:150] = np.nan
    batch = pd.DataFrame({"x": x, "region": ["west"] * 40 + ["north"] * 160})
    found = checks(batch)
    assert "75% missing" in found["missing_share:x"]
    assert "'west'" in found["unseen_categories:region"]
    only_nan = checks(pd.DataFrame({"x": [np.nan] * 5, "region": ["north"] * 5}))
    assert "has no values" in only_nan["all_missing:x"]
    far = checks(pd.DataFrame({"x": np.full(50, 99.0), "region": ["north"] * 50}))
    assert "outside the reference range" in far["out_of_range:x"]
