"""The peers heald is measured against, each seeing the same batches in the same order.

- ``static``: the first model, never retrained (no MLOps at all).
- ``scheduled``: retrained on a fixed cadence on the latest rows (conventional MLOps). Its cadence is the
  one that wastes no data: it retrains each time as many new labelled rows have arrived as the first model
  was trained on, on exactly those rows, so each model sees a full, fresh training set.
- ``oracle``: retrained at the true drift points, on rows of the new concept only, as soon as it has as many
  as heald needs to retrain (``min_rows``): drift-triggered retraining with zero detection delay and no false
  alarms, the upper bound for what heald's detection could achieve with the same data.
- ``arf``: river's Adaptive Random Forest, learning online, test-then-train row by row.

Every peer answers ``step(batch)`` with its predictions for the batch, made before it learned the labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from healbench.streams import TARGET, Stream

Fit = Callable[[pd.DataFrame], Any]


class Peer(Protocol):
    """A system under comparison."""

    name: str
    retrains: int
    retrain_batches: list[int]
    compute_seconds: float

    def step(self, index: int, batch: pd.DataFrame) -> np.ndarray: ...


@dataclass(slots=True)
class Static:
    """The first model, serving every batch."""

    model: Any
    features: list[str]
    name: str = "static"
    retrains: int = 0
    compute_seconds: float = 0.0
    retrain_batches: list[int] = field(default_factory=list)

    def step(self, index: int, batch: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(batch[self.features]))


class Refitting:
    """A RandomForest peer that refits on a window of revealed rows when ``due`` says so."""

    name = "refitting"

    def __init__(self, model: Any, features: list[str], fit: Fit) -> None:
        self.model = model
        self.features = features
        self.fit = fit
        self.seen: list[pd.DataFrame] = []
        self.retrains = 0
        self.retrain_batches: list[int] = []
        self.compute_seconds = 0.0

    def step(self, index: int, batch: pd.DataFrame) -> np.ndarray:
        predicted = np.asarray(self.model.predict(batch[self.features]))
        self.seen.append(batch)
        rows = self.due(index)
        if rows is not None:
            started = time.perf_counter()
            self.model = self.fit(rows)
            self.compute_seconds += time.perf_counter() - started
            self.retrains += 1
            self.retrain_batches.append(index)
        return predicted

    def due(self, index: int) -> pd.DataFrame | None:
        raise NotImplementedError


class Scheduled(Refitting):
    """Refits every ``every`` batches on the rows of those batches."""

    name = "scheduled"

    def __init__(self, model: Any, features: list[str], fit: Fit, every: int) -> None:
        super().__init__(model, features, fit)
        self.every = every

    def due(self, index: int) -> pd.DataFrame | None:
        if (index + 1) % self.every:
            return None
        return pd.concat(self.seen[-self.every :], ignore_index=True)


class Oracle(Refitting):
    """Refits once per true change point, on rows since it, as soon as there are ``min_rows`` of them."""

    name = "oracle"

    def __init__(self, model: Any, features: list[str], fit: Fit, stream: Stream, min_rows: int) -> None:
        super().__init__(model, features, fit)
        # Where a concept starts changing and, for gradual and incremental drift, where it settles.
        points = sorted({p for d in stream.drifts for p in (d.at, d.end)})
        self.pending = points
        self.batch_rows = stream.batch_rows
        self.min_rows = min_rows

    def due(self, index: int) -> pd.DataFrame | None:
        revealed = (index + 1) * self.batch_rows
        ready = [p for p in self.pending if revealed - p >= self.min_rows]
        if not ready:
            return None
        point = ready[-1]
        self.pending = [p for p in self.pending if p > point]
        replayed = pd.concat(self.seen, ignore_index=True)
        return replayed.iloc[point:revealed].reset_index(drop=True)


class AdaptiveRandomForest:
    """river's ARF: predicts each row, then learns it; it has learned the warm-up rows beforehand."""

    name = "arf"

    def __init__(self, stream: Stream, seed: int, n_models: int = 10) -> None:
        from river import forest

        self.features = stream.features
        self.model: Any = (
            forest.ARFClassifier(n_models=n_models, seed=seed)
            if stream.task == "classification"
            else forest.ARFRegressor(n_models=n_models, seed=seed)
        )
        self.retrains = 0
        self.retrain_batches: list[int] = []
        self.compute_seconds = 0.0
        started = time.perf_counter()
        initial = stream.initial()
        for x, y in zip(self._rows(initial), initial[TARGET], strict=True):
            self.model.learn_one(x, y)
        self.warmup_seconds = time.perf_counter() - started

    def _rows(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = frame[self.features].to_dict(orient="records")
        return rows

    def step(self, index: int, batch: pd.DataFrame) -> np.ndarray:
        predicted = []
        started = time.perf_counter()
        for x, y in zip(self._rows(batch), batch[TARGET], strict=True):
            guess = self.model.predict_one(x)
            predicted.append(guess if guess is not None else 0)
            self.model.learn_one(x, y)
        self.compute_seconds += time.perf_counter() - started
        return np.asarray(predicted)

    @property
    def tree_resets(self) -> int:
        """Trees ARF replaced after its drift detectors fired (its own, partial kind of retraining)."""
        counter = getattr(self.model, "n_drifts_detected", None)
        return int(counter()) if callable(counter) else 0
