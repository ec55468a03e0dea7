"""Plan (the P of MAPE-K): choose a remedy for an incident by rule and cost, or choose to wait.

Rules give each symptom kind a ladder of candidate actions, ending with alerting a person. A candidate is
dropped when this incident already tried it and it failed (or its effect did not show within
``verify_within`` ticks), or when its precondition fails; the cheapest that remains is chosen. Two remedies
may be tried again by the incident they answer, up to ``breaker_failures`` attempts in all: a rerun for a
failed pipeline (a stage that failed may pass the next time; the cooldown spaces the attempts), and a retrain
for a performance drop. Cost is the mean duration of past successful actions of that kind on the model (a
prior until there is history) plus a risk weight. Cooldowns, a global hourly budget and operator pauses make
the planner wait; a circuit breaker (``breaker_failures`` failures in a row on a model) stops automatic
remediation and alerts a person. Every decision is returned with the candidates weighed, for the knowledge
store.

When and on what to retrain is decided from the champion's labelled readings:

- a retrain for a drift or a drop learns the rows since the first sick reading (one for a damaged artifact or
  a failed pipeline, the rows the champion served, at once), or only the champion's current loss regime
  (``daemon.regime``) when that began later; while the loss is still moving (the regime is younger than
  ``min_retrain_rows``, or the loss still climbs in it) the planner waits, up to ``HOLD_FACTOR`` times the
  rows it needed;
- another attempt at the same symptom (by this incident or another on the model since it began) needs
  twice the fresh labelled rows the last one did: no storm of fits on slivers of a moving concept;
- a data drift incident waits while labels show the metric holding, and defers to an open performance
  drop, which carries the remedy; it acts on its own only when labels are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon import regime
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, ActionKind, ActionState, Batch, Incident, ModelRecord, SymptomKind, Version

# Which incident of a model is planned for first when several are open (a lower number goes first): a
# broken artifact or pipeline before anything else, then a drift (which defers to an open performance drop).
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

# A retrain waits while the loss is still moving, but no longer than until the rows since the symptom began
# reach this many times the rows it needs: then it learns from the newest rows it has.
HOLD_FACTOR = 2

# Symptoms that say the concept moved: a retrain for them learns only rows since the symptom began.
CONCEPT_KINDS = frozenset({SymptomKind.DATA_DRIFT, SymptomKind.PERFORMANCE_DROP})

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
        began = self._since(incident)
        retrains = self._retrains(model.name, began, history)
        candidates = [
            self._candidate(k, model, incident, retrains, began) for k in LADDERS[incident.kind] if k not in tried
        ]
        if model.paused:
            return Plan(incident=incident, candidates=candidates, chosen=None, reason="model paused by an operator")
        deferred = self._drift_defers(model, incident, began)
        if deferred:
            return Plan(incident=incident, candidates=candidates, chosen=None, reason=deferred, unverified=unverified)
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

    def _candidate(
        self, kind: ActionKind, model: ModelRecord, incident: Incident, retrains: list[Action], began: datetime
    ) -> Candidate:
        cost = self._cost(model.name, kind)
        if kind is ActionKind.ROLLBACK:
            return self._rollback(model, incident, cost)
        if kind is ActionKind.RETRAIN:
            # A drift or a drop means the concept moved: learn only what came since. A damaged file or a failed
            # pipeline says nothing about the data: the rows the champion served are as good as they were.
            learn_from = began if incident.kind in CONCEPT_KINDS else self._served_since(model.name)
            return self._retrain(model.name, cost, retrains, learn_from)
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

    def _retrain(self, model: str, cost: float, earlier: list[Action], learn_from: datetime) -> Candidate:
        """A retrain on labelled rows since ``learn_from`` (or the part of them the rules below pick), or why not."""
        since = learn_from
        promoted = [a for a in earlier if a.state is ActionState.SUCCEEDED]
        if promoted:
            # The symptom outlived a promoted retrain: the data moved on since, so learn only what came after.
            since = max(since, promoted[-1].planned_at + timedelta(microseconds=1))
        minimum = self.settings.min_retrain_rows
        # Another attempt only with data the last ones did not have, twice as much after each attempt: a concept
        # moving faster than fits can follow is better met by a fit that sees more of it than by a storm of fits
        # on slivers.
        needed = minimum * 2 ** len(earlier)

        def wait(why: str) -> Candidate:
            return Candidate(
                kind=ActionKind.RETRAIN, cost=cost, feasible=False, why=why, params={"since": since.isoformat()}
            )

        last = earlier[-1].planned_at + timedelta(microseconds=1) if earlier else since
        batches = self.store.batches(model, since=min(since, last), labelled=True, limit=100_000)

        def rows_since(at: datetime) -> int:
            return sum(b.rows for b in batches if b.received_at >= at)

        if earlier:
            fresh = rows_since(last)
            if fresh < needed:
                return wait(f"waiting for labelled rows since retrain #{earlier[-1].id}: {fresh} of {needed}")
        rows = rows_since(since)
        if rows < minimum:
            return wait(f"waiting for labelled rows: {rows} of {minimum} since {since:%Y-%m-%d %H:%M}")
        # Learn the concept now being served. If the champion's loss changed again after the symptom began (a
        # gradual drift under way), the rows before that change are a passing mixture: learn only the current
        # regime. (Not the other way: a regime reaching back before the first sick reading may hold old-concept
        # rows that the test had too little power to split off; the retrain actuator weighs the longer window
        # of the champion's own data on held-out rows instead.) While the loss is still moving the planner waits
        # for it to settle, but only so long: past HOLD_FACTOR times the rows it needed, it learns the newest.
        patient = rows < HOLD_FACTOR * needed
        regime = self._regime(model)
        if regime is not None:
            start, climbing = regime
            if start > since:
                settled = rows_since(start)
                if settled >= minimum:
                    since = start
                elif patient:
                    return wait(
                        f"waiting: the loss changed again at {start:%Y-%m-%d %H:%M}; {settled} of {minimum} rows since"
                    )
                else:
                    since = self._newest(batches, since, minimum)
            if climbing and patient:
                return wait("waiting: the loss is still climbing")
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
        for o in self.store.observations(model, metric="performance", since=champion.created_at, limit=10_000):
            reading = regime.reading(o.value, o.evidence)
            if o.evidence.get("version") == champion.number and reading is not None:
                readings.append(reading)
                times.append(o.at)
        if len(readings) < 2:
            return None
        start = regime.regime_start(readings)
        return times[start], regime.rising(readings[start:])

    def _drift_defers(self, model: ModelRecord, incident: Incident, began: datetime) -> str | None:
        """Why a data drift incident waits for the labels, or None when it is to be acted on.

        Labels are the better evidence: inputs that moved without hurting the measured metric need no new model
        (and no person), and once the metric drops its incident carries the remedy (a retrain: no rollback while
        the inputs drift), so the two never fight or page twice for one cause.
        """
        if incident.kind is not SymptomKind.DATA_DRIFT:
            return None
        dropped = self._open(model.name, SymptomKind.PERFORMANCE_DROP)
        if dropped is not None:
            return f"waiting: performance incident #{dropped.id} carries the remedy"
        if self._labels_hold(model.name, began):
            return "waiting: labelled performance holds since the inputs drifted"
        return None

    def _open(self, model: str, kind: SymptomKind) -> Incident | None:
        return next((i for i in self.store.active_incidents(model) if i.kind is kind), None)

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
        measured = self.store.observations(model, metric="performance", since=began, limit=10_000)
        rows = sum(int(o.evidence.get("rows", 0)) for o in measured if o.evidence.get("version") == champion.number)
        return rows >= self.settings.min_retrain_rows

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

    def _served_since(self, model: str) -> datetime:
        """When the champion began serving (the start of time without one): its labelled rows are still good."""
        champion = self.registry.champion(model)
        return champion.created_at if champion is not None else datetime(1970, 1, 1, tzinfo=UTC)

    def _since(self, incident: Incident) -> datetime:
        """Where post-alarm data starts: the first reading of the streak that opened the incident."""
        symptoms = self.store.symptoms(incident.id)
        first = symptoms[0].evidence.get("first_seen_at") if symptoms else None
        return datetime.fromisoformat(first) if isinstance(first, str) else incident.opened_at
