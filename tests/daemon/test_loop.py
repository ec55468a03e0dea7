"""The MAPE-K loop end to end on simulated time: detect, decide, act journal-first, verify, resolve."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from structlog.testing import capture_logs

from actuators.base import ActContext, Outcome, RecordingActuator
from daemon.compose import Heald
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.values import ActionKind, ActionState, Alias, IncidentStatus, SymptomKind
from pipeline.train import TrainParams
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


def feed(heald: Heald, clock: ManualClock, frame: pd.DataFrame, name: str) -> None:
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / f"{name}.csv", index=False)


def run(heald: Heald, clock: ManualClock, ticks: int, *, shifted: bool, seed: int = 100) -> None:
    for i in range(ticks):
        clock.advance(timedelta(hours=1))
        feed(heald, clock, table(300, shifted=shifted, seed=seed + i), f"b{seed + i:05d}")
        heald.loop.tick()


def test_drift_opens_an_incident_that_a_retrain_resolves(heald: Heald, clock: ManualClock) -> None:
    """A shift that flips the rule raises data_drift and performance_drop; one retrain promotes v2, both resolve.

    The performance incident carries the remedy (labels are the better evidence); the drift incident waits
    for it rather than retraining a second time for the same cause.
    """
    start(heald, clock)
    with capture_logs() as events:
        run(heald, clock, 3, shifted=False)
        run(heald, clock, 8, shifted=True, seed=200)
    incidents = {i.kind: i for i in heald.store.list_incidents()}
    drift, drop = incidents[SymptomKind.DATA_DRIFT], incidents[SymptomKind.PERFORMANCE_DROP]
    assert drift.status is IncidentStatus.RESOLVED and drop.status is IncidentStatus.RESOLVED
    (action,) = heald.store.actions(model="m", kind=ActionKind.RETRAIN)
    assert action.incident_id == drop.id and action.state is ActionState.SUCCEEDED
    assert action.outcome == "verified"
    assert heald.store.alias("m", Alias.CHAMPION) == 2
    assert heald.store.actions(incident_id=drift.id) == []
    assert any("carries the remedy" in d.reason for d in heald.store.decisions(incident_id=drift.id))
    names = [e["event"] for e in events]
    assert names.index("incident_opened") < names.index("action_started") < names.index("action_succeeded")
    assert names.index("action_succeeded") < names.index("incident_resolved")
    opened = [e for e in events if e["event"] == "incident_opened"]
    assert {e["kind"] for e in opened} == {"data_drift", "performance_drop"}
    assert all(e["model"] == "m" and "incident_id" in e for e in opened)


def test_no_incident_without_drift(heald: Heald, clock: ManualClock) -> None:
    """Batches from the training distribution raise nothing and start no action."""
    start(heald, clock)
    run(heald, clock, 8, shifted=False)
    assert heald.store.list_incidents() == []
    assert heald.store.actions() == []


def test_corrupted_champion_is_rolled_back_to_a_stable_version(heald: Heald, clock: ManualClock) -> None:
    """A damaged champion file opens artifact_corrupt; rollback moves to stable v1 and the incident resolves."""
    start(heald, clock)
    run(heald, clock, 2, shifted=False)
    heald.settings.policy  # noqa: B018 - settings are frozen; the test promotes a second version by hand
    v2 = heald.registry.register(
        "m", heald.registry.load(heald.registry.version("m", 1)), at=clock.now(), reference=table(200)[["a", "b", "c"]]
    )
    heald.registry.promote("m", v2.number, at=clock.now(), actor="healctl", reason="test")
    (heald.settings.artifacts / v2.artifact).write_bytes(b"not a model")
    run(heald, clock, 4, shifted=False, seed=300)
    (incident,) = heald.store.list_incidents()
    assert incident.kind is SymptomKind.ARTIFACT_CORRUPT and incident.status is IncidentStatus.RESOLVED
    (action,) = heald.store.actions(incident_id=incident.id)
    assert action.kind is ActionKind.ROLLBACK and action.result == {"from_version": 2, "to_version": 1}
    assert heald.store.alias("m", Alias.CHAMPION) == 1
    assert heald.registry.version("m", 2).rolled_back_at is not None


def test_actions_are_journaled_before_they_run(heald: Heald, clock: ManualClock) -> None:
    """When an actuator runs, its action is already committed as running, after a planned entry."""
    start(heald, clock)
    seen: list[list[str]] = []

    class Spy(RecordingActuator):
        def execute(self, action, ctx: ActContext) -> Outcome:  # type: ignore[no-untyped-def]
            seen.append([e["state"] for e in ctx.store.action_events(action.id)])
            return super().execute(action, ctx)

    spy = Spy()
    heald.loop.p.actuators[ActionKind.RETRAIN] = spy  # type: ignore[index]
    run(heald, clock, 6, shifted=True)
    assert seen and seen[0] == ["planned", "running"]


def test_ticking_again_never_acts_twice(heald: Heald, clock: ManualClock) -> None:
    """While an action is under way, further ticks (even with no time passing) start nothing new."""
    start(heald, clock)
    recorder = RecordingActuator(outcomes=[Outcome(ok=True, detail="pretend")])
    heald.loop.p.actuators[ActionKind.RETRAIN] = recorder  # type: ignore[index]
    run(heald, clock, 4, shifted=True)
    count = len(recorder.executed)
    for _ in range(3):
        heald.loop.tick()
    assert count == 1 and len(recorder.executed) == 1


def test_failed_actions_escalate_to_a_person(heald: Heald, clock: ManualClock) -> None:
    """When every retrain fails, the incident is escalated and a person is alerted once, for one cause."""
    start(heald, clock)
    heald.loop.p.actuators[ActionKind.RETRAIN] = RecordingActuator(  # type: ignore[index]
        outcomes=[Outcome(ok=False, detail="disk full")] * 5
    )
    with capture_logs() as events:
        run(heald, clock, 16, shifted=True)
    (incident,) = [i for i in heald.store.list_incidents() if i.kind is SymptomKind.PERFORMANCE_DROP]
    assert incident.status is IncidentStatus.ESCALATED
    kinds = [a.kind for a in heald.store.actions(incident_id=incident.id)]
    assert kinds == [ActionKind.RETRAIN] * heald.settings.policy.breaker_failures + [ActionKind.ALERT]
    # Each retry waits for twice the fresh rows of the one before (300, 600, 1200): a failing remedy does not storm.
    reasons = [d.reason for d in heald.store.decisions(incident_id=incident.id)]
    assert any(r.startswith("waiting: labelled rows since retrain") and r.endswith(" of 1200") for r in reasons)
    alerts = [e for e in events if e["event"] == "alert_raised"]
    assert [e["incident_id"] for e in alerts] == [incident.id]
    assert any(e["event"] == "incident_escalated" for e in events)


def test_a_paused_model_is_watched_but_not_touched(heald: Heald, clock: ManualClock) -> None:
    """Pausing stops remediation: the incident opens, the decision says why, no action runs."""
    start(heald, clock)
    heald.store.set_paused("m", True)
    run(heald, clock, 6, shifted=True)
    incidents = heald.store.list_incidents()
    assert incidents and heald.store.actions() == []
    for incident in incidents:
        assert heald.store.decisions(incident_id=incident.id)[-1].reason == "waiting: model paused by an operator"


def test_a_silenced_kind_opens_no_incident(heald: Heald, clock: ManualClock) -> None:
    """An operator's silence keeps drift from opening incidents until it expires."""
    start(heald, clock)
    heald.store.add_control(
        model="m",
        kind="silence",
        at=clock.now(),
        actor="op",
        reason="known shift",
        symptom=SymptomKind.DATA_DRIFT,
        until=clock.now() + timedelta(days=1),
    )
    run(heald, clock, 6, shifted=True)
    kinds = {i.kind for i in heald.store.list_incidents()}
    assert SymptomKind.DATA_DRIFT not in kinds
    assert SymptomKind.PERFORMANCE_DROP in kinds  # only the silenced kind is held back


