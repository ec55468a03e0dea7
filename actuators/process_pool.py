"""The process worker pool: actions are coordinated in the daemon, their CPU-heavy fits run in worker processes.

An action (reading batches, registering a version, moving an alias, writing its journal) needs the knowledge
store and the lease epoch, so it runs on a daemon thread as in ``ThreadPool``. What it hands to ``compute``
(a forest's fit) runs in a separate worker process, so the process answering predictions keeps its cores and
its GIL: a retrain no longer slows serving the way it did on a thread. Workers start with the "spawn" method
(the daemon has threads, so forking it is unsafe) and lower their scheduling priority, so that on a busy
machine serving wins over background fits. A worker that dies (killed, out of memory) fails the action that
was waiting on it with an ``ActionError`` naming the work; the pool starts new workers for the next one.
The number of workers is what the ``scale`` action changes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from actuators.pool import ThreadPool
from knowledge.errors import ActionError

T = TypeVar("T")
NICE = 10  # the workers' niceness: a fit yields the CPU to the API when both want it


def _lower_priority() -> None:
    os.nice(NICE)


class ProcessPool(ThreadPool):
    """Runs actions on daemon threads and their ``compute`` work in ``workers`` worker processes."""

    def __init__(self, workers: int = 1) -> None:
        super().__init__(workers)
        self._context = multiprocessing.get_context("spawn")
        self._processes = self._start(workers)
        self._lock = threading.Lock()

    def _start(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self._context, initializer=_lower_priority)

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a worker process; ``ActionError`` if the worker dies meanwhile."""
        with self._lock:
            processes = self._processes
        try:
            return processes.submit(function, *args, **kwargs).result()
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
