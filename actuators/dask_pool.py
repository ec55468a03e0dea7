"""The Dask worker pool: actions are coordinated here, their heavy fits run on a Dask cluster.

An action itself (reading batches, registering a version, moving an alias) needs the knowledge store, so
it runs on a local thread as in ``ThreadPool``; inside it, scikit-learn's joblib parallelism is routed to
Dask, so the forest's trees are fitted on the cluster's workers. With no scheduler address a
``LocalCluster`` of worker processes is started on this machine. joblib only hands work to Dask when the
cluster offers more than one thread in all (with one, it runs the fit locally). This is heald's only
importer of Dask.
"""

from __future__ import annotations

import joblib
from distributed import Client, LocalCluster

from actuators.base import Outcome
from actuators.pool import Job, ThreadPool
from knowledge.errors import HealdError


class DaskPool(ThreadPool):
    """Runs actions on threads whose scikit-learn work goes to a Dask cluster."""

    def __init__(self, workers: int = 1, scheduler: str = "", threads_per_worker: int = 2) -> None:
        super().__init__(workers)
        self._cluster: LocalCluster | None = None
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=10, set_as_default=False)
            else:
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
                )
                self.client = Client(self._cluster, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            super().shutdown(wait=False)
            raise HealdError(f"cannot reach the Dask scheduler at {scheduler or 'a local cluster'}: {exc}") from exc

    def submit(self, action_id: int, job: Job) -> None:
        super().submit(action_id, lambda: self._on_dask(job))

    def _on_dask(self, job: Job) -> Outcome:
        # The joblib backend setting is per thread: it applies to this action's fits only.
        with self.client.as_current(), joblib.parallel_config(backend="dask"):
            return job()

    def resize(self, workers: int) -> int:
        if self._cluster is None:
            return self.size()  # a shared cluster is sized by whoever runs it
        self._cluster.scale(workers)
        return super().resize(workers)

    def tasks_seen(self) -> int:
        """How many task transitions the scheduler has logged (evidence that work reached Dask)."""
        return int(self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.transition_log)))

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait=wait)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