def test_a_bad_batch_is_quarantined_with_its_reason_and_the_loop_goes_on(heald: Heald, clock: ManualClock) -> None:
    """A file missing a feature column is moved to quarantine with a reason file; good files still flow."""
    start(heald, clock)
    folder = heald.settings.landing / "m"
    folder.mkdir(parents=True)
    table(50).drop(columns=["b"]).to_csv(folder / "bad.csv", index=False)
    (folder / "garbage.csv").write_bytes(b"\x00\xff\xfe garbage \x00")
    clock.advance(timedelta(hours=1))
    heald.loop.tick()
    quarantine = heald.settings.state_dir / "quarantine" / "m"
    reasons = sorted(p.name for p in quarantine.glob("*.reason.json"))
    assert len(reasons) == 2
    bad = next(quarantine.glob("*bad.csv"))
    assert len(pd.read_csv(bad)) == 50  # every row kept
    assert "missing columns 'b'" in json.loads((bad.parent / (bad.name + ".reason.json")).read_text())["reason"]
    (incident,) = heald.store.list_incidents()
    assert incident.kind is SymptomKind.DATA_QUALITY
    run(heald, clock, 2, shifted=False)
    assert len(heald.store.batches("m")) == 2


def test_restart_reconciles_interrupted_actions_by_looking_at_the_world(
    heald: Heald, clock: ManualClock, settings: object
) -> None:
    """An action left running whose alias move happened becomes succeeded; one with no effect is aborted."""
    start(heald, clock)
    store = heald.store
    moved = store.plan_action(model="m", kind=ActionKind.ROLLBACK, at=clock.now(), actor="heald", reason="x")
    store.transition_action(moved.id, ActionState.RUNNING, at=clock.now())
    v2 = heald.registry.register(
        "m", heald.registry.load(heald.registry.version("m", 1)), at=clock.now(), reference=table(50)[["a", "b", "c"]]
    )
    heald.registry.promote("m", v2.number, at=clock.now(), actor="heald", reason="x", action_id=moved.id)
    lost = store.plan_action(model="m", kind=ActionKind.RETRAIN, at=clock.now(), actor="heald", reason="y")
    store.transition_action(lost.id, ActionState.RUNNING, at=clock.now())
    assert sorted(heald.loop.reconcile()) == [moved.id, lost.id]
    assert store.get_action(moved.id).state is ActionState.SUCCEEDED
    assert store.get_action(lost.id).state is ActionState.ABORTED
    assert heald.loop.reconcile() == []


