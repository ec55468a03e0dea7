"""Plan (the P of MAPE-K): choose a remedy for an incident by rule and cost, or choose to wait.

Rules give each symptom kind a ladder of candidate actions, ending with alerting a person. A candidate is
dropped when this incident already tried it and it failed (or its effect did not show within
``verify_within`` ticks), or when its precondition fails; the cheapest that remains is chosen. Two remedies
may be tried again by the incident they answer, up to ``breaker_failures`` attempts in all: a rerun for a
failed pipeline (a stage that failed may pass the next time; the cooldown spaces the attempts), and a retrain
for a performance drop (what it can do depends on the data, so only once ``min_retrain_rows`` fresh labelled
rows have arrived since the last attempt; after a promoted retrain that did not cure the drop, the next one
learns only from rows since that retrain). Cost is the
mean duration of past successful actions of that kind on the model (a prior until there is history) plus a
risk weight. Cooldowns, a global hourly budget and operator pauses make the planner wait; a circuit breaker
(``breaker_failures`` failures in a row on a model) stops automatic remediation and alerts a person.
Every decision is returned with the candidates weighed, for the knowledge store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, ActionKind, ActionState, Incident, ModelRecord, SymptomKind, Version

# Which incident of a model is planned for first when several are open (a lower number goes first): a
# broken artifact or pipeline before anything else, and a drift before the performance drop it explains,
# so the remedy chosen is the one for the cause.
PRIORITY = {
    SymptomKind.ARTIFACT_CORRUPT: 0,
    SymptomKind.PIPELINE_FAILED: 1,
    SymptomKind.DATA_DRIFT: 2,
    SymptomKind.PERFORMANCE_DROP: 3,
}

# The remedy an incident of this kind may try again after it failed or did not help (see the module doc).
RETRIED = {SymptomKind.PERFORMANCE_DROP: ActionKind.RETRAIN, SymptomKind.PIPELINE_FAILED: ActionKind.RERUN}

LADDERS: dict[SymptomKind, list[ActionKind]] = {
    SymptomKind.DATA_DRIFT: [ActionKind.RETRAIN],
    SymptomKind.PERFORMANCE_DROP: [ActionKind.ROLLBACK, ActionKind.RETRAIN],
    SymptomKind.ARTIFACT_CORRUPT: [ActionKind.ROLLBACK, ActionKind.RETRAIN],
    SymptomKind.PIPELINE_FAILED: [ActionKind.RERUN, ActionKind.RETRAIN],
    SymptomKind.BACKLOG: [ActionKind.SCALE],
    SymptomKind.HOST_PRESSURE: [ActionKind.SCALE],
    SymptomKind.DATA_QUALITY: [],
    SymptomKind.ANOMALY: [],
}

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
    cooldown_seconds: float = 1800
    max_actions_per_hour: int = 6
    breaker_failures: int = 3
    verify_within: int = 4
    tick_seconds: float = 60
    min_retrain_rows: int = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    kind: ActionKind
    cost: float
    feasible: bool
    why: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "cost": round(self.cost, 3), "feasible": self.feasible, "why": self.why}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The planner's answer for one incident: an action to take, or a reason to wait."""

    incident: Incident
    candidates: list[Candidate]
    chosen: Candidate | None
    reason: str
    escalate: bool = False
    unverified: list[int] = field(default_factory=list)


