"""The guards of the Plan step: named checks that make the planner wait, escalate or stand aside.

``Planner.plan`` runs them in the order of ``ORDER`` (before the rule's ladder is weighed) and then
``AFTER`` (on the remedy the rule chose); the first that speaks decides, and its name is stored with the
decision (``Decision.decided_by``), so the trail of ``healctl incidents N`` says which one held a remedy back.

Evidence is counted in labelled batches that arrived, not in wall time: the same settings hold for a 60 s tick
and an hourly one. Wall time is only a safety net, so a stream that stops cannot hold a model forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, ActionKind, ActionOutcome, ActionState


class Guard(StrEnum):
    """Who decided: a guard's name, or ``RULE`` when the rule's ladder chose the remedy."""

    BUSY = "busy"  # a remedy runs or its effect has not had the evidence to show (no decision recorded)
    ESCALATED = "escalated"  # a person has it (no decision recorded)
    PAUSED = "paused"  # an operator paused the model
    DEFERRED = "deferred"  # another incident carries the remedy, or labels show no harm
    BREAKER = "breaker"  # remedies failed in a row: a person decides
    EVIDENCE = "evidence"  # a remedy waits for more labelled rows
    OBSERVE = "observe"  # the cause is not ours to change: watch and show it
    NO_REMEDY = "no_remedy"  # the ladder is spent: a person decides
    COOLDOWN = "cooldown"  # the same kind of remedy ran too recently (in labelled batches)
    BUDGET = "budget"  # the global hourly budget of automatic actions is spent
    RULE = "rule"  # the rule's cheapest feasible remedy


ORDER = (Guard.BUSY, Guard.ESCALATED, Guard.PAUSED, Guard.DEFERRED, Guard.BREAKER)
LADDER = (Guard.EVIDENCE, Guard.OBSERVE, Guard.NO_REMEDY)
AFTER = (Guard.COOLDOWN, Guard.BUDGET)

# How many times the evidence window may last in ticks before wall time ends it anyway (the safety net).
WALL_CAP = 3


def lost_challenger(action: Action) -> bool:
    """A retrain whose challenger was judged and not promoted: the remedy worked as designed, nothing broke."""
    return (
        action.kind is ActionKind.RETRAIN
        and action.state is ActionState.FAILED
        and action.result.get("promoted") is False
        and action.result.get("champion") is not None
    )


def failed(action: Action) -> bool:
    """A remedy that failed: not a crash abort, not a lost challenger, not a skipped or infeasible one."""
    return action.state is ActionState.FAILED and not lost_challenger(action) and not action.result.get("skipped")


class Evidence:
    """Counts the labelled batches that arrived since a moment, for windows measured in evidence."""

    def __init__(self, store: SqlKnowledgeStore, tick_seconds: float) -> None:
        self.store = store
        self.tick_seconds = tick_seconds

    def batches_since(self, model: str, at: datetime) -> int:
        """Labelled batches received after ``at`` (those of the same tick came before an action of that tick)."""
        return len(self.store.batches(model, since=at + timedelta(microseconds=1), labelled=True, limit=10_000))

    def window_over(self, model: str, at: datetime, batches: int, now: datetime) -> bool:
        """Whether ``batches`` labelled batches arrived since ``at``, or the wall-time safety net ran out."""
        if now - at >= timedelta(seconds=batches * self.tick_seconds * WALL_CAP):
            return True
        return self.batches_since(model, at) >= batches


def busy(
    store: SqlKnowledgeStore,
    evidence: Evidence,
    model: str,
    verify_within: int,
    now: datetime,
    *,
    only: int | None = None,
) -> bool:
    """One remedy at a time per model: wait while one runs or its effect has not had the evidence to show.

    An urgent rule waits only for the effect of its own incident's remedy (``only``): undoing a harm or an
    emergency does not wait for another incident's remedy to settle.

    Symptoms of one cause often come together (a drift and the performance drop it causes); acting on each
    at once would fight (a rollback undoing the retrain that fixed both). Level-triggered, the next decision
    is made on what the world looks like after the first remedy.
    """
    cap = timedelta(seconds=verify_within * evidence.tick_seconds * WALL_CAP)
    for action in store.actions(model=model, since=now - cap - timedelta(days=1), limit=50):
        if action.kind is ActionKind.ALERT:
            continue
        if action.state in (ActionState.PLANNED, ActionState.RUNNING):
            return True
        waiting = (
            (only is None or action.incident_id == only)
            and action.state is ActionState.SUCCEEDED
            and action.outcome is None
            and action.finished_at is not None
            and not evidence.window_over(model, action.finished_at, verify_within, now)
        )
        if waiting:
            return True
    return False


def unverified(evidence: Evidence, history: list[Action], verify_within: int, now: datetime) -> list[int]:
    """Succeeded actions whose effect has not shown within ``verify_within`` labelled batches."""
    return [
        a.id
        for a in history
        if a.state is ActionState.SUCCEEDED
        and a.outcome in (None, ActionOutcome.NOT_VERIFIED)
        and a.finished_at is not None
        and evidence.window_over(a.model, a.finished_at, verify_within, now)
    ]


def breaker_open(store: SqlKnowledgeStore, model: str, failures: int) -> bool:
    """``failures`` remedies failed in a row on the model since an operator's last ``resume``."""
    reset = store.last_control(model, "resume")
    streak = 0
    for action in reversed(store.actions(model=model, since=reset, limit=50)):
        if action.kind is ActionKind.ALERT or action.actor != "heald" or not action.state.finished:
            continue
        if action.state is ActionState.SUCCEEDED:
            break
        streak += failed(action)
    return streak >= failures


def cooldown(
    store: SqlKnowledgeStore, evidence: Evidence, model: str, kind: ActionKind, batches: int, cap: float, now: datetime
) -> str | None:
    """Why ``kind`` waits: one ran on the model fewer than ``batches`` labelled batches ago (and < ``cap`` s)."""
    if kind is ActionKind.ALERT or batches <= 0:
        return None
    recent = store.actions(model=model, kind=kind, since=now - timedelta(seconds=cap), limit=1)
    if not recent:
        return None
    last = recent[-1]
    seen = evidence.batches_since(model, last.planned_at)
    if seen >= batches:
        return None
    return f"{kind.value} #{last.id} ran {seen} of {batches} labelled batches ago"


def budget(store: SqlKnowledgeStore, limit: int, now: datetime) -> str | None:
    spent = [a for a in store.actions(since=now - timedelta(hours=1)) if a.actor == "heald"]
    return f"action budget of {limit} per hour spent" if len(spent) >= limit else None
