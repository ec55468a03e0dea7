"""The planner's rules for rolling back and for retrying a retrain, on a real SQLite knowledge store.

Rollback answers a bad release, so it is chosen for a performance drop only when the drop came with the
current champion; a retrain may be tried again once fresh labelled rows have arrived, a bounded number of
times per incident, and after a promoted retrain that did not cure the symptom it learns only newer rows.
A retrain waits while the champion's loss is still moving and learns only its current regime; input drift
that labels show to be harmless waits for a performance drop instead of retraining.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.onboard import onboard
from daemon.planner import Plan, Planner, PlannerSettings
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import (
    ActionKind,
    ActionState,
    Incident,
    Observation,
    Severity,
    Symptom,
    SymptomKind,
)
from pipeline.train import TrainParams, train

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MODEL = "m"


def at(tick: int) -> datetime:
    return T0 + tick * HOUR


class World:
    """A model with a stable version 1, and helpers to write the history the planner reads."""

    def __init__(self, root: Path) -> None:
        self.store = SqlKnowledgeStore.open(f"sqlite:///{root / 'heald.db'}")
        self.registry = ModelRegistry(self.store, ArtifactStore(root / "artifacts"))
        self.planner = Planner(
            self.store,
            self.registry,
            PlannerSettings(
                cooldown_seconds=0, tick_seconds=3600, verify_within=2, breaker_failures=3, min_retrain_rows=150
            ),
        )
        rng = np.random.default_rng(0)
        self.frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
        self.frame["y"] = (self.frame["a"] > 0).astype(int)
        onboard(
            self.store,
            self.registry,
            name=MODEL,
            frame=self.frame,
            target="y",
            now=T0,
            params=TrainParams(n_estimators=3, random_state=0),
        )
        self.model = self.store.get_model(MODEL)

    def deploy(self, tick: int) -> int:
        """A new, not yet stable champion."""
        trained = train(self.frame, target="y", task="classification", params=TrainParams(n_estimators=3))
        version = self.registry.register(MODEL, trained.estimator, at=at(tick), reference=self.frame[["a", "b"]])
        self.registry.promote(MODEL, version.number, at=at(tick), actor="healctl", reason="deploy")
        return version.number

    def reading(self, tick: int, version: int, value: float, rows: int | None = None) -> None:
        """The performance sensor's reading; with ``rows``, the evidence the regime test reads as well."""
        evidence: dict[str, object] = {"version": version}
        if rows is not None:
            evidence |= {"metric": "accuracy", "rows": rows}
        self.store.add_observations(
            [
                Observation(
                    at=at(tick),
                    model=MODEL,
                    source="performance",
                    metric="performance",
                    value=value,
                    evidence=evidence,
                )
            ]
        )

    def symptom(
        self, kind: SymptomKind, tick: int, version: int, first: int, incident: Incident | None = None
    ) -> Incident:
        """Open an incident with this symptom, or add the symptom to ``incident``."""
        symptom = Symptom(
            at=at(tick),
            model=MODEL,
            kind=kind,
            severity=Severity.WARNING,
            score=0.5,
            summary="test",
            evidence={"version": version, "first_seen_at": at(first).isoformat()},
        )
        if incident is None:
            return self.store.open_incident(symptom)
        self.store.add_symptom(symptom, incident.id)
        return incident

    def batch(self, tick: int, rows: int = 100) -> None:
        self.store.add_batch(
            model=MODEL, received_at=at(tick), source="landing", path="-", rows=rows, labelled=True, fingerprint=""
        )

    def retrain(self, incident: Incident, tick: int, state: ActionState, outcome: str | None = None) -> int:
        action = self.store.plan_action(
            model=MODEL, kind=ActionKind.RETRAIN, at=at(tick), actor="heald", reason="test", incident_id=incident.id
        )
        self.store.transition_action(action.id, ActionState.RUNNING, at=at(tick))
        self.store.transition_action(action.id, state, at=at(tick), outcome=outcome)
        return action.id

    def lost(self, incident: Incident, tick: int, result: dict[str, object]) -> int:
        """A retrain whose challenger was judged and not promoted (a failed action, by design no failure)."""
        action = self.store.plan_action(
            model=MODEL, kind=ActionKind.RETRAIN, at=at(tick), actor="heald", reason="test", incident_id=incident.id
        )
        self.store.transition_action(action.id, ActionState.RUNNING, at=at(tick))
        self.store.transition_action(action.id, ActionState.FAILED, at=at(tick), result=result)
        return action.id

    def plan(self, incident: Incident, tick: int) -> Plan:
        plan = self.planner.plan(self.model, self.store.get_incident(incident.id), at(tick))
        assert plan is not None
        return plan


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def candidate(plan: Plan, kind: ActionKind) -> str:
    return next(c.why for c in plan.candidates if c.kind is kind)


