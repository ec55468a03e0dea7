"""Leadership on simulated time: two daemons on one store, only the lease holder reconciles and acts, a
takeover settles what the dead holder left, and a leader that lost the lease writes nothing that acts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from actuators.base import Outcome
from actuators.pool import InlinePool
from daemon.compose import Heald, build
from daemon.leader import lease_ttl
from knowledge.clock import ManualClock
from knowledge.errors import StaleEpochError
from knowledge.values import ActionKind, ActionState, Alias
from tests.daemon.test_loop import start


@pytest.fixture
def standby(heald: Heald, clock: ManualClock) -> Iterator[Heald]:
    """A second daemon on the same store (a follower until the first one's lease expires)."""
    other = build(heald.settings, clock=clock, pool="inline", store=heald.store, holder="standby:2")
    yield other
    other.loop.p.pool.shutdown()


def leading(heald: Heald, clock: ManualClock) -> int:
    """Onboard the model and let ``heald`` take the lease: its epoch."""
    start(heald, clock)
    clock.advance(timedelta(minutes=1))
    heald.loop.tick()
    assert heald.loop.epoch is not None
    return heald.loop.epoch


def running_retrain(heald: Heald, clock: ManualClock, epoch: int) -> int:
    """A retrain the leader journaled and handed to its pool (still running)."""
    store = heald.store
    action = store.plan_action(
        model="m", kind=ActionKind.RETRAIN, at=clock.now(), actor="heald", reason="drift", epoch=epoch
    )
    store.transition_action(action.id, ActionState.RUNNING, at=clock.now(), epoch=epoch)
    return action.id


def test_the_ttl_follows_the_tick(heald: Heald) -> None:
    """The lease outlives its last renewal by one tick (not 30 s whatever the tick)."""
    assert lease_ttl(0.5) == 0.5 and lease_ttl(3600) == 3600
    assert heald.loop.p.lease.ttl_seconds == heald.settings.tick_seconds  # type: ignore[union-attr]


def test_a_follower_restart_never_touches_the_leaders_running_action(
    heald: Heald, standby: Heald, clock: ManualClock
) -> None:
    """A follower starting (a fresh loop) and ticking leaves the leader's running action running."""
    epoch = leading(heald, clock)
    action_id = running_retrain(heald, clock, epoch)
    for _ in range(3):
        clock.advance(timedelta(seconds=heald.settings.tick_seconds / 4))
        heald.loop.tick()  # the leader keeps renewing
        restarted = build(heald.settings, clock=clock, pool="inline", store=heald.store, holder="standby:3")
        restarted.loop.tick()
        assert restarted.loop.epoch is None
    assert heald.store.get_action(action_id).state is ActionState.RUNNING
    assert [e["state"] for e in heald.store.action_events(action_id)] == ["planned", "running"]


def test_a_takeover_settles_the_dead_leaders_action_by_looking_at_the_world(
    heald: Heald, standby: Heald, clock: ManualClock
) -> None:
    """Once the holder stopped renewing for a TTL, the standby takes a newer epoch and settles the dead
    holder's actions: one whose promotion happened succeeded, one with no effect aborted."""
    epoch = leading(heald, clock)
    lost = running_retrain(heald, clock, epoch)
    moved = running_retrain(heald, clock, epoch)
    v2 = heald.registry.register(
        "m",
        heald.registry.load(heald.registry.version("m", 1)),
        at=clock.now(),
        reference=heald.registry.reference(heald.registry.version("m", 1)),
    )
    heald.registry.promote("m", v2.number, at=clock.now(), actor="heald", reason="x", action_id=moved, epoch=epoch)
    clock.advance(timedelta(seconds=heald.settings.tick_seconds + 1))  # the holder died: no renewal for a TTL
    with capture_logs() as logs:
        standby.loop.tick()
    assert standby.loop.epoch == epoch + 1
    assert heald.store.get_action(lost).state is ActionState.ABORTED
    assert heald.store.get_action(moved).state is ActionState.SUCCEEDED
    reconciled = {e["action_id"]: e for e in logs if e["event"] == "action_reconciled"}
    assert reconciled[lost]["moved"] is False and reconciled[moved]["moved"] is True
    assert reconciled[lost]["action_epoch"] == epoch and reconciled[lost]["epoch"] == epoch + 1


def test_a_leader_that_lost_the_lease_cannot_promote_or_finish(
    heald: Heald, standby: Heald, clock: ManualClock
) -> None:
    """The old holder's retrain finishing after the takeover is fenced: no alias move, and collecting its
    result is logged (not fatal); the new leader then settles the action by looking at the world."""
    epoch = leading(heald, clock)
    action_id = running_retrain(heald, clock, epoch)
    clock.advance(timedelta(seconds=heald.settings.tick_seconds + 1))
    lease = standby.loop.p.lease
    assert lease is not None and lease() == epoch + 1  # taken over (by its renewal thread), not yet settled
    late = heald.registry.register(
        "m",
        heald.registry.load(heald.registry.version("m", 1)),
        at=clock.now(),
        reference=heald.registry.reference(heald.registry.version("m", 1)),
    )
    with pytest.raises(StaleEpochError, match=f"lease epoch {epoch} is stale"):
        heald.registry.promote("m", late.number, at=clock.now(), actor="heald", reason="late", epoch=epoch)
    assert heald.store.alias("m", Alias.CHAMPION) == 1
    pool = heald.loop.p.pool
    assert isinstance(pool, InlinePool)
    pool.submit(action_id, lambda: Outcome(ok=True, detail="promoted late"))
    with capture_logs() as logs:
        assert heald.loop.collect(clock.now()) == []
    assert [e["event"] for e in logs] == ["action_result_fenced"]
    assert heald.store.get_action(action_id).state is ActionState.RUNNING
    standby.loop.tick()
    assert heald.store.get_action(action_id).state is ActionState.ABORTED
    with capture_logs() as logs:
        report = heald.loop.tick()  # the old holder now sees the lease taken and stands by
    assert heald.loop.epoch is None and report.started == []
    assert "leadership_lost" in [e["event"] for e in logs]


def test_collecting_an_action_someone_else_settled_is_logged_not_fatal(heald: Heald, clock: ManualClock) -> None:
    """An operator's action (no epoch) settled by another hand before its result is collected: the result is
    logged as already settled and the journal keeps the first settlement."""
    start(heald, clock)
    action = heald.store.plan_action(model="m", kind=ActionKind.RETRAIN, at=clock.now(), actor="healctl", reason="x")
    heald.store.transition_action(action.id, ActionState.RUNNING, at=clock.now())
    heald.loop.p.pool.submit(action.id, lambda: Outcome(ok=True, detail="done"))
    heald.store.transition_action(action.id, ActionState.ABORTED, at=clock.now(), detail="settled elsewhere")
    with capture_logs() as logs:
        assert heald.loop.collect(clock.now()) == []
    (event,) = logs
    assert event["event"] == "action_already_settled" and event["state"] == "aborted"
    assert heald.store.get_action(action.id).state is ActionState.ABORTED