def test_retrain_that_is_not_better_is_not_promoted(heald: Heald, clock: ManualClock, tmp_path: Path) -> None:
    """A challenger that does not beat the champion by min_gain stays a challenger; the action fails."""
    start(heald, clock)
    run(heald, clock, 3, shifted=False)
    from actuators.retrain import RetrainActuator

    action = heald.store.plan_action(
        model="m",
        kind=ActionKind.RETRAIN,
        at=clock.now(),
        actor="heald",
        reason="test",
        params={"since": (clock.now() - timedelta(days=1)).isoformat()},
    )
    base = heald.loop.p.act_settings("m")
    ctx = ActContext(
        now=clock.now(),
        model=heald.store.get_model("m"),
        registry=heald.registry,
        store=heald.store,
        settings=replace(base, min_gain=0.2),
    )
    outcome = RetrainActuator().execute(action, ctx)
    assert not outcome.ok and outcome.result["promoted"] is False
    assert heald.store.alias("m", Alias.CHAMPION) == 1
    assert heald.store.alias("m", Alias.CHALLENGER) == 2


@pytest.mark.parametrize("broken", ["delete", "truncate"])
def test_loop_survives_a_sensor_that_raises(heald: Heald, clock: ManualClock, broken: str) -> None:
    """A sensor bug becomes a sensor_failed observation; the other sensors and the tick go on."""
    start(heald, clock)

    class Broken:
        def sense(self, ctx: object) -> list[object]:
            raise RuntimeError(f"boom ({broken})")

    heald.loop.p.sensors.append(Broken())  # type: ignore[arg-type]
    run(heald, clock, 1, shifted=False)
    failed = heald.store.observations("m", metric="sensor_failed")
    assert failed and "boom" in failed[0].evidence["error"]
    assert heald.store.observations("m", metric="performance")


def test_only_the_lease_holder_acts(settings: object, clock: ManualClock, heald: Heald) -> None:
    """Two daemons on one store: both observe, only the first to take the lease plans and acts."""
    from daemon.compose import build

    start(heald, clock)
    other = build(heald.settings, clock=clock, pool="inline", store=heald.store, holder="standby:2")
    clock.advance(timedelta(hours=1))
    heald.loop.tick()  # takes the lease
    for i in range(6):
        clock.advance(timedelta(minutes=10))
        feed(heald, clock, table(300, shifted=True, seed=500 + i), f"s{i}")
        report = other.loop.tick()
        assert report.started == []
    assert heald.store.list_incidents()  # the standby still monitors and records incidents
    assert heald.store.actions() == []
    clock.advance(timedelta(hours=1))
    assert heald.loop.tick().started  # the holder acts on what the standby saw