def test_no_rollback_when_the_drop_began_before_the_champion(world: World) -> None:
    """A drop first seen on v1 and still there after v2 was promoted is not v2's fault: retrain, not rollback."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    v2 = world.deploy(3)
    for tick in (4, 5):
        world.reading(tick, v2, 0.5)
        world.batch(tick)
    world.symptom(SymptomKind.PERFORMANCE_DROP, 5, version=v2, first=4, incident=incident)
    plan = world.plan(incident, 5)
    assert "did not come with champion v2" in candidate(plan, ActionKind.ROLLBACK)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN


def test_rollback_when_the_new_champion_was_sick_from_its_first_reading(world: World) -> None:
    """A champion that has been below the threshold since it started serving is rolled back to stable v1."""
    v2 = world.deploy(1)
    for tick in (2, 3):
        world.reading(tick, v2, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 3, version=v2, first=2)
    plan = world.plan(incident, 3)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.ROLLBACK


def test_no_rollback_while_the_inputs_drift(world: World) -> None:
    """With a data drift incident open, an older model would fit the new inputs no better: no rollback."""
    v2 = world.deploy(1)
    for tick in (2, 3):
        world.reading(tick, v2, 0.5)
        world.batch(tick)
    world.symptom(SymptomKind.DATA_DRIFT, 3, version=v2, first=2)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 3, version=v2, first=2)
    plan = world.plan(incident, 3)
    assert candidate(plan, ActionKind.ROLLBACK) == "the inputs are drifting"
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN


def test_a_failed_retrain_is_tried_again_only_with_fresh_rows(world: World) -> None:
    """After a retrain whose challenger lost, the planner waits for twice min_retrain_rows new rows, then retrains."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    failed = world.retrain(incident, 2, ActionState.FAILED)
    world.batch(3)
    world.batch(4)
    waiting = world.plan(incident, 4)
    assert waiting.chosen is None
    assert waiting.reason == f"waiting: labelled rows since retrain #{failed}: 200 of 300"  # twice the minimum
    world.batch(5)
    again = world.plan(incident, 5)
    assert again.chosen is not None and again.chosen.kind is ActionKind.RETRAIN
    assert again.chosen.params["since"] == at(1).isoformat()  # a lost challenger: learn from the whole symptom


def test_after_a_promoted_retrain_the_next_learns_only_newer_rows(world: World) -> None:
    """A retrain that was promoted but did not cure the symptom is followed by one on rows after it."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    world.retrain(incident, 2, ActionState.SUCCEEDED)
    for tick in (3, 4, 5):
        world.batch(tick)
    plan = world.plan(incident, 5)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN
    assert datetime.fromisoformat(plan.chosen.params["since"]) > at(2)
    assert plan.unverified  # the earlier retrain did not show its effect within verify_within ticks


def test_retrains_per_incident_are_capped_then_a_person_is_alerted(world: World) -> None:
    """After breaker_failures retrains that did not help, the incident escalates to a person."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    for tick in (2, 4, 6):
        world.retrain(incident, tick, ActionState.SUCCEEDED, outcome="not_verified")
    for tick in (7, 8):
        world.batch(tick)
    plan = world.plan(incident, 8)
    assert plan.escalate
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.ALERT
    assert all(c.kind is not ActionKind.RETRAIN for c in plan.candidates)


