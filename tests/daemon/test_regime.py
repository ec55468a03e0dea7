"""Where the current loss regime began: the window rule over a champion's per-batch readings."""

from __future__ import annotations

import numpy as np

from daemon.regime import Reading, classification_reading, reading, regime_start, regression_reading, rising


def accuracies(*values: float, rows: int = 500) -> list[Reading]:
    return [classification_reading(v, rows) for v in values]


def test_a_steady_champion_is_one_regime() -> None:
    rng = np.random.default_rng(1)
    steady = accuracies(*(float(a) for a in rng.binomial(500, 0.9, size=40) / 500))
    assert regime_start(steady) == 0


def test_an_abrupt_change_starts_a_regime_at_its_first_batch() -> None:
    readings = accuracies(*[0.92] * 10, 0.61, 0.60, 0.62)
    assert regime_start(readings) == 10


def test_a_loss_still_falling_leaves_only_the_newest_batch() -> None:
    """A gradual drift under way: each batch is worse than the last, so none older belongs with it."""
    readings = accuracies(*[1.0] * 12, 0.90, 0.75, 0.55)
    assert regime_start(readings) == 14


def test_a_transition_that_settled_joins_the_batches_after_it() -> None:
    readings = accuracies(*[1.0] * 12, 0.90, 0.75, 0.55, 0.50, 0.49)
    assert regime_start(readings) == 14  # 0.55 and 0.50 are within noise of each other on 500 rows each


def test_perfect_batches_still_see_a_small_error_appear() -> None:
    """Zero variance on one side must not make the test blind (or every difference significant)."""
    assert regime_start(accuracies(*[1.0] * 10, 0.95, 0.95)) == 10
    assert regime_start(accuracies(*[1.0] * 10, 0.998)) == 0


def test_regression_readings_compare_mean_squared_errors() -> None:
    rng = np.random.default_rng(2)
    readings = []
    for scale in [1.0] * 8 + [3.0] * 3:
        squared = (rng.normal(scale=scale, size=400)) ** 2
        readings.append(regression_reading(float(squared.mean()), float(squared.var()), 400))
    assert regime_start(readings) == 8


def test_a_reading_comes_from_the_performance_sensors_evidence() -> None:
    assert reading(0.9, {"metric": "accuracy", "rows": 100}) == classification_reading(0.9, 100)
    assert reading(0.5, {"metric": "r2", "rows": 10, "mse": 2.0, "squared_error_variance": 3.0}) == Reading(
        loss=2.0, variance=3.0, rows=10
    )
    assert reading(0.5, {"metric": "r2", "rows": 10}) is None  # written before the variance was recorded
    assert reading(0.9, {"metric": "accuracy"}) is None


def test_fewer_than_two_readings_have_no_change() -> None:
    assert regime_start([]) == 0
    assert regime_start(accuracies(0.5)) == 0


def test_a_steady_climb_is_rising_and_a_plateau_is_not() -> None:
    assert rising(accuracies(0.88, 0.86, 0.84, 0.80))
    assert not rising(accuracies(0.60, 0.62, 0.59, 0.61))
    assert not rising(accuracies(0.80, 0.78))  # two readings make no trend
    rng = np.random.default_rng(3)
    steady = [accuracies(*(float(a) for a in rng.binomial(500, 0.9, size=6) / 500)) for _ in range(200)]
    assert sum(rising(r) for r in steady) <= 2  # about 1 in 700 by chance
