"""The planner's rule table and guards: every symptom kind has one rule, every remedy an actuator and a cost, a
rule added in one place is planned, and host symptoms scale by their cause within the pool's bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.compose import Heald
from daemon.guards import Guard
from daemon.planner import PRIOR_SECONDS, RISK_SECONDS, Planner, PlannerSettings
from daemon.rules import HOST, RULES, Rule, Scope
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import PERSON_ONLY, ActionKind, ModelRecord, Severity, Symptom, SymptomKind, Task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_symptom_kind_has_a_rule_and_every_remedy_an_actuator_and_a_cost(heald: Heald) -> None:
    """No kind falls through the table, and every action kind a ladder can name can run and be weighed."""
    assert set(RULES) == set(SymptomKind)
    assert all(rule.kind is kind for kind, rule in RULES.items())
    automatic = set(ActionKind) - PERSON_ONLY
    assert set(heald.loop.p.actuators) == automatic
    assert set(PRIOR_SECONDS) == automatic == set(RISK_SECONDS)
    assert not {kind for rule in RULES.values() for kind in rule.ladder} & PERSON_ONLY
    assert len({r.priority for r in RULES.values()}) == len(RULES)


def world(tmp_path: Path, rules: dict[SymptomKind, Rule], pool: int = 1) -> tuple[SqlKnowledgeStore, Planner]:
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'heald.db'}")
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))
    planner = Planner(store, registry, PlannerSettings(max_workers=3), rules=rules, pool_size=lambda: pool)
    return store, planner


def incident(store: SqlKnowledgeStore, kind: SymptomKind, model: str, **evidence: object) -> tuple[ModelRecord, int]:
    symptom = Symptom(
        at=T0, model=model, kind=kind, severity=Severity.WARNING, score=1.0, summary="s", evidence=evidence
    )
    opened = store.open_incident(symptom)
    store.add_symptom(symptom, opened.id)
    return ModelRecord(name=model, task=Task.CLASSIFICATION, target="y", created_at=T0), opened.id


def test_a_rule_added_in_one_place_is_planned(tmp_path: Path) -> None:
    """A kind that ships with no remedy gets one by a single entry in the rule table, and the planner plans it,
    recording that the rule decided."""
    rules = dict(RULES)
    rules[SymptomKind.DATA_QUALITY] = Rule(
        kind=SymptomKind.DATA_QUALITY, priority=42, ladder=(ActionKind.SCALE,), scale=lambda e: 1, summary=str
    )
    store, planner = world(tmp_path, rules)
    model, opened = incident(store, SymptomKind.DATA_QUALITY, "m")
    plan = planner.plan(model, store.get_incident(opened), T0)
    assert plan is not None and plan.chosen is not None and plan.chosen.kind is ActionKind.SCALE
    assert plan.chosen.params == {"step": 1} and plan.decided_by == f"{Guard.RULE}:data_quality"
    assert planner.priority(store.get_incident(opened)) == 42


@pytest.mark.parametrize(
    ("kind", "over", "pool", "expected", "decided_by"),
    [
        (SymptomKind.BACKLOG, ["9 actions pending (limit 8)"], 1, 1, f"{Guard.RULE}:backlog"),
        (SymptomKind.BACKLOG, ["9 actions pending (limit 8)"], 3, None, Guard.NO_REMEDY),
        (SymptomKind.HOST_PRESSURE, ["memory_percent 95.0 >= 90"], 2, -1, f"{Guard.RULE}:host_pressure"),
        (SymptomKind.HOST_PRESSURE, ["memory_percent 95.0 >= 90"], 1, None, Guard.NO_REMEDY),
        (SymptomKind.HOST_PRESSURE, ["load_per_cpu 9.0 >= 4"], 2, None, Guard.OBSERVE),
    ],
)
def test_host_symptoms_scale_by_their_cause_within_the_pool_bounds(
    tmp_path: Path, kind: SymptomKind, over: list[str], pool: int, expected: int | None, decided_by: str
) -> None:
    """A backlog grows the pool, memory pressure shrinks it, CPU taken by others is only watched; a step past
    the pool's bounds is infeasible in the planner (a person is told), never a failing action."""
    assert RULES[kind].scope is Scope.HOST
    store, planner = world(tmp_path, dict(RULES), pool=pool)
    model, opened = incident(store, kind, HOST, over=over)
    plan = planner.plan(model, store.get_incident(opened), T0)
    assert plan is not None and plan.decided_by == decided_by
    if expected is None:
        assert plan.chosen is None or plan.chosen.kind is ActionKind.ALERT
    else:
        assert plan.chosen is not None and plan.chosen.params == {"step": expected}
