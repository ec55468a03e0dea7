"""The measures of the healing benchmark, computed from what each system predicted and what heald did.

- prequential score: accuracy (R² for regression) over every replayed row, each predicted before its label
  was revealed;
- sick share: the share of batches whose score is below the model's health threshold (the downtime);
- detection delay: batches from the start of each true drift to the first incident heald opened for it
  (0 = on the first drifted batch), ``None`` when it never did within ``DETECT_WITHIN`` batches of its end;
- false alarms: incidents opened outside every drift's detection window;
- retrains and their compute seconds, and the wall seconds the system took in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healbench.streams import TARGET, Stream
from pipeline.evaluate import metrics, primary_metric

DETECT_WITHIN = 8  # batches after a drift has settled in which an incident still counts as its detection
ALARM_KINDS = {"performance_drop", "data_drift", "anomaly"}


@dataclass(slots=True, kw_only=True)
class Track:
    """One system's predictions on one stream, batch by batch."""

    system: str
    predictions: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0


def batch_score(stream: Stream, batch: pd.DataFrame, predicted: np.ndarray) -> float:
    return metrics(batch[TARGET], predicted, stream.task)[primary_metric(stream.task)]


def overall(stream: Stream, batches: list[pd.DataFrame], track: Track) -> float:
    """The prequential score over every replayed row."""
    actual = pd.concat([b[TARGET] for b in batches], ignore_index=True)
    predicted = np.concatenate(track.predictions)
    return metrics(actual, predicted, stream.task)[primary_metric(stream.task)]


def sick_share(track: Track, floor: float) -> float:
    return float(np.mean(np.asarray(track.scores) < floor)) if track.scores else 0.0


def detections(stream: Stream, incidents: list[tuple[int, str]]) -> tuple[list[int | None], int]:
    """Detection delay (in batches) per true drift, and the number of false alarms."""
    alarms = [b for b, kind in incidents if kind in ALARM_KINDS]
    windows = []
    for drift in stream.drifts:
        start = drift.at // stream.batch_rows
        end = -(-drift.end // stream.batch_rows) + DETECT_WITHIN
        windows.append((start, end))
    delays: list[int | None] = []
    for start, end in windows:
        hits = [b for b in alarms if start <= b < end]
        delays.append(hits[0] - start if hits else None)
    false = [b for b in alarms if not any(start <= b < end for start, end in windows)]
    return delays, len(false)


def drift_batches(stream: Stream) -> list[tuple[float, float]]:
    """Each drift as (first batch, last batch) on the replay's batch axis, for the plot."""
    return [(d.at / stream.batch_rows, d.end / stream.batch_rows) for d in stream.drifts]


def rounded(value: Any, digits: int = 4) -> Any:
    return round(float(value), digits) if isinstance(value, float | np.floating) else value
