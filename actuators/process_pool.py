"""The process worker pool: actions are coordinated in the daemon, their CPU-heavy fits run in worker processes.

An action (reading batches, registering a version, moving an alias, writing its journal) needs the knowledge
store and the lease epoch, so it runs on a daemon thread as in ``ThreadPool``. What it hands to ``compute``
(a forest's fit, judging, profiling, serializing) runs in a separate worker process, so the process answering
predictions keeps its CPU and its GIL: a retrain no longer slows serving the way it did on a thread. Workers
start with the "spawn" method (the daemon has threads, so forking it is unsafe) and are put at the lowest CPU
priority as they start, before their imports, so that serving wins over background fits: every thread of a worker
is reniced and, on Linux, moved to the ``SCHED_IDLE`` policy (it runs only on a CPU nothing else wants, and a
waking request handler preempts it at once; a nice level alone still let a fit take about a third of the API's
throughput on this 2-core machine). A worker that dies (killed,
out of memory) fails the action that was waiting on it with an ``ActionError`` naming the work; the pool
starts new workers for the next one. The number of workers is what the ``scale`` action changes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from actuators.pool import ThreadPool
from knowledge.errors import ActionError

T = TypeVar("T")
NICE = 10  # the workers' niceness: a fit yields the CPU to the API when both want it
IDLE = getattr(os, "SCHED_IDLE", None)  # Linux only; elsewhere the niceness is all there is


class ProcessPool(ThreadPool):
    """Runs actions on daemon threads and their ``compute`` work in ``workers`` worker processes."""

    def __init__(self, workers: int = 1, *, idle: bool = True) -> None:
        super().__init__(workers)
        # SCHED_IDLE gives a fit almost nothing on a host other work keeps busy: ``idle=False`` keeps nice 10 only.
        self._policy = IDLE if idle else None
        self._context = multiprocessing.get_context("spawn")
        self._processes = self._start(workers)
        self._lock = threading.Lock()

    def _start(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self._context)

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a worker process; ``ActionError`` if the worker dies meanwhile."""
        with self._lock:
            processes = self._processes
        try:
            future = processes.submit(function, *args, **kwargs)  # starts the workers on first use
            self._lower_priority()
            return future.result()
        except BrokenProcessPool as exc:
            self._renew(processes)
            name = getattr(function, "__qualname__", repr(function))
            raise ActionError(f"the worker process running {name} died before it finished ({exc})") from None

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        """Replace a pool whose worker died (every later submit to it would fail)."""
        with self._lock:
            if self._processes is broken:
                self._processes = self._start(self.workers)
        broken.shutdown(wait=False, cancel_futures=True)

    def _lower_priority(self) -> None:
        """Lower new workers' priority at once, from here: a spawned worker's first seconds are spent importing the
        ML stack, which must not take the API's CPU either (an initializer would only run after the imports). Both
        are per thread on Linux (threads inherit them when created), so every thread already there is set too."""
        for pid in self.worker_pids():
            for tid in _threads(pid):
                try:
                    if os.getpriority(os.PRIO_PROCESS, tid) < NICE:
                        os.setpriority(os.PRIO_PROCESS, tid, NICE)
                    if self._policy is not None and os.sched_getscheduler(tid) != self._policy:
                        os.sched_setscheduler(tid, self._policy, os.sched_param(0))
                except OSError:  # exited meanwhile: compute reports a death
                    continue

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (none until the first ``compute`` starts them)."""
        with self._lock:
            processes = getattr(self._processes, "_processes", None) or {}  # the executor keeps no public list
            return [p.pid for p in processes.values() if p.pid is not None and p.is_alive()]

    def resize(self, workers: int) -> int:
        # Fits already running finish in the old processes; new ones go to a pool of the new size.
        with self._lock:
            old, self._processes = self._processes, self._start(workers)
        old.shutdown(wait=False)
        return super().resize(workers)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait=wait)
        with self._lock:
            self._processes.shutdown(wait=wait, cancel_futures=not wait)


def _threads(pid: int) -> list[int]:
    """The thread ids of process ``pid`` (just the pid where /proc does not list them)."""
    try:
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return [pid]
