"""Every actuator keeps the same contract: given an action and a context it returns an Outcome with a
sentence a person can read, and a remedy that cannot be carried out fails cleanly instead of raising."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from actuators.alert import AlertActuator
from actuators.base import ActContext, Actuator, Outcome, RecordingActuator
from actuators.pool import InlinePool, ThreadPool, WorkerPool
from actuators.retrain import RetrainActuator
from actuators.rollback import RollbackActuator
from actuators.scale import ScaleActuator
from daemon.compose import Heald
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import Action, ActionKind, ActionState
from pipeline.train import TrainParams
from tests.conftest import table

ACTUATORS: dict[str, tuple[ActionKind, Actuator]] = {
    "retrain": (ActionKind.RETRAIN, RetrainActuator()),
    "rollback": (ActionKind.ROLLBACK, RollbackActuator()),
    "alert": (ActionKind.ALERT, AlertActuator()),
    "scale": (ActionKind.SCALE, ScaleActuator(max_workers=1)),
    "recording": (ActionKind.RERUN, RecordingActuator()),
}


@pytest.fixture
def ctx(heald: Heald, clock: ManualClock) -> Iterator[ActContext]:
    """A model with only its first version and no new data: most remedies have nothing to work with."""
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(400),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=5),
    )
    yield ActContext(
        now=clock.now(), model=heald.store.get_model("m"), registry=heald.registry, store=heald.store, pool=InlinePool()
    )


def action(ctx: ActContext, kind: ActionKind) -> Action:
    planned = ctx.store.plan_action(
        model="m", kind=kind, at=ctx.now, actor="heald", reason="contract", params={"since": ctx.now.isoformat()}
    )
    return ctx.store.transition_action(planned.id, ActionState.RUNNING, at=ctx.now)


@pytest.mark.parametrize("name", sorted(ACTUATORS))
def test_actuator_returns_a_readable_outcome_without_raising(ctx: ActContext, name: str) -> None:
    """Whatever the world looks like, execute() answers with an Outcome and a non-empty detail."""
    kind, actuator = ACTUATORS[name]
    outcome = actuator.execute(action(ctx, kind), ctx)
    assert isinstance(outcome, Outcome) and isinstance(outcome.ok, bool)
    assert outcome.detail.strip()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("retrain", "labelled rows"), ("rollback", "no stable version"), ("scale", "already at its bound")],
)
def test_impossible_remedies_fail_and_say_why(ctx: ActContext, name: str, reason: str) -> None:
    """With nothing to work with, a remedy fails and names what was missing; the champion is untouched."""
    kind, actuator = ACTUATORS[name]
    outcome = actuator.execute(action(ctx, kind), ctx)
    assert not outcome.ok and reason in outcome.detail
    assert ctx.registry.champion("m") is not None and ctx.registry.champion("m").number == 1  # type: ignore[union-attr]


def test_retrain_promotes_a_better_model_on_fresh_labelled_data(
    heald: Heald, clock: ManualClock, ctx: ActContext
) -> None:
    """Given enough post-alarm labelled rows of a new concept, retrain registers and promotes v2."""
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True)
    # The loop only ingests the batches here: its own retrains are held back so v1 stays champion.
    held = Outcome(ok=False, detail="held back for the test")
    heald.loop.p.actuators[ActionKind.RETRAIN] = RecordingActuator(outcomes=[held] * 3)  # type: ignore[index]
    since = clock.now()
    for i in range(3):
        clock.advance(timedelta(hours=1))
        table(300, shifted=True, seed=i).to_csv(folder / f"b{i}.csv", index=False)
        heald.loop.tick()
    now_ctx = ActContext(now=clock.now(), model=ctx.model, registry=ctx.registry, store=ctx.store)
    planned = heald.store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=clock.now(),
        actor="heald",
        reason="t",
        params={"since": since.isoformat()},
    )
    outcome = RetrainActuator().execute(planned, now_ctx)
    assert outcome.ok, outcome.detail
    assert outcome.result["promoted"] is True and outcome.result["challenger"] > outcome.result["champion"]
    assert heald.registry.champion("m").created_by == f"action:{planned.id}"  # type: ignore[union-attr]


@pytest.mark.parametrize("pool", [ThreadPool(1), InlinePool()], ids=["threads", "inline"])
def test_scale_moves_one_step_within_bounds(ctx: ActContext, pool: WorkerPool) -> None:
    """A thread pool grows by one up to max_workers and shrinks to no fewer than one; inline cannot scale."""
    scale = ScaleActuator(max_workers=2)
    local = ActContext(now=ctx.now, model=ctx.model, registry=ctx.registry, store=ctx.store, pool=pool)
    up = scale.execute(action(ctx, ActionKind.SCALE), local)
    if isinstance(pool, InlinePool):
        assert not up.ok and "cannot be resized" in up.detail
        return
    assert up.ok and pool.size() == 2
    assert not scale.execute(action(ctx, ActionKind.SCALE), local).ok  # at the bound
    down = ctx.store.plan_action(
        model="m", kind=ActionKind.SCALE, at=ctx.now, actor="heald", reason="t", params={"step": -1}
    )
    assert scale.execute(down, local).ok and pool.size() == 1
    pool.shutdown()