def test_challengers_that_keep_losing_reach_a_person(world: World) -> None:
    """A lost challenger starts no lockout, but after the rule's ``retries`` of them (each with fresh rows) the model
    is still sick and no fit beats it: the next plan alerts a person instead of fitting a fourth time."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick, rows=1000)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    lost = {"promoted": False, "champion": 0.5, "challenger": 0.49}
    for tick in (2, 3):
        world.lost(incident, tick, lost)
        world.batch(tick + 1, rows=1000)
    third = world.plan(incident, 4)
    assert third.chosen is not None and third.chosen.kind is ActionKind.RETRAIN  # two lost: another try
    world.lost(incident, 4, lost)
    world.batch(5, rows=1000)
    plan = world.plan(incident, 5)
    assert plan.escalate and plan.chosen is not None and plan.chosen.kind is ActionKind.ALERT
    assert all(c.kind is not ActionKind.RETRAIN for c in plan.candidates)


def test_a_failed_retrain_for_data_drift_escalates(world: World) -> None:
    """Drift without a performance drop gets one retrain; if its challenger loses, a person is alerted."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.9)
        world.batch(tick)
    incident = world.symptom(SymptomKind.DATA_DRIFT, 2, version=1, first=1)
    world.retrain(incident, 2, ActionState.FAILED)
    for tick in (3, 4):
        world.batch(tick)
    plan = world.plan(incident, 4)
    assert plan.escalate
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.ALERT


def test_no_rollback_of_a_champion_made_in_the_incidents_own_tick(world: World) -> None:
    """A retrain that answered the incident in the tick it opened made a champion younger than the drop."""
    for tick in (1, 2):
        world.reading(tick, 1, 0.5)
        world.batch(tick)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 2, version=1, first=1)
    v2 = world.deploy(2)
    for tick in (3, 4):
        world.reading(tick, v2, 0.5)
        world.batch(tick)
    world.symptom(SymptomKind.PERFORMANCE_DROP, 4, version=v2, first=3, incident=incident)
    plan = world.plan(incident, 4)
    assert "did not come with champion v2" in candidate(plan, ActionKind.ROLLBACK)


def test_a_failed_rerun_is_tried_again_then_a_person_is_alerted(world: World) -> None:
    """A failed pipeline gets up to breaker_failures reruns (a stage may pass next time), then escalates."""
    symptom = Symptom(
        at=at(1), model=MODEL, kind=SymptomKind.PIPELINE_FAILED, severity=Severity.CRITICAL, score=1.0, summary="x"
    )
    incident = world.store.open_incident(symptom)

    def rerun(tick: int) -> None:
        action = world.store.plan_action(
            model=MODEL, kind=ActionKind.RERUN, at=at(tick), actor="heald", reason="test", incident_id=incident.id
        )
        world.store.transition_action(action.id, ActionState.RUNNING, at=at(tick))
        world.store.transition_action(action.id, ActionState.FAILED, at=at(tick), error="train failed")

    rerun(1)
    again = world.plan(incident, 2)
    assert again.chosen is not None and again.chosen.kind is ActionKind.RERUN
    rerun(2)
    rerun(3)
    plan = world.plan(incident, 4)
    assert plan.escalate
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.ALERT


def measured(world: World, accuracies: dict[int, float], rows: int = 100) -> None:
    """Labelled batches of ``rows`` and the champion v1's accuracy on each, by tick."""
    for tick, value in accuracies.items():
        world.reading(tick, 1, value, rows=rows)
        world.batch(tick, rows)


def test_a_retrain_waits_while_the_loss_is_still_moving(world: World) -> None:
    """A gradual drift under way: the retrain waits until the new regime holds min_retrain_rows, then learns it."""
    measured(world, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 0.75, 8: 0.45, 9: 0.15})
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 9, version=1, first=8)
    waiting = world.plan(incident, 9)
    assert waiting.chosen is None
    assert waiting.reason == "waiting: the loss changed again at 2026-01-01 09:00; 100 of 150 rows since"
    measured(world, {10: 0.16})
    plan = world.plan(incident, 10)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN
    assert plan.chosen.params["since"] == at(9).isoformat()  # the regime, not the first sick batch at 8


