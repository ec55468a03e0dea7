"""Plan (the P of MAPE-K): choose a remedy for an incident by its rule and by cost, or choose to wait.

``plan()`` runs in a visible order: the guards of ``daemon.guards.ORDER`` (busy, escalated, paused,
deferred, breaker), then the incident's rule (``daemon.rules``) weighs its ladder of remedies, each with its
precondition checked here (a rollback target that verifies, labelled rows for a retrain, room in the pool
for a scale), then the guards of ``AFTER`` (cooldown, budget) on the chosen remedy, which an urgent rule's
remedy skips. Every plan names what decided it (``Plan.decided_by``), stored with the decision.

A candidate is dropped when this incident already tried it and it failed for real (or its effect did not
show within ``verify_within`` labelled batches); the rule's ``retry`` remedy may be tried again, up to its
``retries`` attempts. A retrain whose challenger lost is no failure: the next one just waits for fresh rows;
it still counts as one of the ``retries`` attempts, so a model no fit can improve reaches a person.
Cost is the mean duration of past successful actions of that kind on the model (a prior until there is
history) plus a risk weight.

When and on what to retrain is decided from the champion's labelled readings:

- a retrain for a drift or a drop learns the rows since the first sick reading (for a damaged artifact or a
  failed pipeline, the rows the champion served), or only the champion's current loss regime
  (``daemon.regime``) when that began later; while the loss is still moving the planner waits, up to
  ``HOLD_FACTOR`` times the rows it needed;
- another attempt at the same symptom needs fresh labelled rows, twice (at most four times) the minimum per
  earlier attempt: no storm of fits on slivers of a moving concept;
- an artifact emergency (the champion and every stable version damaged) rebuilds at once from the newest
  rows, whatever the cooldowns;
- a data drift incident waits while labels show the metric holding, and defers to an open performance
  drop, which carries the remedy; it acts on its own only when labels are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon import guards, regime
from daemon.guards import Evidence, Guard
from daemon.rules import RULES, Learns, Rule
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import (
    Action,
    ActionKind,
    ActionState,
    Batch,
    Incident,
    IncidentStatus,
    Metric,
    ModelRecord,
    SymptomKind,
    Version,
)

# A retrain waits while the loss is still moving, but no longer than until the rows since the symptom began
# reach this many times the rows it needs: then it learns from the newest rows it has.
HOLD_FACTOR = 2

# Expected seconds before any history exists, and how much risk each kind adds to its cost.
PRIOR_SECONDS = {
    ActionKind.ROLLBACK: 1.0,
    ActionKind.SCALE: 2.0,
    ActionKind.RERUN: 30.0,
    ActionKind.RETRAIN: 60.0,
    ActionKind.ALERT: 0.0,
}
RISK_SECONDS = {
    ActionKind.ROLLBACK: 5.0,
    ActionKind.SCALE: 1.0,
    ActionKind.RERUN: 5.0,
    ActionKind.RETRAIN: 10.0,
    ActionKind.ALERT: 10_000.0,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannerSettings:
    cooldown_batches: int = 2
    cooldown_seconds: float = 1800
    max_actions_per_hour: int = 6
    breaker_failures: int = 3
    verify_within: int = 4
    tick_seconds: float = 60
    min_retrain_rows: int = 400
    max_workers: int = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    kind: ActionKind
    cost: float
    feasible: bool
    why: str
    params: dict[str, Any] = field(default_factory=dict)
    waiting: bool = False  # not yet: more labelled rows will make it feasible
    observe: bool = False  # the cause is not one this remedy changes

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "cost": round(self.cost, 3), "feasible": self.feasible, "why": self.why}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The planner's answer for one incident: an action to take, or a reason to wait, and who decided."""

    incident: Incident
    candidates: list[Candidate]
    chosen: Candidate | None
    reason: str
    decided_by: str = Guard.RULE
    escalate: bool = False
    unverified: list[int] = field(default_factory=list)


