"""Analyze, the learned half: an IsolationForest over the vector of a model's recent observations.

Threshold rules catch what they name; this catches combinations no rule names (a drift share a little up
while the confidence estimate is a little down and batches shrink). Each tick with data gives the model one
vector: the values of ``VECTOR_METRICS`` (a metric absent this tick keeps its last value).

``ObservationAnomalyDetector`` is a scikit-learn estimator (``fit`` returns self, learned attributes end in
``_``, ``score_samples``/``predict`` take a batch of rows). Its threshold is a low quantile of *out-of-fold*
scores (each half of the history scored by a forest grown on the other half) less a tolerance, because a
forest scores the very rows it was grown on as more normal than it will ever score a new healthy row.
A forest's score saturates outside the range it was grown on (a point far beyond the edge lands in the
same leaves as the edge), so a row more than ``max_deviation`` interquartile ranges from the healthy
median has its score lowered by the excess: far-out values are anomalous however the trees split. The
interquartile range is floored per metric (``MIN_SCALES``) so a very calm history does not make trivial
wobbles look far.

``AnomalyWatch`` keeps each model's healthy history (ticks without symptoms or open incidents, rebuilt from
the knowledge store after a restart), waits for ``warmup`` vectors, refits every ``refit_every`` new ones,
and raises an ``anomaly`` symptom when ``persistence`` of the last ``window`` vectors score below the
threshold. The symptom's evidence has the score, the threshold, the vector, and the metrics furthest from
their healthy median.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted, validate_data

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Incident, Observation, Severity, Symptom, SymptomKind

VECTOR_METRICS = (
    "drift_share",
    "prediction_drift",
    "label_drift",
    "performance",
    "performance_window",
    "accuracy_estimate",
    "data_quality",
    "batch_rows",
)
SUMMED = frozenset({"data_quality", "batch_rows"})  # several batches a tick add up; the rest are averaged
# The smallest spread each metric is measured in: a PSI of 0.008 against a usual 0.001 is eight
# interquartile ranges of a very calm history, and still nothing (the drift floors are 0.1).
MIN_SCALES = {
    "drift_share": 0.05,
    "prediction_drift": 0.05,
    "label_drift": 0.05,
    "performance": 0.02,
    "performance_window": 0.02,
    "accuracy_estimate": 0.02,
    "data_quality": 1.0,
    "batch_rows": 0.0,
}


class ObservationAnomalyDetector(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """IsolationForest with a threshold set on out-of-fold scores of its (healthy) training rows."""

    def __init__(
        self,
        n_estimators: int = 100,
        quantile: float = 0.01,
        tolerance: float = 0.05,
        max_deviation: float = 8.0,
        min_scale: Any = 0.0,
        random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.quantile = quantile
        self.tolerance = tolerance
        self.max_deviation = max_deviation
        self.min_scale = min_scale
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> ObservationAnomalyDetector:  # noqa: N803 (scikit-learn's name)
        X = validate_data(self, X, dtype=np.float64)  # noqa: N806
        self.forest_ = self._forest().fit(X)
        self.center_ = np.median(X, axis=0)
        spread = np.percentile(X, 75, axis=0) - np.percentile(X, 25, axis=0)
        scale = np.where(spread > 0, spread, np.maximum(np.abs(self.center_) * 0.1, 1e-3))
        self.scale_ = np.maximum(scale, np.broadcast_to(np.asarray(self.min_scale, dtype=float), scale.shape))
        self.threshold_ = float(np.quantile(self._out_of_fold(X), self.quantile)) - self.tolerance
        self.offset_ = self.threshold_
        return self

    def score_samples(self, X: Any) -> np.ndarray:  # noqa: N803
        """Higher is more normal (IsolationForest's convention): about -0.5 typical, towards -1 anomalous."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)  # noqa: N806
        return self._scores(X)

    def _scores(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        excess = np.max(np.abs((X - self.center_) / self.scale_), axis=1) - self.max_deviation
        scores: np.ndarray = self.forest_.score_samples(X) - 0.05 * np.maximum(excess, 0.0)
        return scores

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803
        """Negative for anomalies: the score less the threshold."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """-1 for anomalies, 1 for normal rows (scikit-learn's outlier convention)."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def deviations(self, row: np.ndarray) -> np.ndarray:
        """How many interquartile ranges each component of ``row`` lies from the training median."""
        check_is_fitted(self)
        deviation: np.ndarray = (np.asarray(row, dtype=float) - self.center_) / self.scale_
        return deviation

    def _forest(self) -> IsolationForest:
        return IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state)

    def _out_of_fold(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if len(X) < 4:
            return self._scores(X)
        rng = np.random.default_rng(self.random_state)
        fold = rng.permutation(len(X)) % 2 == 0
        scores = np.empty(len(X))
        for part in (fold, ~fold):
            scores[~part] = self._forest().fit(X[part]).score_samples(X[~part])
        return scores


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalySettings:
    warmup: int = 30
    refit_every: int = 20
    history: int = 500
    persistence: int = 2
    window: int = 3
    tolerance: float = 0.05


@dataclass(slots=True, kw_only=True)
class _ModelState:
    history: deque[np.ndarray]
    last: dict[str, float]
    flags: deque[bool]
    detector: ObservationAnomalyDetector | None = None
    fitted_on: int = 0
    added: int = 0


def tick_vector(observations: list[Observation], last: dict[str, float]) -> np.ndarray | None:
    """The vector of one tick (None when no batch came), carrying absent metrics from ``last``."""
    by_metric: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        if o.metric in VECTOR_METRICS:
            by_metric[o.metric].append(o.value)
    if "batch_rows" not in by_metric:
        return None
    for metric, values in by_metric.items():
        last[metric] = float(np.sum(values)) if metric in SUMMED else float(np.mean(values))
    return np.array([last.get(m, 0.0) for m in VECTOR_METRICS])


class AnomalyWatch:
    """Per-model healthy history, detector and persistence of anomalous scores."""

    def __init__(self, store: SqlKnowledgeStore, settings: AnomalySettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnomalySettings()
        self._states: dict[str, _ModelState] = {}

    def assess(
        self, model: str, fresh: list[Observation], now: datetime, healthy: bool, ruled: bool = False
    ) -> tuple[bool, Symptom | None]:
        """(whether there is a verdict, the symptom or None).

        No verdict on ticks without data, while warming up, or when a rule already raised a symptom this tick
        (``ruled``): the forest is for what no rule names, not a second voice for what one did. Only
        ``healthy`` ticks (no symptom, no open incident) that score normal join the history.
        """
        state = self._state(model)
        vector = tick_vector(fresh, state.last)
        if vector is None or ruled:
            return False, None
        detector = self._fitted(state)
        if detector is None:
            if healthy:
                self._remember(state, vector)
            return False, None
        score = float(detector.score_samples(vector[None, :])[0])
        anomalous = score < detector.threshold_
        state.flags.append(anomalous)
        if healthy and not anomalous:
            self._remember(state, vector)
        if not anomalous:
            return True, None
        if sum(state.flags) < self.settings.persistence:
            return False, None
        return True, _symptom(model, now, vector, score, detector, state)

    def _fitted(self, state: _ModelState) -> ObservationAnomalyDetector | None:
        size = len(state.history)
        if size < self.settings.warmup:
            return None
        if state.detector is None or state.added - state.fitted_on >= self.settings.refit_every:
            state.detector = ObservationAnomalyDetector(
                tolerance=self.settings.tolerance, min_scale=[MIN_SCALES[m] for m in VECTOR_METRICS]
            ).fit(np.array(state.history))
            state.fitted_on = state.added
        return state.detector

    @staticmethod
    def _remember(state: _ModelState, vector: np.ndarray) -> None:
        state.history.append(vector)
        state.added += 1

    def _state(self, model: str) -> _ModelState:
        if model not in self._states:
            self._states[model] = self._rebuild(model)
        return self._states[model]

    def _rebuild(self, model: str) -> _ModelState:
        """The healthy history kept in the store: ticks with data outside any incident's lifetime."""
        s = self.settings
        state = _ModelState(history=deque(maxlen=s.history), last={}, flags=deque(maxlen=s.window))
        incidents = self.store.list_incidents(model=model, limit=1000)
        ticks: dict[datetime, list[Observation]] = defaultdict(list)
        for o in self.store.observations(model, limit=s.history * 12):
            ticks[o.at].append(o)
        for at in sorted(ticks):
            vector = tick_vector(ticks[at], state.last)
            if vector is not None and not any(_during(i, at) for i in incidents):
                self._remember(state, vector)
        state.fitted_on = state.added
        return state


def _during(incident: Incident, at: datetime) -> bool:
    return incident.opened_at <= at and (incident.resolved_at is None or at <= incident.resolved_at)


def _symptom(
    model: str, now: datetime, vector: np.ndarray, score: float, detector: ObservationAnomalyDetector, state: Any
) -> Symptom:
    deviations = detector.deviations(vector)
    order = np.argsort(-np.abs(deviations))[:3]
    unusual = [
        {
            "metric": VECTOR_METRICS[i],
            "value": round(float(vector[i]), 4),
            "usual": round(float(detector.center_[i]), 4),
            "iqr_from_usual": round(float(deviations[i]), 2),
        }
        for i in order
    ]
    text = ", ".join(f"{u['metric']} {u['value']} (usual {u['usual']})" for u in unusual)
    return Symptom(
        at=now,
        model=model,
        kind=SymptomKind.ANOMALY,
        severity=Severity.WARNING,
        score=round(detector.threshold_ - score, 6),
        summary=f"observations unlike this model's healthy history: {text}",
        evidence={
            "anomaly_score": round(score, 6),
            "threshold": round(detector.threshold_, 6),
            "vector": dict(zip(VECTOR_METRICS, (round(float(v), 6) for v in vector), strict=True)),
            "unusual": unusual,
            "history": len(state.history),
            "flags": [bool(f) for f in state.flags],
        },
    )
