"""The Dask pool for real: a LocalCluster of worker processes fits a retrain's forest, with the same
outcome as on the thread pool."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from actuators.base import ActContext, Outcome, RecordingActuator
from actuators.retrain import RetrainActuator
from daemon.compose import Heald
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import ActionKind
from pipeline.train import TrainParams
from tests.conftest import table


@pytest.mark.slow
def test_retrain_fits_on_a_dask_cluster(heald: Heald, clock: ManualClock) -> None:
    """A retrain submitted to the Dask pool succeeds and its fit reached the cluster's scheduler."""
    from actuators.dask_pool import DaskPool

    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(800),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=10),
    )
    since = clock.now()
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True)
    # The loop only ingests the batches here: its own retrains are held back so v1 stays champion.
    held = Outcome(ok=False, detail="held back for the test")
    heald.loop.p.actuators[ActionKind.RETRAIN] = RecordingActuator(outcomes=[held] * 3)  # type: ignore[index]
    for i in range(2):
        clock.advance(timedelta(hours=1))
        table(300, shifted=True, seed=i).to_csv(folder / f"b{i}.csv", index=False)
        heald.loop.tick()
    # Two threads: with a single one, joblib sees one job slot and runs the fit locally instead.
    pool = DaskPool(workers=1, threads_per_worker=2)
    try:
        before = pool.tasks_seen()
        action = heald.store.plan_action(
            model="m",
            kind=ActionKind.RETRAIN,
            at=clock.now(),
            actor="heald",
            reason="t",
            params={"since": since.isoformat()},
        )
        ctx = ActContext(
            now=clock.now(),
            model=heald.store.get_model("m"),
            registry=heald.registry,
            store=heald.store,
            settings=heald.loop.p.act_settings("m"),
        )
        pool.submit(action.id, lambda: RetrainActuator().execute(action, ctx))
        finished = []
        for _ in range(600):
            finished = pool.poll()
            if finished:
                break
            time.sleep(0.1)
        (done,) = finished
        assert done.outcome.ok, done.outcome.detail
        assert pool.tasks_seen() > before
    finally:
        pool.shutdown()
