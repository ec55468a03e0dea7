"""The IsolationForest analyzer: a scikit-learn estimator, fed with healthy history, raising anomalies."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import check_estimator

from daemon.anomaly import VECTOR_METRICS, AnomalySettings, AnomalyWatch, ObservationAnomalyDetector
from daemon.compose import Heald
from knowledge.values import Observation, SymptomKind, Version

# By design no training row is flagged (the threshold sits under the out-of-fold scores of healthy
# history), so the two checks that expect a contamination share of training outliers do not apply.
NO_CONTAMINATION = {
    "check_outliers_fit_predict": "threshold is below every healthy training score by design",
    "check_outliers_train": "threshold is below every healthy training score by design",
}


def test_the_detector_passes_scikit_learns_estimator_checks() -> None:
    """fit returns self, learned attributes end in _, batches are scored: scikit-learn's own checks say so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(
            ObservationAnomalyDetector(n_estimators=10), expected_failed_checks=NO_CONTAMINATION, on_fail=None
        )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert len([r for r in results if r["status"] == "passed"]) > 30


def test_healthy_rows_pass_and_rows_far_from_the_healthy_history_are_flagged() -> None:
    """Fresh healthy vectors score normal (at most 1 % flagged); a vector far outside the history is flagged."""
    rng = np.random.default_rng(0)
    accuracy = rng.normal(0.9, 0.01, 300)
    confidence = accuracy - 0.05 + rng.normal(0, 0.003, 300)
    detector = ObservationAnomalyDetector(random_state=0).fit(np.column_stack([accuracy, confidence]))
    assert hasattr(detector, "threshold_") and hasattr(detector, "forest_") and detector.n_features_in_ == 2
    fresh_accuracy = rng.normal(0.9, 0.01, 2000)
    fresh = np.column_stack([fresh_accuracy, fresh_accuracy - 0.05 + rng.normal(0, 0.003, 2000)])
    assert (detector.predict(fresh) == -1).mean() <= 0.01
    assert detector.predict(np.array([[0.6, 0.55], [0.9, 0.7]])).tolist() == [-1, -1]
    assert detector.decision_function(np.array([[0.6, 0.55]]))[0] < 0


def observations(at: datetime, drift: float, performance: float) -> list[Observation]:
    def obs(metric: str, value: float) -> Observation:
        return Observation(at=at, model="shop", source="test", metric=metric, value=value, evidence={"version": 1})

    return [obs("batch_rows", 400.0), obs("drift_share", drift), obs("performance", performance)]


def test_the_watch_warms_up_then_raises_an_anomaly_with_its_evidence(watched: Heald, champion: Version) -> None:
    """No verdict during warm-up; afterwards healthy ticks are judged healthy, and a persisting odd one is raised."""
    rng = np.random.default_rng(1)
    watch = AnomalyWatch(watched.store, AnomalySettings(warmup=30, refit_every=10, persistence=2, window=3))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    verdicts = []
    for i in range(40):
        fresh = observations(start + timedelta(hours=i), 0.0, float(rng.normal(0.9, 0.01)))
        verdicts.append(watch.assess("shop", fresh, start + timedelta(hours=i), healthy=True))
    assert all(v == (False, None) for v in verdicts[:30])
    assert all(v == (True, None) for v in verdicts[30:])
    odd = [
        watch.assess("shop", observations(start + timedelta(hours=50 + i), 0.4, 0.55), start, True) for i in range(2)
    ]
    assert odd[0] == (False, None)
    judged, symptom = odd[1]
    assert judged and symptom is not None and symptom.kind is SymptomKind.ANOMALY
    assert symptom.evidence["anomaly_score"] < symptom.evidence["threshold"]
    assert {u["metric"] for u in symptom.evidence["unusual"][:2]} == {"drift_share", "performance"}
    assert set(symptom.evidence["vector"]) == set(VECTOR_METRICS)
    assert symptom.summary.startswith("observations unlike this model's healthy history")


def test_the_watch_rebuilds_healthy_history_from_the_store(watched: Heald, champion: Version) -> None:
    """After a restart the history comes back from stored observations, so no new warm-up is needed."""
    rng = np.random.default_rng(2)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(35):
        watched.store.add_observations(observations(start + timedelta(hours=i), 0.0, float(rng.normal(0.9, 0.01))))
    watch = AnomalyWatch(watched.store, AnomalySettings(warmup=30))
    at = start + timedelta(hours=40)
    assert watch.assess("shop", observations(at, 0.0, 0.9), at, healthy=True) == (True, None)
