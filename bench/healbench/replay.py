"""heald under test: a stream replayed batch by batch through the real loop, in simulated time.

Exactly the service's path, as in the demo: the serving champion predicts each batch (registry.champion,
registry.load), then the batch lands with its labels in ``landing/<model>/``, the manual clock moves one tick
and ``loop.tick()`` runs intake, sensors, analyzer, incidents, planner and actuators (inline pool). The
benchmark's settings are chosen before the replay from the first model alone (see ``bench_settings``).

The pool is wrapped to time each action in wall seconds; everything else is heald as composed by
``daemon.compose.build``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actuators.base import Actuator
from actuators.pool import Finished, Job, WorkerPool
from daemon.compose import Heald, build, open_store
from daemon.config import ModelSettings, Policy, Settings
from daemon.loop import Loop
from daemon.onboard import onboard
from healbench.streams import TARGET, Stream
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, Task, Version
from pipeline.evaluate import primary_metric
from pipeline.train import TrainParams

MODEL = "stream"
TICK_SECONDS = 3600.0
MARGIN = {"classification": 0.05, "regression": 0.10}


@dataclass(frozen=True, slots=True, kw_only=True)
class Knobs:
    """The benchmark's choices for heald, fixed before any batch is replayed."""

    n_estimators: int = 40
    persistence: int = 2
    window: int = 3
    resolve_after: int = 2
    verify_within: int = 2
    stable_after: int = 4
    # A retrain needs this share of the rows the first model learned from (and at least ``retrain_batches``
    # batches): a user sizes min_retrain_rows by what a good fit of their model takes, not by the batch size.
    retrain_share: float = 0.5
    retrain_batches: int = 2

    def min_retrain_rows(self, *, warmup: int, batch_rows: int) -> int:
        return max(self.retrain_batches * batch_rows, int(self.retrain_share * warmup))

    cooldown_ticks: int = 2


class TimedPool:
    """The inline pool, with the wall time each action took (heald's compute for its retrains)."""

    def __init__(self, inner: WorkerPool) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = {}

    def submit(self, action_id: int, job: Job) -> None:
        started = time.perf_counter()
        self.inner.submit(action_id, job)
        self.seconds[action_id] = time.perf_counter() - started

    def poll(self) -> list[Finished]:
        return self.inner.poll()

    def pending(self) -> int:
        return self.inner.pending()

    def resize(self, workers: int) -> int:
        return self.inner.resize(workers)

    def shutdown(self, wait: bool = True) -> None:
        self.inner.shutdown(wait)


@dataclass(slots=True, kw_only=True)
class Event:
    """Something heald did, placed on the replay's batch axis for the plot and the measures."""

    batch: int
    what: str  # "incident" | "retrain" | "rollback" | "alert" | "resolved" | ...
    detail: str = ""


def threshold(stream: Stream, first: Version) -> float:
    """The health threshold: the first model's held-out score minus a fixed margin, known before replay."""
    return float(first.metrics[primary_metric(stream.task)]) - MARGIN[stream.task]


def bench_settings(state: Path, stream: Stream, knobs: Knobs, floor: float | None = None) -> Settings:
    min_rows = knobs.min_retrain_rows(warmup=stream.warmup, batch_rows=stream.batch_rows)
    entry: dict[str, Any] = {"name": MODEL, "target": TARGET, "task": stream.task}
    if floor is not None:
        entry["min_accuracy" if stream.task == "classification" else "min_r2"] = max(floor, 0.0)
    return Settings(
        state_dir=state,
        n_estimators=knobs.n_estimators,
        tick_seconds=TICK_SECONDS,
        executor="inline",
        policy=Policy(
            persistence=knobs.persistence,
            window=knobs.window,
            resolve_after=knobs.resolve_after,
            verify_within=knobs.verify_within,
            stable_after=knobs.stable_after,
            cooldown_seconds=knobs.cooldown_ticks * TICK_SECONDS - 1,
            min_retrain_rows=max(10, min_rows),
        ),
        models=[ModelSettings(**entry)],
    )