def test_the_hold_ends_and_the_newest_rows_are_learned(world: World) -> None:
    """A loss that keeps moving does not hold the retrain for ever: at twice the minimum it learns the newest."""
    measured(world, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 0.75, 8: 0.45, 9: 0.15, 10: 0.0})
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 9, version=1, first=8)
    plan = world.plan(incident, 10)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN
    assert plan.chosen.params["since"] == at(9).isoformat()  # batches 9 and 10 hold the 150 rows needed


def test_an_abrupt_drop_is_retrained_on_at_once(world: World) -> None:
    measured(world, {1: 0.95, 2: 0.94, 3: 0.95, 4: 0.6, 5: 0.61})
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 5, version=1, first=4)
    plan = world.plan(incident, 5)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN
    assert plan.chosen.params["since"] == at(4).isoformat()


def test_drift_that_labels_show_harmless_waits(world: World) -> None:
    """Inputs drifted, but labelled accuracy holds and no performance incident is open: no retrain, no page."""
    measured(world, {1: 0.95, 2: 0.94, 3: 0.95})
    incident = world.symptom(SymptomKind.DATA_DRIFT, 3, version=1, first=2)
    plan = world.plan(incident, 3)
    assert plan.chosen is None and not plan.escalate
    assert plan.reason == "waiting: labelled performance holds since the inputs drifted"
    # Once the metric drops too, the performance incident carries the remedy: a retrain (no rollback while
    # the inputs drift), and the drift incident keeps waiting rather than paging for the same cause.
    dropped = world.symptom(SymptomKind.PERFORMANCE_DROP, 3, version=1, first=2)
    deferred = world.plan(incident, 3)
    assert (
        deferred.chosen is None
        and deferred.reason == f"waiting: performance_drop incident #{dropped.id} carries the remedy"
    )
    acted = world.plan(dropped, 3)
    assert acted.chosen is not None and acted.chosen.kind is ActionKind.RETRAIN


def test_drift_without_labels_is_retrained_on(world: World) -> None:
    """With no labelled readings since the drift began, the drift is the only evidence there is."""
    for tick in (1, 2):
        world.batch(tick)
    incident = world.symptom(SymptomKind.DATA_DRIFT, 2, version=1, first=1)
    plan = world.plan(incident, 2)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN


def test_a_retrain_waits_while_the_loss_is_still_climbing(world: World) -> None:
    """A steady climb within one regime: the retrain holds until twice min_retrain_rows have come since."""
    planner = Planner(world.store, world.registry, replace(world.planner.settings, min_retrain_rows=2000))
    measured(world, {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9, 5: 0.9, 6: 0.9, 7: 0.84, 8: 0.81, 9: 0.78}, rows=1000)
    incident = world.symptom(SymptomKind.PERFORMANCE_DROP, 9, version=1, first=7)
    waiting = planner.plan(world.model, incident, at(9))
    assert waiting is not None and waiting.chosen is None
    assert waiting.reason == "waiting: the loss is still climbing"
    measured(world, {10: 0.75}, rows=1000)
    plan = planner.plan(world.model, incident, at(10))
    assert plan is not None and plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN


def test_a_damaged_artifact_is_retrained_at_once_on_the_rows_the_champion_served(world: World) -> None:
    """A corrupt file says nothing about the data: no wait for rows since the symptom, learn what v1 served."""
    measured(world, {1: 0.95, 2: 0.94})
    symptom = Symptom(
        at=at(3), model=MODEL, kind=SymptomKind.ARTIFACT_CORRUPT, severity=Severity.CRITICAL, score=1.0, summary="x"
    )
    incident = world.store.open_incident(symptom)
    plan = world.plan(incident, 3)
    assert plan.chosen is not None and plan.chosen.kind is ActionKind.RETRAIN  # v1 is the only version
    assert datetime.fromisoformat(plan.chosen.params["since"]) <= at(1)
    assert plan.chosen.why == "rebuild from 200 labelled rows"  # both batches v1 served, none since the symptom
