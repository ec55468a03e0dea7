"""One trial: a stream replayed through heald and every peer, on the same batches in the same order.

Each batch is predicted by every system before its labels are revealed to any of them (prequential,
test-then-train). The trial returns one result row per system plus what the plot needs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from healbench import measures, promotions
from healbench.peers import AdaptiveRandomForest, Oracle, Peer, Scheduled, Static
from healbench.replay import DEFAULT_TICK, MODEL, Event, HealdSystem, train_params
from healbench.streams import TARGET, Stream
from knowledge.values import ActionKind
from pipeline.features import infer_spec
from pipeline.train import TrainParams, fit_all


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What a trial produced: the result rows, the curves, heald's events and the threshold."""

    stream: Stream
    seed: int
    floor: float
    rows: list[dict[str, Any]]
    tracks: dict[str, measures.Track]
    events: list[Event] = field(default_factory=list)
    retrains: dict[str, list[int]] = field(default_factory=dict)
    promotions: list[promotions.Promotion] = field(default_factory=list)


def refit(stream: Stream, params: TrainParams) -> Any:
    """The peers' retraining: the same pipeline and forest heald's retrain actuator fits."""

    def fit(rows: pd.DataFrame) -> Any:
        frame = rows[[*stream.features, TARGET]]
        return fit_all(frame, target=TARGET, task=stream.task, spec=infer_spec(frame, TARGET), params=params)

    return fit


def run(
    stream: Stream,
    state: Path,
    seed: int,
    systems: set[str] | None = None,
    tick_seconds: float = DEFAULT_TICK,
) -> Outcome:
    """Replay ``stream`` through heald and its peers (all of them unless ``systems`` says otherwise)."""
    heald = HealdSystem(stream=stream, state=state, seed=seed, tick_seconds=tick_seconds)
    try:
        return _race(stream, heald, seed, systems)
    finally:
        heald.close()


def _race(stream: Stream, heald: HealdSystem, seed: int, systems: set[str] | None) -> Outcome:
    everyone: list[Any] = [heald, *_peers(stream, heald, seed, systems)]
    tracks = {s.name: measures.Track(system=s.name) for s in everyone}
    batches = stream.batches()
    for index, batch in enumerate(batches):
        for system in everyone:
            track = tracks[system.name]
            started = time.perf_counter()
            predicted = system.step(index, batch)
            track.wall_seconds += time.perf_counter() - started
            track.predictions.append(predicted)
            track.scores.append(measures.batch_score(stream, batch, predicted))
    delays, false_alarms = measures.detections(stream, heald.incidents())
    promoted = promotions.promotions(heald, batches)
    rows = []
    for system in everyone:
        row = _row(stream, seed, batches, system, tracks[system.name], heald.floor)
        if system is heald:
            row |= {
                "false_alarms": false_alarms,
                "detection_delays": delays,
                "incidents": len(heald.incidents()),
                "rollbacks": len(heald.actions(ActionKind.ROLLBACK)),
                "versions": len(heald.heald.store.list_versions(MODEL)),
                "tick_ms": 1000 * sum(heald.tick_wall) / max(len(heald.tick_wall), 1),
                "promotions": len(promoted),
                "harmful_promotions": sum(p.harmful for p in promoted),
                "tick_seconds": heald.tick_seconds,
            }
        rows.append({k: measures.rounded(v) for k, v in row.items()})
    return Outcome(
        stream=stream,
        seed=seed,
        floor=heald.floor,
        rows=rows,
        tracks=tracks,
        events=list(heald.events),
        retrains={s.name: list(s.retrain_batches) for s in everyone},
        promotions=promoted,
    )


def _peers(stream: Stream, heald: HealdSystem, seed: int, systems: set[str] | None) -> list[Peer]:
    """Every peer starts from heald's first model and refits with heald's own pipeline and forest."""
    fit = refit(stream, dataclasses.replace(train_params(seed), n_jobs=2))
    first, features = heald.static_model, stream.features
    every = max(1, round(stream.warmup / stream.batch_rows))
    # The oracle refits once it has as many rows since the change as heald asks for a retrain.
    min_rows = int(getattr(heald.heald.settings.policy, "min_retrain_rows", stream.warmup // 2))
    peers: list[Peer] = [
        Static(first, features),
        Scheduled(first, features, fit, every=every),
        Oracle(first, features, fit, stream, min_rows=min_rows),
    ]
    if systems is None or "arf" in systems:
        peers.append(AdaptiveRandomForest(stream, seed=seed))
    return [p for p in peers if systems is None or p.name in systems]


def _row(
    stream: Stream, seed: int, batches: list[pd.DataFrame], system: Any, track: measures.Track, floor: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "stream": stream.name,
        "seed": seed,
        "system": system.name,
        "task": stream.task,
        "metric": "accuracy" if stream.task == "classification" else "r2",
        "accuracy": measures.overall(stream, batches, track),
        "sick_share": measures.sick_share(track, floor),
        "retrains": system.retrains,
        "false_alarms": 0,  # peers raise no alarms; heald's row replaces this
        "detection_delays": None,
        "compute_seconds": system.compute_seconds,
        "wall_seconds": track.wall_seconds,
        "threshold": floor,
        "batches": len(batches),
        "drifts": len(stream.drifts),
    }
    if isinstance(system, AdaptiveRandomForest):
        row["retrains"] = None  # it learns every row; its tree resets are reported apart
        row["tree_resets"] = system.tree_resets
        row["compute_seconds"] = system.compute_seconds + system.warmup_seconds
    return row
