"""Monitor and Analyze on several processes: each model's sensing phase of a tick runs in a sensing process.

A tick's CPU is spent sensing (reading and validating batches, the champion's predictions, the drift tests,
metrics, the anomaly watch) and most of it is Python code that holds the GIL, so threads share one core. With
``tick_processes`` set, the loop hands each model's sensing phase to one of that many processes instead. Each
process composes its own heald from the same settings (its own store connection, registry cache, intake,
sensors and analyzer) and runs exactly the code the loop runs in its own process (``Loop.sense_model``).

A model always goes to the same process (a stable hash of its name), because sensors and the anomaly watch
keep a model's rolling state in memory; a process replaced after a crash refills it as a restarted daemon does.
What belongs to the daemon's own process stays there: pulling sources, and the sensors that read this process
or its worker pool (host pressure, backlog), whose readings are computed by the loop and relayed. Intake's
events come back to be logged by the loop, with its health for the status line. Incidents, plans and actions
stay in the loop's process, one model after another in name order, so what a tick decides does not depend on
where the sensing ran.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import zlib
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import TYPE_CHECKING

from daemon.logs import get
from knowledge.values import ModelRecord, Observation

if TYPE_CHECKING:
    from daemon.compose import Heald
    from daemon.config import Settings
    from daemon.loop import Sensed

log = get("heald.sensing")

_composed: dict[str, Heald] = {}  # the sensing process's own heald (set by ``_start`` in each process)


def _start(settings: Settings) -> None:
    """Compose this sensing process's heald once: later ticks reuse its store, caches and per-model state."""
    from daemon import logs
    from daemon.compose import build

    logs.configure(settings.log_level, console=False)
    _composed["heald"] = build(settings, pool="inline", holder="sensing")
    threading.Thread(target=_orphaned, args=(os.getppid(),), name="heald-sensing-parent", daemon=True).start()


def _orphaned(parent: int) -> None:
    """End this sensing process once the daemon that started it is gone (killed with SIGKILL, say): an executor's
    worker would otherwise wait for work forever, holding its store connection and models."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _sense(
    model: ModelRecord, now: datetime, relayed: dict[int, list[Observation]], before: list[Observation]
) -> Sensed:
    return _composed["heald"].loop.sense_model(model, now, relayed=relayed, before=before)


def shard(name: str, processes: int) -> int:
    """The sensing process of a model: stable across ticks and restarts (not Python's salted ``hash``)."""
    return zlib.crc32(name.encode()) % processes


class ProcessSensing:
    """``processes`` single-process executors, started on first use; each model is sensed by its own shard."""

    def __init__(self, settings: Settings, processes: int) -> None:
        self.settings = settings
        self.processes = processes
        self._shards: list[ProcessPoolExecutor | None] = [None] * processes

    def _executor(self, index: int) -> ProcessPoolExecutor:
        executor = self._shards[index]
        if executor is None:
            # spawn: the daemon's process has threads (API, scheduler) and open connections a fork would copy.
            executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.settings,),
            )
            self._shards[index] = executor
        return executor

    def sense(
        self,
        models: list[ModelRecord],
        now: datetime,
        relayed: list[dict[int, list[Observation]]],
        before: list[list[Observation]],
    ) -> list[Sensed | Exception]:
        """Every model's sensing phase, in the models' order; a model's failure is returned, not raised.

        A sensing process that died (killed, out of memory) is replaced and its models are sensed once more in
        the new one: intake's claims make a repeated pass take each file once."""
        results: list[Sensed | Exception | None] = [None] * len(models)
        for attempt in (1, 2):
            futures: dict[int, Future[Sensed]] = {}
            broken: set[int] = set()
            for i, model in enumerate(models):
                index = shard(model.name, self.processes)
                if results[i] is not None or index in broken:
                    continue
                try:
                    futures[i] = self._executor(index).submit(_sense, model, now, relayed[i], before[i])
                except BrokenProcessPool:  # found dead before this tick: replaced below, its models sensed again
                    broken.add(index)
            for i, future in futures.items():
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    broken.add(shard(models[i].name, self.processes))
                except Exception as exc:  # the model's own failure, raised in the sensing process
                    results[i] = exc
            for index in sorted(broken):
                log.error("sensing_process_lost", shard=index, attempt=attempt)
                self._drop(index)
            if not broken:
                break
        lost = RuntimeError("its sensing process died twice in this tick")
        return [r if r is not None else lost for r in results]

    def _drop(self, index: int) -> None:
        executor = self._shards[index]
        self._shards[index] = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """The running sensing processes (for tests and the status)."""
        return [
            p.pid for e in self._shards if e is not None for p in (e._processes or {}).values() if p.pid is not None
        ]

    def close(self) -> None:
        """Stop the sensing processes (they hold store connections and the registry's models)."""
        for index, executor in enumerate(self._shards):
            self._shards[index] = None
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