class Planner:
    """Chooses actions for a model's (or the host's) active incidents."""

    def __init__(
        self,
        store: SqlKnowledgeStore,
        registry: ModelRegistry,
        settings: PlannerSettings,
        *,
        rules: Mapping[SymptomKind, Rule] = RULES,
        pool_size: Callable[[], int] = lambda: 1,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.rules = rules
        self.pool_size = pool_size
        self.evidence = Evidence(store, settings.tick_seconds)

    def priority(self, incident: Incident) -> int:
        return self.rules[incident.kind].priority

    def plan(self, model: ModelRecord, incident: Incident, now: datetime) -> Plan | None:
        """What to do about ``incident`` now; None when an action is under way or a person has it."""
        s = self.settings
        rule = self.rules[incident.kind]
        only = incident.id if rule.urgent else None
        if guards.busy(self.store, self.evidence, model.name, s.verify_within, now, only=only):
            return None
        if incident.status is IncidentStatus.ESCALATED:
            return None
        history = self.store.actions(incident_id=incident.id)
        unverified = guards.unverified(self.evidence, history, s.verify_within, now)

        def wait(guard: Guard, why: str) -> Plan:
            return Plan(
                incident=incident,
                candidates=candidates,
                chosen=None,
                reason=f"waiting: {why}",
                decided_by=guard,
                unverified=unverified,
            )

        began = self._since(incident)
        candidates = self._candidates(model, incident, rule, history, unverified, began)
        if model.paused:
            return wait(Guard.PAUSED, "model paused by an operator")
        deferred = self._defers(model, incident, rule, began)
        if deferred:
            return wait(Guard.DEFERRED, deferred)
        if guards.breaker_open(self.store, model.name, s.breaker_failures):
            return self._escalate(incident, candidates, Guard.BREAKER, f"{s.breaker_failures} remedies failed in a row")
        feasible = sorted((c for c in candidates if c.feasible), key=lambda c: c.cost)
        if not feasible:
            pending = next((c for c in candidates if c.waiting), None)
            if pending is not None:
                return wait(Guard.EVIDENCE, pending.why)
            observed = next((c for c in candidates if c.observe), None)
            if observed is not None:
                return wait(Guard.OBSERVE, observed.why)
            return self._escalate(incident, candidates, Guard.NO_REMEDY, "no automatic remedy left", unverified)
        chosen = feasible[0]
        if not rule.urgent:
            cooling = guards.cooldown(
                self.store, self.evidence, model.name, chosen.kind, s.cooldown_batches, s.cooldown_seconds, now
            )
            if cooling:
                return wait(Guard.COOLDOWN, cooling)
            spent = guards.budget(self.store, s.max_actions_per_hour, now)
            if spent:
                return wait(Guard.BUDGET, spent)
        return Plan(
            incident=incident,
            candidates=candidates,
            chosen=chosen,
            reason=f"cheapest feasible remedy for {incident.kind.value}",
            decided_by=f"{Guard.RULE}:{incident.kind.value}",
            unverified=unverified,
        )

    def _candidates(
        self,
        model: ModelRecord,
        incident: Incident,
        rule: Rule,
        history: list[Action],
        unverified: list[int],
        began: datetime,
    ) -> list[Candidate]:
        """The rule's ladder without what this incident tried and spent, each with its precondition checked.

        An action aborted by a crash, a lost challenger or a skipped action may be tried again; one that failed
        or did not help may not, except the rule's ``retry`` remedy, up to ``retries`` attempts (lost challengers
        count as attempts of it).
        """
        spent = [a for a in history if guards.failed(a) or a.id in unverified]
        tried = {a.kind for a in spent}
        # A lost challenger spends no lockout, but it is an attempt: after ``retries`` of them the model stays
        # sick with no fit able to beat it, which a person must hear about rather than an endless series of fits.
        if rule.retry is not None:
            attempts = sum(1 for a in history if a.kind is rule.retry and (a in spent or guards.lost_challenger(a)))
            if attempts < rule.retries:
                tried.discard(rule.retry)
            else:
                tried.add(rule.retry)
        retrains = self._retrains(model.name, began, history)
        return [self._candidate(k, model, incident, rule, retrains, began) for k in rule.ladder if k not in tried]

    def _escalate(
        self,
        incident: Incident,
        candidates: list[Candidate],
        guard: Guard,
        why: str,
        unverified: list[int] | None = None,
    ) -> Plan:
        alert = Candidate(
            kind=ActionKind.ALERT, cost=self._cost(incident.model, ActionKind.ALERT), feasible=True, why=why
        )
        return Plan(
            incident=incident,
            candidates=[*candidates, alert],
            chosen=alert,
            reason=why,
            decided_by=guard,
            escalate=True,
            unverified=unverified or [],
        )

    def _candidate(
        self,
        kind: ActionKind,
        model: ModelRecord,
        incident: Incident,
        rule: Rule,
        retrains: list[Action],
        began: datetime,
    ) -> Candidate:
        cost = self._cost(model.name, kind)
        if kind is ActionKind.ROLLBACK:
            return self._rollback(model, incident, cost)
        if kind is ActionKind.RETRAIN:
            if rule.urgent:
                return self._rebuild(model.name, cost)
            # A drift or a drop means the concept moved: learn only what came since. A failed pipeline says
            # nothing about the data: the rows the champion served are as good as they were.
            learn_from = began if rule.learns is Learns.SINCE_SYMPTOM else self._served_since(model.name)
            return self._retrain(model.name, cost, retrains, learn_from)
        if kind is ActionKind.SCALE:
            return self._scale(incident, rule, cost)
        return Candidate(kind=kind, cost=cost, feasible=True, why="no precondition")

    def _scale(self, incident: Incident, rule: Rule, cost: float) -> Candidate:
        """One step in the direction the cause asks for, if the pool's bounds leave room for it."""
        step = rule.scale(self._latest_evidence(incident))
        if step == 0:
            return Candidate(
                kind=ActionKind.SCALE, cost=cost, feasible=False, observe=True, why="the cause is not the pool's size"
            )
        size = self.pool_size()
        wanted = size + step
        if not 1 <= wanted <= self.settings.max_workers:
            why = f"the pool is at its bound ({size} of 1..{self.settings.max_workers})"
            return Candidate(kind=ActionKind.SCALE, cost=cost, feasible=False, why=why)
        return Candidate(
            kind=ActionKind.SCALE, cost=cost, feasible=True, why=f"scale {size} -> {wanted}", params={"step": step}
        )

    def _rollback(self, model: ModelRecord, incident: Incident, cost: float) -> Candidate:
        if incident.kind is SymptomKind.BAD_PROMOTION:
            return self._undo(model, incident, cost)
        target = next(self.registry.rollback_targets(model.name), None)
        if target is None:
            return Candidate(kind=ActionKind.ROLLBACK, cost=cost, feasible=False, why="no stable version verifies")
        if incident.kind is SymptomKind.PERFORMANCE_DROP:
            champion = self.registry.champion(model.name)
            # Rolling back only helps if the drop came with the current champion: it was sick from its first
            # labelled reading on. A stable champion, or one that served healthy before the drop, is not at
            # fault, and while the inputs drift an older model fits them no better: rolling back would only
            # bring back an older model for the same data.
            if champion is not None and not self._came_with(champion, incident):
                return Candidate(
                    kind=ActionKind.ROLLBACK,
                    cost=cost,
                    feasible=False,
                    why=f"the drop did not come with champion v{champion.number}",
                )
            if any(i.kind is SymptomKind.DATA_DRIFT for i in self.store.active_incidents(model.name)):
                return Candidate(kind=ActionKind.ROLLBACK, cost=cost, feasible=False, why="the inputs are drifting")
        return Candidate(kind=ActionKind.ROLLBACK, cost=cost, feasible=True, why=f"stable v{target.number} verifies")

    def _undo(self, model: ModelRecord, incident: Incident, cost: float) -> Candidate:
        """Back to the version the harmful champion replaced, if it still verifies and it still is champion."""
        evidence = self._latest_evidence(incident)
        champion = self.registry.champion(model.name)
        previous = evidence.get("previous")
        if champion is None or champion.number != evidence.get("version") or not isinstance(previous, int):
            return Candidate(kind=ActionKind.ROLLBACK, cost=cost, feasible=False, why="the champion moved since")
        target = self.registry.version(model.name, previous)
        if target.rolled_back_at is not None or not self.registry.verifies(target):
            return Candidate(kind=ActionKind.ROLLBACK, cost=cost, feasible=False, why=f"v{previous} cannot serve")
        symptoms = self.store.symptoms(incident.id)
        return Candidate(
            kind=ActionKind.ROLLBACK,
            cost=cost,
            feasible=True,
            why=f"v{previous} scored better in shadow",
            params={"to": previous, "evidence": symptoms[-1].summary if symptoms else incident.summary},
        )

    def _came_with(self, champion: Version, incident: Incident) -> bool:
        """Whether the incident began after ``champion`` was made (not in the same tick), with its first reading."""
        if champion.stable_at is not None or incident.opened_at <= champion.created_at:
            return False
        latest = self._latest_evidence(incident)
        if latest.get("version") != champion.number:
            return False
        readings = self.store.observations(
            champion.model, metric=Metric.PERFORMANCE, since=champion.created_at, limit=10_000
        )
        first = next((o for o in readings if o.evidence.get("version") == champion.number), None)
        return first is not None and latest.get("first_seen_at") == first.at.isoformat()

    def _rebuild(self, model: str, cost: float) -> Candidate:
        """An emergency retrain: the newest labelled rows, at least the rows the champion served, at once."""
        served = self._served_since(model)
        batches = self.store.batches(model, labelled=True, limit=100_000)
        minimum = self.settings.min_retrain_rows
        since = min(served, self._newest(batches, datetime(1970, 1, 1, tzinfo=UTC), minimum))
        rows = sum(b.rows for b in batches if b.received_at >= since)
        if rows < minimum:
            why = f"{rows} of {minimum} labelled rows stored"
            return Candidate(kind=ActionKind.RETRAIN, cost=cost, feasible=False, waiting=True, why=why)
        return Candidate(
            kind=ActionKind.RETRAIN,
            cost=cost,
            feasible=True,
            why=f"rebuild from {rows} labelled rows",
            params={"since": since.isoformat(), "emergency": True},
        )

    def _retrain(self, model: str, cost: float, earlier: list[Action], learn_from: datetime) -> Candidate:
        """A retrain on labelled rows since ``learn_from`` (or the part of them the rules below pick), or why not."""
        since = learn_from
        promoted = [a for a in earlier if a.state is ActionState.SUCCEEDED]
        if promoted:
            # The symptom outlived a promoted retrain: the data moved on since, so learn only what came after.
            since = max(since, promoted[-1].planned_at + timedelta(microseconds=1))
        minimum = self.settings.min_retrain_rows
        # Another attempt only with data the last ones did not have, twice as much after each attempt (up to four
        # times): a concept moving faster than fits can follow is better met by a fit that sees more of it than
        # by a storm of fits on slivers. A lost challenger counts as an attempt here and nowhere else.
        needed = minimum * 2 ** min(len(earlier), 2)

        def wait(why: str) -> Candidate:
            return Candidate(
                kind=ActionKind.RETRAIN,
                cost=cost,
                feasible=False,
                waiting=True,
                why=why,
                params={"since": since.isoformat()},
            )

        last = earlier[-1].planned_at + timedelta(microseconds=1) if earlier else since
        batches = self.store.batches(model, since=min(since, last), labelled=True, limit=100_000)

        def rows_since(at: datetime) -> int:
            return sum(b.rows for b in batches if b.received_at >= at)

        if earlier:
            fresh = rows_since(last)
            if fresh < needed:
                return wait(f"labelled rows since retrain #{earlier[-1].id}: {fresh} of {needed}")
        rows = rows_since(since)
        if rows < minimum:
            return wait(f"labelled rows: {rows} of {minimum} since {since:%Y-%m-%d %H:%M}")
        # Learn the concept now being served. If the champion's loss changed again after the symptom began (a
        # gradual drift under way), the rows before that change are a passing mixture: learn only the current
        # regime. (Not the other way: a regime reaching back before the first sick reading may hold old-concept
        # rows that the test had too little power to split off; the retrain actuator weighs the longer window
        # of the champion's own data on held-out rows instead.) While the loss is still moving the planner waits
        # for it to settle, but only so long: past HOLD_FACTOR times the rows it needed, it learns the newest.
        patient = rows < HOLD_FACTOR * needed
        current = self._regime(model)
        if current is not None:
            start, climbing = current
            if start > since:
                settled = rows_since(start)
                if settled >= minimum:
                    since = start
                elif patient:
                    return wait(f"the loss changed again at {start:%Y-%m-%d %H:%M}; {settled} of {minimum} rows since")
                else:
                    since = self._newest(batches, since, minimum)
            if climbing and patient:
                return wait("the loss is still climbing")
        return Candidate(
            kind=ActionKind.RETRAIN,
            cost=cost,
            feasible=True,
            why=f"{rows_since(since)} labelled rows",
            params={"since": since.isoformat()},
        )

    @staticmethod
    def _newest(batches: list[Batch], since: datetime, minimum: int) -> datetime:
        """Where the newest labelled batches that hold at least ``minimum`` rows begin (not before ``since``)."""
        total = 0
        for batch in reversed([b for b in batches if b.received_at >= since]):
            total += batch.rows
            if total >= minimum:
                return batch.received_at
        return since

    def _regime(self, model: str) -> tuple[datetime, bool] | None:
        """When the champion's current loss regime began and whether its loss is still climbing in it.

        None without two labelled readings of the champion (see ``daemon.regime``).
        """
        champion = self.registry.champion(model)
        if champion is None:
            return None
        readings, times = [], []
        for o in self.store.observations(model, metric=Metric.PERFORMANCE, since=champion.created_at, limit=10_000):
            reading = regime.reading(o.value, o.evidence)
            if o.evidence.get("version") == champion.number and reading is not None:
                readings.append(reading)
                times.append(o.at)
        if len(readings) < 2:
            return None
        start = regime.regime_start(readings)
        return times[start], regime.rising(readings[start:])

    def _defers(self, model: ModelRecord, incident: Incident, rule: Rule, began: datetime) -> str | None:
        """Why an incident waits for another one or for the labels, or None when it is to be acted on.

        Labels are the better evidence: inputs that moved without hurting the measured metric need no new model
        (and no person), and once the metric drops its incident carries the remedy (a retrain: no rollback while
        the inputs drift), so the two never fight or page twice for one cause.
        """
        if rule.defers_to is None:
            return None
        carrier = next((i for i in self.store.active_incidents(model.name) if i.kind is rule.defers_to), None)
        if carrier is not None:
            return f"{carrier.kind.value} incident #{carrier.id} carries the remedy"
        if self._labels_hold(model.name, began):
            return "labelled performance holds since the inputs drifted"
        return None

    def _retrains(self, model: str, began: datetime, history: list[Action]) -> list[Action]:
        """Retrains that answered this symptom: the incident's own, and any on the model since it began.

        A drift and the performance drop it causes are two incidents of one cause; a retrain for either is an
        attempt at both, so the wait for fresh rows after it applies to both.
        """
        found = {a.id: a for a in self.store.actions(model=model, kind=ActionKind.RETRAIN, since=began, limit=100)}
        found |= {a.id: a for a in history if a.kind is ActionKind.RETRAIN}
        return sorted(
            (a for a in found.values() if a.state is not ActionState.ABORTED), key=lambda a: (a.planned_at, a.id)
        )

    def _labels_hold(self, model: str, began: datetime) -> bool:
        """Whether the champion's labelled readings since ``began`` cover a retrain's worth of rows."""
        champion = self.registry.champion(model)
        if champion is None:
            return False
        measured = self.store.observations(model, metric=Metric.PERFORMANCE, since=began, limit=10_000)
        rows = sum(int(o.evidence.get("rows", 0)) for o in measured if o.evidence.get("version") == champion.number)
        return rows >= self.settings.min_retrain_rows

    def _cost(self, model: str, kind: ActionKind) -> float:
        done = self.store.actions(model=model, kind=kind, states=[ActionState.SUCCEEDED], limit=20)
        durations = [(a.finished_at - a.started_at).total_seconds() for a in done if a.finished_at and a.started_at]
        expected = sum(durations) / len(durations) if durations else PRIOR_SECONDS[kind]
        return expected + RISK_SECONDS[kind]

    def _served_since(self, model: str) -> datetime:
        """When the champion began serving (the start of time without one): its labelled rows are still good."""
        champion = self.registry.champion(model)
        return champion.created_at if champion is not None else datetime(1970, 1, 1, tzinfo=UTC)

    def _latest_evidence(self, incident: Incident) -> dict[str, Any]:
        symptoms = self.store.symptoms(incident.id)
        return dict(symptoms[-1].evidence) if symptoms else {}

    def _since(self, incident: Incident) -> datetime:
        """Where post-alarm data starts: the first reading of the streak that opened the incident."""
        symptoms = self.store.symptoms(incident.id)
        first = symptoms[0].evidence.get("first_seen_at") if symptoms else None
        return datetime.fromisoformat(first) if isinstance(first, str) else incident.opened_at
