"""The worker pool actions run on, so the loop never blocks on a retrain.

``InlinePool`` runs an action at once in the caller's thread (simulated time: demo, tests, benchmarks);
``ThreadPool`` runs actions on background threads (scikit-learn releases the GIL while it fits) and the
loop collects finished ones on a later tick. Both report through ``poll()``. An action hands its CPU-heavy
work (a fit) to ``compute``: here it runs in place; ``actuators.process_pool.ProcessPool`` runs it in a
worker process, off the process that answers predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from actuators.base import Outcome

Job = Callable[[], Outcome]
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    action_id: int
    outcome: Outcome


class WorkerPool(Protocol):
    """Where actions run."""

    def submit(self, action_id: int, job: Job) -> None: ...

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run an action's heavy work (a fit) where this pool runs it; its arguments and result must pickle."""
        ...

    def poll(self) -> list[Finished]: ...

    def pending(self) -> int: ...

    def size(self) -> int: ...

    def resize(self, workers: int) -> int: ...

    def shutdown(self, wait: bool = True) -> None: ...


def _run(job: Job) -> Outcome:
    try:
        return job()
    except Exception as exc:  # an actuator bug must fail its action, not the loop
        return Outcome(ok=False, detail=f"{type(exc).__name__}: {exc}")


class InlinePool:
    """Runs each job immediately; ``poll`` hands back the results."""

    def __init__(self) -> None:
        self._done: list[Finished] = []

    def submit(self, action_id: int, job: Job) -> None:
        self._done.append(Finished(action_id=action_id, outcome=_run(job)))

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return function(*args, **kwargs)

    def poll(self) -> list[Finished]:
        done, self._done = self._done, []
        return done

    def pending(self) -> int:
        return 0

    def size(self) -> int:
        return 1

    def resize(self, workers: int) -> int:
        return 1  # runs in the caller's thread: there is nothing to scale

    def shutdown(self, wait: bool = True) -> None:
        self._done.clear()


class ThreadPool:
    """Runs jobs on background threads; the number of workers can change while it runs."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="heald-worker")
        self._futures: dict[int, Future[Outcome]] = {}

    def submit(self, action_id: int, job: Job) -> None:
        self._futures[action_id] = self._executor.submit(_run, job)

    def compute(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return function(*args, **kwargs)  # already on a worker thread

    def poll(self) -> list[Finished]:
        done = [i for i, f in self._futures.items() if f.done()]
        return [Finished(action_id=i, outcome=self._futures.pop(i).result()) for i in done]

    def pending(self) -> int:
        return sum(1 for f in self._futures.values() if not f.done())

    def size(self) -> int:
        return self.workers

    def resize(self, workers: int) -> int:
        # Running jobs keep their threads; new jobs go to a pool of the new size.
        old = self._executor
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="heald-worker")
        old.shutdown(wait=False)
        self.workers = workers
        return workers

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
