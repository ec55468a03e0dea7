"""heald under test: a stream replayed batch by batch through the real loop, in simulated time.

Exactly the service's path, as in the demo: the serving champion predicts each batch (registry.champion,
registry.load), then the batch lands in ``landing/<model>/``, the manual clock moves one tick and
``loop.tick()`` runs intake, sensors, analyzer, incidents, planner and actuators (inline pool).

heald runs as shipped: ``Settings`` defaults for everything (tick length, policy, monitor, forest size). The
only per-stream inputs are what a user states in their config: the model's target and task, its health
threshold, and the batch size. Two harness choices: the inline pool (actions run in the caller's thread, so
a replay is deterministic) and a calm host gauge (``CALM``). The tick length can be changed to check that
the defaults do not depend on it.

With ``label_delay`` the rows of a batch land unlabelled and their labels land ``label_delay`` ticks later, as
a labelled batch (what ``POST /models/{name}/feedback`` produces). ``restart()`` drops the running heald
without closing it cleanly and builds a fresh one over the same store, then reconciles, as the service does
after a crash.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from actuators.base import Actuator
from actuators.pool import Finished, Job, WorkerPool
from daemon.compose import Heald, build, open_store
from daemon.config import ModelSettings, Settings
from daemon.loop import Loop
from daemon.onboard import onboard
from healbench.streams import TARGET, Stream
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, Task, Version
from pipeline.evaluate import primary_metric
from pipeline.train import TrainParams
from sensors.host import FixedHostGauge

MODEL = "stream"
SHIPPED = Settings()
DEFAULT_TICK = SHIPPED.tick_seconds  # the shipped tick; --tick-seconds replays at another one
# The user's health threshold: the first model's held-out score minus this (accuracy points, or R²).
MARGIN = {"classification": 0.05, "regression": 0.10}


# The host readings heald sees: a calm machine. The benchmark measures how heald heals its model; the load of
# the shared machine running it is not the stream's, and must not change the figures.
CALM = FixedHostGauge(
    [{"cpu_percent": 0.0, "memory_percent": 0.0, "disk_percent": 0.0, "load_per_cpu": 0.0, "rss_mb": 0.0}]
)


class Crashed(BaseException):
    """The process died: raised by the pool when a crash is armed, it escapes ``tick()`` like a SIGKILL."""


T = TypeVar("T")


class TimedPool:
    """The inline pool, with the wall time each action took; it can be armed to 'crash' on an action kind."""

    def __init__(self, inner: WorkerPool) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = {}
        self.crash_on: ActionKind | None = None
        self.kind_of: Callable[[int], ActionKind] | None = None

    def submit(self, action_id: int, job: Job) -> None:
        if self.crash_on is not None and self.kind_of is not None and self.kind_of(action_id) == self.crash_on:
            self.crash_on = None
            raise Crashed(f"process killed while action {action_id} ran")
        started = time.perf_counter()
        self.inner.submit(action_id, job)
        self.seconds[action_id] = time.perf_counter() - started

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return self.inner.compute(function, *args, **kwargs)

    def poll(self) -> list[Finished]:
        return self.inner.poll()

    def pending(self) -> int:
        return self.inner.pending()

    def size(self) -> int:
        return self.inner.size()

    def resize(self, workers: int) -> int:
        return self.inner.resize(workers)

    def shutdown(self, wait: bool = True) -> None:
        self.inner.shutdown(wait)


@dataclass(slots=True, kw_only=True)
class Event:
    """Something heald did, placed on the replay's batch axis for the plot and the measures."""

    batch: int
    what: str  # "incident" | "retrain" | "rollback" | "alert" | "resolved" | "crash" | ...
    detail: str = ""


def threshold(stream: Stream, first: Version) -> float:
    """The health threshold: the first model's held-out score minus a fixed margin, known before replay."""
    return float(first.metrics[primary_metric(stream.task)]) - MARGIN[stream.task]


def bench_settings(
    state: Path, stream: Stream, floor: float | None = None, tick_seconds: float = DEFAULT_TICK
) -> Settings:
    """heald's shipped defaults plus what a user states: target, task, health threshold, batch size."""
    entry: dict[str, Any] = {"name": MODEL, "target": TARGET, "task": stream.task}
    if floor is not None:
        entry["min_accuracy" if stream.task == "classification" else "min_r2"] = max(floor, 0.0)
    return Settings(
        state_dir=state,
        tick_seconds=tick_seconds,
        batch_size=stream.batch_rows,
        executor="inline",
        models=[ModelSettings(**entry)],
    )


