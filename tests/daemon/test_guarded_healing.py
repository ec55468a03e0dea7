"""Healing that never harms, through the real loop on simulated time: a promotion that proves worse in shadow is
rolled back at once, an artifact emergency is rebuilt within the tick it is seen, and a lost challenger or a
crash abort is no failure for the circuit breaker."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from actuators.base import Outcome, RecordingActuator
from daemon.compose import Heald
from daemon.guards import Guard, breaker_open
from daemon.metrics import Metrics
from daemon.onboard import onboard
from daemon.rules import RULES
from daemon.views import status_view
from knowledge.clock import ManualClock
from knowledge.errors import ActionError
from knowledge.values import ActionKind, ActionState, Alias, IncidentStatus, SymptomKind
from pipeline.train import TrainParams, train
from tests.conftest import table


def start(heald: Heald, clock: ManualClock) -> None:
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(1500, seed=1),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=20, max_depth=8),
    )


def run(heald: Heald, clock: ManualClock, ticks: int, *, seed: int, shifted: bool = False) -> None:
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(ticks):
        clock.advance(timedelta(hours=1))
        table(300, shifted=shifted, seed=seed + i).to_csv(folder / f"b{seed + i:05d}.csv", index=False)
        heald.loop.tick()


def promote_by_retrain(heald: Heald, clock: ManualClock, *, shifted: bool) -> int:
    """What a retrain action does when it promotes: a version made by the action, moved to champion by it."""
    action = heald.store.plan_action(
        model="m", kind=ActionKind.RETRAIN, at=clock.now(), actor="heald", reason="test retrain", params={}
    )
    trained = train(table(1500, shifted=shifted, seed=5), target="y", task="classification")
    version = heald.registry.register(
        "m",
        trained.estimator,
        at=clock.now(),
        reference=table(200)[["a", "b", "c"]],
        created_by=f"action:{action.id}",
    )
    heald.store.transition_action(action.id, ActionState.RUNNING, at=clock.now())
    heald.registry.promote("m", version.number, at=clock.now(), actor="heald", reason="test", action_id=action.id)
    heald.store.transition_action(action.id, ActionState.SUCCEEDED, at=clock.now(), result={"promoted": True})
    return version.number


def test_a_promotion_that_proves_worse_in_shadow_is_rolled_back_at_once(heald: Heald, clock: ManualClock) -> None:
    """A retrained champion that scores worse than the version it replaced on the same labelled rows is rolled
    back on the first tick that shows it (its own retrain still settling, cooldowns notwithstanding); the move
    is in the alias history with the evidence, and heald cannot promote that version again."""
    start(heald, clock)
    run(heald, clock, 2, seed=100)
    bad = promote_by_retrain(heald, clock, shifted=True)  # learned a concept the stream does not follow
    run(heald, clock, 1, seed=200)
    (incident,) = [i for i in heald.store.list_incidents() if i.kind is SymptomKind.BAD_PROMOTION]
    (rollback,) = heald.store.actions(incident_id=incident.id)
    assert rollback.kind is ActionKind.ROLLBACK and rollback.state is ActionState.SUCCEEDED
    assert rollback.result == {"from_version": bad, "to_version": 1}
    assert heald.store.alias("m", Alias.CHAMPION) == 1
    move = heald.store.alias_history("m", Alias.CHAMPION)[-1]
    assert move.to_version == 1 and move.action_id == rollback.id
    assert f"champion v{bad} scores" in move.reason and "on the same 300 labelled rows" in move.reason
    with pytest.raises(ActionError, match="rolled back"):
        heald.registry.promote("m", bad, at=clock.now(), actor="heald", reason="again")
    (decision,) = [d for d in heald.store.decisions(incident_id=incident.id) if d.action_id == rollback.id]
    assert decision.decided_by == f"{Guard.RULE}:{SymptomKind.BAD_PROMOTION}"


def test_a_promotion_that_holds_up_in_shadow_stays(heald: Heald, clock: ManualClock) -> None:
    """A retrained champion as good as the one it replaced is judged in shadow and kept: no incident, no move."""
    start(heald, clock)
    run(heald, clock, 2, seed=100)
    good = promote_by_retrain(heald, clock, shifted=False)
    run(heald, clock, 5, seed=300)
    assert heald.store.alias("m", Alias.CHAMPION) == good
    assert not [i for i in heald.store.list_incidents() if i.kind is SymptomKind.BAD_PROMOTION]
    shadows = [o for o in heald.store.observations("m", metric="shadow") if o.evidence["version"] == good]
    assert [o.evidence["active"] for o in shadows] == [True] * 4 + [False]


def test_champion_and_every_stable_version_damaged_are_rebuilt_within_the_tick(
    heald: Heald, clock: ManualClock
) -> None:
    """With no version left that verifies, heald retrains at once from the rows served, whatever the cooldowns,
    and the registry check is clean after the very tick that detected the damage."""
    start(heald, clock)
    run(heald, clock, 3, seed=100)
    v2 = heald.registry.register(
        "m", heald.registry.load(heald.registry.version("m", 1)), at=clock.now(), reference=table(200)[["a", "b", "c"]]
    )
    heald.registry.promote("m", v2.number, at=clock.now(), actor="healctl", reason="test")
    for version in heald.store.list_versions("m"):
        (heald.settings.artifacts / version.artifact).write_bytes(b"damaged")
    assert heald.registry.check("m")
    run(heald, clock, 1, seed=200)
    assert heald.registry.check("m") == []
    (incident,) = heald.store.list_incidents()
    assert incident.kind is SymptomKind.ARTIFACT_CORRUPT
    (action,) = heald.store.actions(incident_id=incident.id)
    assert action.kind is ActionKind.RETRAIN and action.params["emergency"] is True
    assert action.state is ActionState.SUCCEEDED and heald.store.alias("m", Alias.CHAMPION) == 3


def test_lost_challengers_and_crash_aborts_do_not_trip_the_breaker(heald: Heald, clock: ManualClock) -> None:
    """Only remedies that failed count towards the breaker: challengers that lost and aborted actions do not."""
    start(heald, clock)

    def finish(state: ActionState, result: dict[str, object]) -> None:
        action = heald.store.plan_action(model="m", kind=ActionKind.RETRAIN, at=clock.now(), actor="heald", reason="t")
        heald.store.transition_action(action.id, state, at=clock.now(), result=result)

    for _ in range(3):
        finish(ActionState.FAILED, {"promoted": False, "champion": 0.9, "challenger": 0.88})
        finish(ActionState.ABORTED, {})
    assert not breaker_open(heald.store, "m", 3)
    for _ in range(3):
        finish(ActionState.FAILED, {})
    assert breaker_open(heald.store, "m", 3)


def test_a_lost_challenger_starts_no_lockout(heald: Heald, clock: ManualClock) -> None:
    """After retrains whose challengers lost, the next retrain waits for fresh labelled rows (twice the minimum),
    not for a clock or a person, and each wait in between names its guard. Lost challengers are no failures (the
    breaker stays shut), but after the rule's ``retries`` of them a person is alerted instead of a fourth fit."""
    start(heald, clock)
    lost = Outcome(ok=False, detail="challenger lost", result={"promoted": False, "champion": 0.5, "challenger": 0.5})
    recorder = RecordingActuator(outcomes=[lost] * 4)
    heald.loop.p.actuators[ActionKind.RETRAIN] = recorder  # type: ignore[index]
    run(heald, clock, 2, seed=100)
    run(heald, clock, 14, seed=400, shifted=True)
    retrains = heald.store.actions(model="m", kind=ActionKind.RETRAIN)
    assert len(retrains) == RULES[SymptomKind.PERFORMANCE_DROP].retries
    for before, after in itertools.pairwise(retrains):
        fresh = heald.store.batches("m", since=before.planned_at + timedelta(microseconds=1), labelled=True)
        assert sum(b.rows for b in fresh if b.received_at <= after.planned_at) >= 2 * 300
    drop = next(i for i in heald.store.list_incidents() if i.kind is SymptomKind.PERFORMANCE_DROP)
    assert not breaker_open(heald.store, "m", heald.settings.policy.breaker_failures)
    decisions = heald.store.decisions(incident_id=drop.id)
    last_fit = retrains[-1].planned_at
    waits = [d for d in decisions if d.chosen is None and d.at <= last_fit]
    assert waits and all(d.decided_by == Guard.EVIDENCE for d in waits)
    assert drop.status is IncidentStatus.ESCALATED
    escalation = [d for d in decisions if d.chosen == ActionKind.ALERT]
    assert escalation and escalation[0].at > last_fit and escalation[0].decided_by == Guard.NO_REMEDY


def test_serving_from_the_in_memory_copy_is_visible(heald: Heald, clock: ManualClock) -> None:
    """While the champion's file is damaged but its loaded copy still serves, status and the metrics say so."""
    start(heald, clock)
    champion = heald.registry.champion("m")
    assert champion is not None
    heald.registry.load(champion)
    assert status_view(heald.store, heald.registry)["models"][0]["serving_from_memory"] is False
    (heald.settings.artifacts / champion.artifact).write_bytes(b"damaged")
    assert status_view(heald.store, heald.registry)["models"][0]["serving_from_memory"] is True
    assert 'heald_serving_from_cache{model="m"} 1.0' in Metrics(heald.store, heald.registry).render().decode()
