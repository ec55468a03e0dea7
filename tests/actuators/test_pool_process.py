"""The process executor: an action's fit runs in a worker process, with the same result as in place, and a worker
that dies fails its action cleanly while the loop goes on."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from actuators.base import ActContext, ActSettings, Outcome
from actuators.pool import InlinePool, WorkerPool
from actuators.process_pool import IDLE, NICE, ProcessPool
from actuators.retrain import RetrainActuator
from daemon.compose import build
from daemon.onboard import onboard
from knowledge.artifacts import ArtifactStore
from knowledge.clock import ManualClock
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ActionKind, ActionState, Alias
from pipeline.train import TrainParams
from sensors.host import FixedHostGauge
from tests.actuators.test_retrain_windows import rows
from tests.conftest import CALM_HOST, make_settings, table

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def retrain_on(root: Path, pool: WorkerPool) -> tuple[Outcome, list[int]]:
    """A model whose concept flipped at tick 3 is retrained on rows since then; returns the outcome and the
    champion alias's history of versions."""
    store = SqlKnowledgeStore.open(f"sqlite:///{root / 'heald.db'}")
    registry = ModelRegistry(store, ArtifactStore(root / "artifacts"))
    onboard(store, registry, name="m", frame=rows(300, 0), target="y", now=T0, params=TrainParams(n_estimators=5))
    for tick in range(1, 6):
        path = root / f"batch-{tick}.csv"
        rows(200, tick, flipped=tick >= 3).to_csv(path, index=False)
        store.add_batch(
            model="m",
            received_at=T0 + tick * HOUR,
            source="landing",
            path=str(path),
            rows=200,
            labelled=True,
            fingerprint="",
        )
    action = store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=T0 + 5 * HOUR,
        actor="heald",
        reason="drop",
        params={"since": (T0 + 3 * HOUR).isoformat()},
    )
    store.transition_action(action.id, ActionState.RUNNING, at=T0 + 5 * HOUR)
    ctx = ActContext(
        now=T0 + 5 * HOUR,
        model=store.get_model("m"),
        registry=registry,
        store=store,
        settings=ActSettings(n_estimators=20, min_retrain_rows=100, n_jobs=1),
        pool=pool,
    )
    outcome = RetrainActuator().execute(store.get_action(action.id), ctx)
    return outcome, [m.to_version or 0 for m in store.alias_history("m", Alias.CHAMPION)]


def test_a_retrain_in_a_worker_process_decides_as_one_in_place(tmp_path: Path) -> None:
    """The same retrain gives the same promotion decision, scores and champion history in a worker process as
    in the daemon's own thread (the fit is seeded: the forests are the same)."""
    pool = ProcessPool(1)
    try:
        remote, remote_history = retrain_on(tmp_path / "process", pool)
    finally:
        pool.shutdown()
    local, local_history = retrain_on(tmp_path / "inline", InlinePool())
    assert remote.ok == local.ok and remote.result == local.result
    assert remote.result["promoted"] is True and remote_history == local_history == [1, 2]


def _child_pid() -> int:
    return os.getpid()


def _sleep_after_writing_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(120)


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def _policy() -> int:
    return os.sched_getscheduler(0)


def test_compute_runs_in_another_process_at_a_lower_priority(tmp_path: Path) -> None:
    """Work handed to compute runs in a worker process, never in the caller's, at a lower CPU priority and (on
    Linux) under the SCHED_IDLE policy (asked once the first call has returned, when both have been applied)."""
    pool = ProcessPool(1)
    try:
        assert pool.compute(_child_pid) != os.getpid()
        assert pool.compute(_niceness) >= max(NICE, _niceness())
        if IDLE is not None:
            assert pool.compute(_policy) == IDLE != _policy()
    finally:
        pool.shutdown()


def test_workers_keep_the_normal_policy_when_idle_is_off() -> None:
    """worker_idle = false: workers are still reniced but stay under the normal policy, so a fit progresses on a
    host whose CPUs other work keeps busy (SCHED_IDLE would leave it almost nothing)."""
    pool = ProcessPool(1, idle=False)
    try:
        assert pool.compute(_niceness) >= max(NICE, _niceness())
        assert pool.compute(_policy) == _policy()
    finally:
        pool.shutdown()


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 120  # a spawned worker imports the ML stack first: slow on a busy machine
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, "the worker process never started the work"
        time.sleep(0.05)
    return int(path.read_text())


def test_a_killed_worker_fails_its_work_and_the_next_work_runs(tmp_path: Path) -> None:
    """SIGKILL of the worker doing an action's fit raises ActionError naming the work; the pool then starts a
    new worker, so the next fit runs."""
    pool = ProcessPool(1)
    pidfile = tmp_path / "pid"
    try:

        def job() -> Outcome:
            pool.compute(_sleep_after_writing_pid, str(pidfile))
            return Outcome(ok=True, detail="slept")

        pool.submit(7, job)
        os.kill(_wait_for(pidfile), signal.SIGKILL)
        finished = []
        deadline = time.monotonic() + 60
        while not finished:
            assert time.monotonic() < deadline, "the action never finished after its worker died"
            finished = pool.poll()
            time.sleep(0.05)
        assert finished[0].action_id == 7 and not finished[0].outcome.ok
        assert "_sleep_after_writing_pid died" in finished[0].outcome.detail
        assert pool.compute(_child_pid) != os.getpid()
    finally:
        pool.shutdown(wait=False)


def test_a_killed_worker_fails_the_retrain_and_the_loop_ticks_on(tmp_path: Path, clock: ManualClock) -> None:
    """A retrain handed to the process pool by the loop, whose worker is killed mid-fit, ends failed in the
    journal with the reason; the loop then ticks as before."""
    pool = ProcessPool(1)
    heald = build(
        make_settings(tmp_path / "state", n_estimators=3000),
        clock=clock,
        pool_instance=pool,
        host_gauge=FixedHostGauge([CALM_HOST]),
    )
    try:
        onboard(heald.store, heald.registry, name="m", frame=table(400), target="y", now=clock.now())
        path = tmp_path / "labelled.csv"
        table(3000, seed=2).to_csv(path, index=False)
        heald.store.add_batch(
            model="m",
            received_at=clock.now(),
            source="landing",
            path=str(path),
            rows=3000,
            labelled=True,
            fingerprint="",
        )
        action = heald.store.plan_action(
            model="m",
            kind=ActionKind.RETRAIN,
            at=clock.now(),
            actor="heald",
            reason="test",
            params={"since": (clock.now() - HOUR).isoformat()},
        )
        heald.loop.start(action, heald.store.get_model("m"), clock.now())
        deadline = time.monotonic() + 120
        while not pool.worker_pids():
            assert time.monotonic() < deadline, "no worker process started"
            time.sleep(0.05)
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGKILL)
        while not heald.loop.collect(clock.now()):
            assert time.monotonic() < deadline, "the retrain never finished after its worker died"
            time.sleep(0.05)
        failed = heald.store.get_action(action.id)
        assert failed.state is ActionState.FAILED and "died before it finished" in (failed.error or "")
        clock.advance(HOUR)
        assert heald.loop.tick() is not None
    finally:
        heald.close()