def train_params(seed: int) -> TrainParams:
    """The forest heald's settings ask for (shipped ``n_estimators`` and ``max_depth``); peers refit the same."""
    return TrainParams(n_estimators=SHIPPED.n_estimators, max_depth=SHIPPED.max_depth, random_state=seed)


class HealdSystem:
    """heald replaying one stream; ``step`` is one batch: serve, reveal, tick."""

    name = "heald"

    def __init__(
        self,
        *,
        stream: Stream,
        state: Path,
        seed: int = 0,
        tick_seconds: float = DEFAULT_TICK,
        label_delay: int = 0,
    ) -> None:
        self.stream = stream
        self.state = state
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.label_delay = label_delay
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        self.clock = ManualClock()
        self.events: list[Event] = []
        self.ticks: dict[datetime, int] = {}
        self.tick_wall: list[float] = []
        self.unlabelled: deque[tuple[int, pd.DataFrame]] = deque()
        self.seconds: dict[int, float] = {}  # wall seconds per action, kept across restarts
        self.scores: list[float] = []  # served score per batch, kept by the fault harness
        self.first, self.floor, self.heald = self._start()
        self.static_model = self.heald.registry.load(self.first)
        self.landing = self.heald.settings.landing / MODEL
        self.landing.mkdir(parents=True, exist_ok=True)

    def _start(self) -> tuple[Version, float, Heald]:
        # Onboard with a provisional config, then compose heald with the threshold read off version 1.
        store, registry = open_store(bench_settings(self.state, self.stream, tick_seconds=self.tick_seconds))
        first = onboard(
            store,
            registry,
            name=MODEL,
            frame=self.stream.initial(),
            target=TARGET,
            now=self.clock.now(),
            task=Task(self.stream.task),
            params=train_params(self.seed),
            actor="bench",
        )
        floor = threshold(self.stream, first)
        return first, floor, self._compose(floor, store)

    def _compose(self, floor: float, store: Any = None) -> Heald:
        settings = bench_settings(self.state, self.stream, floor, self.tick_seconds)
        heald = build(settings, clock=self.clock, pool="inline", store=store, host_gauge=CALM)
        self.pool = TimedPool(heald.loop.p.pool)
        self.pool.seconds = self.seconds
        self.pool.kind_of = lambda action_id: heald.store.get_action(action_id).kind
        return dataclasses.replace(heald, loop=Loop(dataclasses.replace(heald.loop.p, pool=self.pool)))

    def restart(self) -> list[int]:
        """A fresh heald over the same store and files, as the service after a crash: reconcile, go on."""
        self.heald.store.close()  # the dead process's connections; nothing else of it survives
        self.heald = self._compose(self.floor)
        return self.heald.loop.reconcile()

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

    def _land(self, name: str, frame: pd.DataFrame) -> None:
        path = self.landing / name
        frame.to_csv(path.with_name(f".{path.name}.part"), index=False)
        path.with_name(f".{path.name}.part").rename(path)  # heald never reads half a file

    def reveal(self, index: int, batch: pd.DataFrame) -> None:
        """The batch lands (labelled, or its rows now and labels ``label_delay`` ticks later); the loop ticks."""
        now = self.clock.advance(timedelta(seconds=self.tick_seconds))
        self.ticks[now] = index
        if self.label_delay:
            self._land(f"batch-{index:05d}-rows.csv", batch.drop(columns=[TARGET]))
            self.unlabelled.append((index, batch))
            while self.unlabelled and self.unlabelled[0][0] <= index - self.label_delay:
                done, rows = self.unlabelled.popleft()
                self._land(f"batch-{done:05d}-labels.csv", rows)
        else:
            self._land(f"batch-{index:05d}.csv", batch)
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
        return sum(self.seconds.get(a.id, 0.0) for a in self.actions(ActionKind.RETRAIN))

    def incidents(self) -> list[tuple[int, str]]:
        """(batch, kind) of every incident heald opened, oldest first."""
        found = self.heald.store.list_incidents(model=MODEL, limit=100_000)
        return sorted((self.ticks[i.opened_at], i.kind.value) for i in found if i.opened_at in self.ticks)

    def close(self) -> None:
        self.heald.close()