class HealdSystem:
    """heald replaying one stream; ``step`` is one batch: serve, reveal, tick."""

    name = "heald"

    def __init__(self, *, stream: Stream, state: Path, knobs: Knobs | None = None, seed: int = 0) -> None:
        self.stream = stream
        self.state = state
        self.knobs = knobs or Knobs()
        self.seed = seed
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        self.clock = ManualClock()
        self.events: list[Event] = []
        self.ticks: dict[datetime, int] = {}
        self.tick_wall: list[float] = []
        self.first, self.floor, self.heald = self._start()
        self.static_model = self.heald.registry.load(self.first)
        self.landing = self.heald.settings.landing / MODEL
        self.landing.mkdir(parents=True, exist_ok=True)

    def _start(self) -> tuple[Version, float, Heald]:
        # Onboard with a provisional config, then compose heald with the threshold read off version 1.
        store, registry = open_store(bench_settings(self.state, self.stream, self.knobs))
        first = onboard(
            store,
            registry,
            name=MODEL,
            frame=self.stream.initial(),
            target=TARGET,
            now=self.clock.now(),
            task=Task(self.stream.task),
            params=TrainParams(n_estimators=self.knobs.n_estimators, random_state=self.seed),
            actor="bench",
        )
        floor = threshold(self.stream, first)
        settings = bench_settings(self.state, self.stream, self.knobs, floor)
        heald = build(settings, clock=self.clock, pool="inline", store=store)
        self.pool = TimedPool(heald.loop.p.pool)
        heald = dataclasses.replace(heald, loop=Loop(dataclasses.replace(heald.loop.p, pool=self.pool)))
        return first, floor, heald

    # -- the replay ----------------------------------------------------------------------------------

    def serve(self, batch: pd.DataFrame) -> np.ndarray:
        """What the service would answer: the champion's predictions, before the labels are known."""
        champion = self.heald.registry.champion(MODEL)
        if champion is None:
            raise RuntimeError("heald lost its champion")
        return np.asarray(self.heald.registry.load(champion).predict(batch[self.stream.features]))

    def step(self, index: int, batch: pd.DataFrame) -> np.ndarray:
        predicted = self.serve(batch)
        self.reveal(index, batch)
        return predicted

    def reveal(self, index: int, batch: pd.DataFrame) -> None:
        """The labelled batch lands; one tick of simulated time passes; the loop runs."""
        now = self.clock.advance(timedelta(seconds=TICK_SECONDS))
        self.ticks[now] = index
        path = self.landing / f"batch-{index:05d}.csv"
        batch.to_csv(path.with_name(f".{path.name}.part"), index=False)
        path.with_name(f".{path.name}.part").rename(path)  # heald never reads half a file
        started = time.perf_counter()
        report = self.heald.loop.tick()
        self.tick_wall.append(time.perf_counter() - started)
        for incident_id in report.opened:
            incident = self.heald.store.get_incident(incident_id)
            self.events.append(Event(batch=index, what="incident", detail=incident.kind.value))
        for action_id in report.started:
            action = self.heald.store.get_action(action_id)
            self.events.append(Event(batch=index, what=action.kind.value, detail=action.state.value))
        for incident_id in report.resolved:
            incident = self.heald.store.get_incident(incident_id)
            self.events.append(Event(batch=index, what="resolved", detail=incident.kind.value))

    def use_actuator(self, kind: ActionKind, actuator: Actuator) -> None:
        """Swap one actuator of the running loop (faults use it to wire a flaky pipeline into ``rerun``)."""
        parts = self.heald.loop.p
        loop = Loop(dataclasses.replace(parts, actuators={**parts.actuators, kind: actuator}))
        self.heald = dataclasses.replace(self.heald, loop=loop)

    def labelled_rows(self) -> pd.DataFrame:
        """The first model's rows and every labelled batch so far: what a full pipeline run would train on."""
        batches = self.heald.store.batches(MODEL, labelled=True, limit=100_000)
        return pd.concat([self.stream.initial(), *(pd.read_csv(b.path) for b in batches)], ignore_index=True)

    # -- what it did ---------------------------------------------------------------------------------

    def actions(self, kind: ActionKind | None = None) -> list[Any]:
        return self.heald.store.actions(model=MODEL, kind=kind, limit=100_000)

    @property
    def retrain_batches(self) -> list[int]:
        promoted = [a for a in self.actions(ActionKind.RETRAIN) if a.result.get("promoted")]
        return [self.ticks[a.planned_at] for a in promoted]

    @property
    def retrains(self) -> int:
        """Retrain actions run (promoted or not): each cost a fit."""
        return len(self.actions(ActionKind.RETRAIN))

    @property
    def compute_seconds(self) -> float:
        return sum(self.pool.seconds.get(a.id, 0.0) for a in self.actions(ActionKind.RETRAIN))

    def incidents(self) -> list[tuple[int, str]]:
        """(batch, kind) of every incident heald opened, oldest first."""
        found = self.heald.store.list_incidents(model=MODEL, limit=100_000)
        return sorted((self.ticks[i.opened_at], i.kind.value) for i in found if i.opened_at in self.ticks)

    def close(self) -> None:
        self.heald.close()