class Planner:
    """Chooses actions for a model's active incidents."""

    def __init__(self, store: SqlKnowledgeStore, registry: ModelRegistry, settings: PlannerSettings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings

    def plan(self, model: ModelRecord, incident: Incident, now: datetime) -> Plan | None:
        """What to do about ``incident`` now; None when an action is under way or being verified."""
        history = self.store.actions(incident_id=incident.id)
        if self._model_busy(model.name, now):
            return None
        unverified = self._unverified(history, now)
        if incident.status.value == "escalated":
            return None  # a person has it now
        # An action aborted by a crash may be tried again; one that failed or did not help may not, except the
        # remedy this kind of incident may retry (RETRIED), a bounded number of times.
        tried = {a.kind for a in history if a.state is ActionState.FAILED or a.id in unverified}
        retried = RETRIED.get(incident.kind)
        attempts = [a for a in history if a.kind is retried and a.state is not ActionState.ABORTED]
        if retried is not None and len(attempts) < self.settings.breaker_failures:
            tried.discard(retried)
        retrains = [a for a in history if a.kind is ActionKind.RETRAIN and a.state is not ActionState.ABORTED]
        candidates = [self._candidate(k, model, incident, retrains) for k in LADDERS[incident.kind] if k not in tried]
        if model.paused:
            return Plan(incident=incident, candidates=candidates, chosen=None, reason="model paused by an operator")
        if self._breaker_open(model.name):
            return self._escalate(incident, candidates, f"{self.settings.breaker_failures} actions failed in a row")
        feasible = sorted((c for c in candidates if c.feasible), key=lambda c: c.cost)
        if not feasible:
            waiting = [c for c in candidates if c.why.startswith("waiting")]
            if waiting:
                return Plan(incident=incident, candidates=candidates, chosen=None, reason=waiting[0].why)
            return self._escalate(incident, candidates, "no automatic remedy left", unverified)
        chosen = feasible[0]
        blocked = self._blocked(model.name, chosen.kind, now)
        if blocked:
            return Plan(incident=incident, candidates=candidates, chosen=None, reason=blocked, unverified=unverified)
        return Plan(
            incident=incident,
            candidates=candidates,
            chosen=chosen,
            reason=f"cheapest feasible remedy for {incident.kind.value}",
            unverified=unverified,
        )

    def _escalate(
        self, incident: Incident, candidates: list[Candidate], why: str, unverified: list[int] | None = None
    ) -> Plan:
        alert = Candidate(
            kind=ActionKind.ALERT, cost=self._cost(incident.model, ActionKind.ALERT), feasible=True, why=why
        )
        return Plan(
            incident=incident,
            candidates=[*candidates, alert],
            chosen=alert,
            reason=why,
            escalate=True,
            unverified=unverified or [],
        )

    def _model_busy(self, model: str, now: datetime) -> bool:
        """One remedy at a time per model: wait while one runs or its effect has not had time to show.

        Symptoms of one cause often come together (a drift and the performance drop it causes); acting on
        each at once would fight (a rollback undoing the retrain that fixed both). Level-triggered, the
        next decision is made on what the world looks like after the first remedy.
        """
        window = timedelta(seconds=self.settings.verify_within * self.settings.tick_seconds)
        for action in self.store.actions(model=model, since=now - window - timedelta(days=1), limit=50):
            if action.kind is ActionKind.ALERT:
                continue
            if action.state in (ActionState.PLANNED, ActionState.RUNNING):
                return True
            settling = action.outcome is None and action.finished_at is not None and now - action.finished_at < window
            if action.state is ActionState.SUCCEEDED and settling:
                return True
        return False

    def _unverified(self, history: list[Action], now: datetime) -> list[int]:
        """Succeeded actions whose effect has not shown within ``verify_within`` ticks."""
        limit = timedelta(seconds=self.settings.verify_within * self.settings.tick_seconds)
        return [
            a.id
            for a in history
            if a.state is ActionState.SUCCEEDED
            and a.outcome in (None, "not_verified")
            and a.finished_at is not None
            and now - a.finished_at >= limit
        ]

    def _candidate(self, kind: ActionKind, model: ModelRecord, incident: Incident, retrains: list[Action]) -> Candidate:
        cost = self._cost(model.name, kind)
        if kind is ActionKind.ROLLBACK:
            return self._rollback(model, incident, cost)
        if kind is ActionKind.RETRAIN:
            return self._retrain(model, incident, cost, retrains)
        if kind is ActionKind.SCALE:
            # A backlog wants more workers; a host under pressure wants fewer concurrent fits.
            step = 1 if incident.kind is SymptomKind.BACKLOG else -1
            return Candidate(kind=kind, cost=cost, feasible=True, why=f"scale by {step:+d}", params={"step": step})
        return Candidate(kind=kind, cost=cost, feasible=True, why="no precondition")

    def _rollback(self, model: ModelRecord, incident: Incident, cost: float) -> Candidate:
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

    def _came_with(self, champion: Version, incident: Incident) -> bool:
        """Whether the incident began after ``champion`` was made (not in the same tick), with its first reading."""
        if champion.stable_at is not None or incident.opened_at <= champion.created_at:
            return False
        symptoms = self.store.symptoms(incident.id)
        latest = symptoms[-1].evidence if symptoms else {}
        if latest.get("version") != champion.number:
            return False
        readings = self.store.observations(
            champion.model, metric="performance", since=champion.created_at, limit=10_000
        )
        first = next((o for o in readings if o.evidence.get("version") == champion.number), None)
        return first is not None and latest.get("first_seen_at") == first.at.isoformat()

    def _retrain(self, model: ModelRecord, incident: Incident, cost: float, earlier: list[Action]) -> Candidate:
        since = self._since(incident)
        promoted = [a for a in earlier if a.state is ActionState.SUCCEEDED]
        if promoted:
            # The symptom outlived a promoted retrain: the data moved on since, so learn only what came after.
            since = max(since, promoted[-1].planned_at + timedelta(microseconds=1))
        params = {"since": since.isoformat()}
        if earlier:
            # Another attempt only with data the last one did not have.
            after = earlier[-1].planned_at + timedelta(microseconds=1)
            fresh = sum(b.rows for b in self.store.batches(model.name, since=after, labelled=True, limit=100_000))
            if fresh < self.settings.min_retrain_rows:
                return Candidate(
                    kind=ActionKind.RETRAIN,
                    cost=cost,
                    feasible=False,
                    why=f"waiting for labelled rows since retrain #{earlier[-1].id}: "
                    f"{fresh} of {self.settings.min_retrain_rows}",
                    params=params,
                )
        rows = sum(b.rows for b in self.store.batches(model.name, since=since, labelled=True, limit=100_000))
        if rows < self.settings.min_retrain_rows:
            return Candidate(
                kind=ActionKind.RETRAIN,
                cost=cost,
                feasible=False,
                why=f"waiting for labelled rows: {rows} of {self.settings.min_retrain_rows} "
                f"since {since:%Y-%m-%d %H:%M}",
                params=params,
            )
        return Candidate(kind=ActionKind.RETRAIN, cost=cost, feasible=True, why=f"{rows} labelled rows", params=params)

    def _cost(self, model: str, kind: ActionKind) -> float:
        done = self.store.actions(model=model, kind=kind, states=[ActionState.SUCCEEDED], limit=20)
        durations = [(a.finished_at - a.started_at).total_seconds() for a in done if a.finished_at and a.started_at]
        expected = sum(durations) / len(durations) if durations else PRIOR_SECONDS[kind]
        return expected + RISK_SECONDS[kind]

    def _blocked(self, model: str, kind: ActionKind, now: datetime) -> str | None:
        cooldown = timedelta(seconds=self.settings.cooldown_seconds)
        recent = self.store.actions(model=model, kind=kind, since=now - cooldown, limit=1)
        if recent and kind is not ActionKind.ALERT:
            return f"waiting: {kind.value} cooling down until {recent[-1].planned_at + cooldown:%Y-%m-%d %H:%M}"
        spent = [a for a in self.store.actions(since=now - timedelta(hours=1)) if a.actor == "heald"]
        if len(spent) >= self.settings.max_actions_per_hour:
            return f"waiting: action budget of {self.settings.max_actions_per_hour} per hour spent"
        return None

    def _breaker_open(self, model: str) -> bool:
        # An operator's `healctl resume` closes the breaker: failures before it no longer count.
        reset = self.store.last_control(model, "resume")
        finished = [
            a
            for a in self.store.actions(model=model, since=reset, limit=50)
            if a.state.finished and a.kind is not ActionKind.ALERT and a.actor == "heald"
        ]
        streak = 0
        for action in reversed(finished):
            if action.state is ActionState.SUCCEEDED:
                break
            streak += 1
        return streak >= self.settings.breaker_failures

    def _since(self, incident: Incident) -> datetime:
        """Where post-alarm data starts: the first reading of the streak that opened the incident."""
        symptoms = self.store.symptoms(incident.id)
        first = symptoms[0].evidence.get("first_seen_at") if symptoms else None
        return datetime.fromisoformat(first) if isinstance(first, str) else incident.opened_at
