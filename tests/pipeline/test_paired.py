"""The paired comparison that guards promotions: a tie or noise never clears the bar, a real gain does, and the
judging rows grow with the model."""

from __future__ import annotations

import numpy as np

from pipeline.paired import gains, judge_rows, lower_bound


def test_a_tie_keeps_the_champion() -> None:
    """Two models that predict the same on every row have a gain whose lower bound is not above zero."""
    y = np.array([0, 1, 1, 0, 1] * 40)
    assert lower_bound(gains(y, y, y, classification=True)) <= 0.0


def test_noise_on_few_rows_does_not_win_but_a_clear_gain_does() -> None:
    """Disagreeing on a handful of rows either way is noise; being right on many more rows is not."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    old = np.where(rng.random(200) < 0.85, y, 1 - y)
    noisy = old.copy()
    noisy[:6] = y[:6]  # a few more right ...
    noisy[6:10] = 1 - y[6:10]  # ... and a few more wrong
    assert lower_bound(gains(y, noisy, old, classification=True)) <= 0.0
    better = np.where(rng.random(200) < 0.97, y, 1 - y)
    assert lower_bound(gains(y, better, old, classification=True)) > 0.0


def test_regression_gains_average_to_the_difference_of_r2() -> None:
    """For regressors the mean per-row gain is exactly R² of the new model minus R² of the old one."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    new, old = y + rng.normal(0, 0.3, 300), y + rng.normal(0, 0.6, 300)

    def r2(p: np.ndarray) -> float:
        return float(1 - np.mean((y - p) ** 2) / np.var(y))

    assert np.isclose(gains(y, new, old, classification=False).mean(), r2(new) - r2(old))


def test_judging_rows_grow_with_the_model_but_leave_half_to_learn() -> None:
    """A fifth of the rows, at least 10 per feature and 30 per class, never more than half."""
    assert judge_rows(400, 5, 2) == 80
    assert judge_rows(400, 30, 2) == 200
    assert judge_rows(1000, 5, 10) == 300
    assert judge_rows(5000, 5, 2) == 1000
