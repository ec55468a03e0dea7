"""Column subsets: the cheap selection equals pandas' own, errors included."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import frames
from tests.conftest import mixed_frame


def test_a_column_subset_is_the_frame_indexed_by_the_names() -> None:
    """frames.columns equals frame[names] for present names in any order, and raises pandas' KeyError for an
    absent one; duplicated column names go pandas' own way too."""
    frame = mixed_frame(50)
    for names in (["plan", "age"], ["churned"], list(frame.columns)[::-1], []):
        pd.testing.assert_frame_equal(frames.columns(frame, names), frame[names])
    with pytest.raises(KeyError, match="nope"):
        frames.columns(frame, ["age", "nope"])
    twice = pd.concat([frame[["age"]], frame[["age"]]], axis=1)
    pd.testing.assert_frame_equal(frames.columns(twice, ["age"]), twice[["age"]])
