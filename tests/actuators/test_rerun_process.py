"""Reruns off the serving path: with the process executor a rerun's stages, profile, skops bytes and the champion's
score run in a worker process, with the same outcome as in place; a worker killed mid-run fails the action and
leaves the run resumable, while the loop goes on."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from actuators.pool import InlinePool, WorkerPool
from actuators.process_pool import ProcessPool
from actuators.rerun import RerunActuator
from actuators.runs import recorded_run
from daemon.compose import Heald, build, runs_folder
from daemon.loop import Loop
from daemon.onboard import onboard, run_config
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, ActionState, Alias, PipelineRun, Task
from pipeline.runner import RetryPolicy, Runner, StageContext
from pipeline.settings import RunConfig
from pipeline.stages import FlakyStage, standard_stages
from sensors.host import FixedHostGauge
from tests.conftest import CALM_HOST, make_settings, table


class DyingStage:
    """A train stage whose process is killed (as the OOM killer would): only ever run in a worker process."""

    name = "train"

    def run(self, ctx: StageContext) -> tuple[Any, dict[str, Any]]:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: the process was killed")

    def load(self, folder: Path, config: RunConfig) -> Any:
        raise AssertionError("a killed stage has no output")


def failed_run(tmp_path: Path, pool: WorkerPool, clock: ManualClock) -> tuple[Heald, PipelineRun]:
    """A heald on ``pool`` whose model m has a champion and a pipeline run that failed at train."""
    heald = build(
        make_settings(tmp_path / "state"), clock=clock, pool_instance=pool, host_gauge=FixedHostGauge([CALM_HOST])
    )
    onboard(heald.store, heald.registry, name="m", frame=table(400), target="y", now=clock.now())
    data = tmp_path / "data.csv"
    table(600, seed=3).to_csv(data, index=False)
    stages = standard_stages()
    stages[3] = FlakyStage(stages[3], failures=1, error=RuntimeError("worker lost"))
    done = recorded_run(
        heald.store,
        Runner(stages, retry=RetryPolicy(attempts=1)),
        root=runs_folder(heald.settings),
        now=clock.now(),
        trigger="operator",
        actor="healctl",
        config=run_config(heald.settings, name="m", data=[data], target="y", task=Task.CLASSIFICATION),
    )
    assert done.row.status == "failed" and done.row.failed_stage == "train"
    return heald, done.row


def rerun_by_the_loop(heald: Heald, clock: ManualClock) -> int:
    """Plan a rerun of m, hand it to the loop and wait until the loop has recorded its end; its action id."""
    action = heald.store.plan_action(model="m", kind=ActionKind.RERUN, at=clock.now(), actor="heald", reason="test")
    heald.loop.start(action, heald.store.get_model("m"), clock.now())
    deadline = time.monotonic() + 300  # a spawned worker imports the ML stack first: slow on a busy machine
    while action.id not in heald.loop.collect(clock.now()):
        assert time.monotonic() < deadline, "the rerun never finished"
        time.sleep(0.05)
    return action.id


def test_a_rerun_in_a_worker_process_gives_the_same_outcome_as_in_place(tmp_path: Path) -> None:
    """The same rerun (resumed at train, seeded fits) ends with the same result through the process executor as
    in the daemon's thread: same reused stages, version, scores and promotion; the stage records are in the store
    and the champion alias moved the same way. The process pool really ran it (a worker process was started)."""
    outcomes = {}
    pool = ProcessPool(1)
    for name, chosen in (("process", pool), ("inline", InlinePool())):
        clock = ManualClock()
        heald, failed = failed_run(tmp_path / name, chosen, clock)
        try:
            action = heald.store.get_action(rerun_by_the_loop(heald, clock))
            rerun = heald.store.pipeline_runs("m")[-1]
            stages = [(s.stage, s.status) for s in rerun.stages]
            champions = [m.to_version for m in heald.store.alias_history("m", Alias.CHAMPION)]
            outcomes[name] = (action.state, action.result, rerun.status, rerun.resumed_from, stages, champions)
            if name == "process":
                assert pool.worker_pids(), "the rerun did not go through the worker pool"
        finally:
            heald.close()
    assert outcomes["process"] == outcomes["inline"]
    state, result, status, resumed, stages, champions = outcomes["process"]
    assert state is ActionState.SUCCEEDED and status == "succeeded" and resumed == failed.id
    assert result["reused"] == ["ingest", "validate", "features"] and result["version"] == 2
    assert stages == [(s, "reused") for s in ("ingest", "validate", "features")] + [
        ("train", "succeeded"),
        ("evaluate", "succeeded"),
    ]
    assert champions[-1] == (2 if result["promoted"] else 1)


def test_a_worker_killed_mid_rerun_fails_the_action_and_the_run_resumes_later(tmp_path: Path) -> None:
    """A worker process killed while it trains fails the rerun action with the reason (the loop records it and
    ticks on); the pipeline run is failed at train in the store, so the next rerun, on a fresh worker, resumes it
    from there and succeeds."""
    clock = ManualClock()
    pool = ProcessPool(1)
    heald, _ = failed_run(tmp_path, pool, clock)
    try:
        stages = standard_stages()
        stages[3] = DyingStage()
        dying = RerunActuator(runs_folder(heald.settings), runner=Runner(stages, retry=RetryPolicy(attempts=1)))
        normal = heald.loop
        parts = heald.loop.p
        heald = dataclasses.replace(
            heald, loop=Loop(dataclasses.replace(parts, actuators={**parts.actuators, ActionKind.RERUN: dying}))
        )
        killed = heald.store.get_action(rerun_by_the_loop(heald, clock))
        assert killed.state is ActionState.FAILED and "died before it finished" in (killed.error or "")
        broken = heald.store.pipeline_runs("m")[-1]
        assert broken.status == "failed" and broken.failed_stage == "train"
        assert "died before it finished" in (broken.error or "")
        assert heald.loop.tick() is not None  # the loop goes on

        heald = dataclasses.replace(heald, loop=normal)
        clock.advance(timedelta(minutes=1))
        healed = heald.store.get_action(rerun_by_the_loop(heald, clock))
        assert healed.state is ActionState.SUCCEEDED, healed.error
        resumed = heald.store.pipeline_runs("m")[-1]
        assert resumed.resumed_from == broken.id and resumed.status == "succeeded"
        assert [s.status for s in resumed.stages] == ["reused", "reused", "reused", "succeeded", "succeeded"]
    finally:
        heald.close()
