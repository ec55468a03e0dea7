"""The Dask pool for real: a LocalCluster of worker processes fits a retrain's forest, with the same
outcome as on the thread pool."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from actuators.base import ActContext, Outcome, RecordingActuator
from actuators.pool import ThreadPool, WorkerPool
from actuators.retrain import RetrainActuator
from daemon.compose import Heald, build
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import ActionKind
from pipeline.train import TrainParams
from tests.conftest import make_settings, table


@pytest.mark.slow
def test_retrain_fits_on_a_dask_cluster(heald: Heald, clock: ManualClock) -> None:
    """A retrain submitted to the Dask pool succeeds and its fit reached the cluster's scheduler."""
    from actuators.dask_pool import DaskPool

    # Two threads: with a single one, joblib sees one job slot and runs the fit locally instead.
    pool = DaskPool(workers=1, threads_per_worker=2)
    try:
        before = pool.tasks_seen()
        ok, result = retrained(heald, clock, pool)
        assert ok, result
        assert pool.tasks_seen() > before
    finally:
        pool.shutdown()


def retrained(heald: Heald, clock: ManualClock, pool: WorkerPool) -> tuple[bool, dict[str, object]]:
    """Onboard v1, ingest shifted labelled batches, then run one retrain through ``pool``: its decision."""
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
    for _ in range(1200):
        finished = pool.poll()
        if finished:
            break
        time.sleep(0.1)
    (done,) = finished
    return done.outcome.ok, done.outcome.result


@pytest.mark.slow
def test_a_retrain_on_two_dask_workers_decides_as_on_threads(heald: Heald, clock: ManualClock, tmp_path: Path) -> None:
    """The same retrain, on the same rows, through a LocalCluster of two worker processes and through the thread
    pool: the same promotion decision, from the same scores (the forest's seeds travel with the fit)."""
    from actuators.dask_pool import DaskPool

    threads = ThreadPool(1)
    try:
        local = retrained(heald, clock, threads)
    finally:
        threads.shutdown()
    other_clock = ManualClock()
    other = build(make_settings(tmp_path / "dask"), clock=other_clock, pool="inline")
    pool = DaskPool(workers=2, threads_per_worker=1)
    try:
        before = pool.tasks_seen()
        on_dask = retrained(other, other_clock, pool)
        assert pool.tasks_seen() > before, "the fit reached the cluster"
    finally:
        pool.shutdown()
        other.close()
    assert on_dask[0] == local[0] and on_dask[1]["promoted"] == local[1]["promoted"]
    keys = ("challenger", "champion", "gain_lower_bound", "window", "train_rows", "judge_rows")
    assert {k: on_dask[1].get(k) for k in keys} == {k: local[1].get(k) for k in keys}
