"""Incidents: symptoms of one kind on one model grouped over time, opened and resolved level-triggered.

A symptom opens an incident (unless an operator silenced it) or refreshes the open one. Fresh evidence of
health counts towards resolution; after ``resolve_after`` healthy readings in a row (hysteresis), with no
action still running, the incident resolves and the action that preceded it is marked verified.

A kind whose rule has host scope (``daemon.rules``) is kept under the host's name, not the model's: a busy
machine is one incident however many models saw it, and it counts one reading per tick: the first model of
the tick to report on a host kind speaks for the host, so a healthy host resolves after ``resolve_after``
ticks whatever the number of models (not ``resolve_after`` / N). For the same reason only the daemon that
acts counts healthy readings when two share a store; both may open an incident, and the store keeps one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from daemon.analyzer import Verdicts
from daemon.logs import get
from daemon.rules import HOST, owner
from knowledge.sql.store import ACTIVE_ACTION, SqlKnowledgeStore
from knowledge.values import (
    ActionKind,
    ActionOutcome,
    ActionState,
    Incident,
    IncidentStatus,
    ModelRecord,
    SymptomKind,
)

log = get("heald.incidents")


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    opened: list[Incident]
    resolved: list[Incident]


class IncidentTracker:
    """Applies a tick's verdicts to the incidents of one model."""

    def __init__(self, store: SqlKnowledgeStore, resolve_after: int) -> None:
        self.store = store
        self.resolve_after = resolve_after
        self._host_read: dict[SymptomKind, datetime] = {}  # the tick each host kind was last applied

    def apply(self, model: ModelRecord, verdicts: Verdicts, now: datetime, *, counting: bool = True) -> Changes:
        """Open or refresh incidents from this tick's symptoms; count healthy readings towards resolution only when
        ``counting`` (the daemon that acts): a follower's readings would count the same tick twice."""
        active = {(i.model, i.kind): i for i in self.store.active_incidents(model.name)}
        # The host's incidents are read only by the first model to report a host kind this tick: the others'
        # host verdicts are skipped below, so reading them again per model would be a query wasted per model.
        if any(owner(kind, model.name) == HOST and self._host_read.get(kind) != now for kind in verdicts):
            active |= {(i.model, i.kind): i for i in self.store.active_incidents(HOST)}
        opened: list[Incident] = []
        resolved: list[Incident] = []
        for kind, seen in verdicts.items():
            name = owner(kind, model.name)
            if name == HOST:
                if self._host_read.get(kind) == now:
                    continue  # another model already reported the host this tick
                self._host_read[kind] = now
            incident = active.get((name, kind))
            symptom = replace(seen, model=name) if seen is not None and name != seen.model else seen
            if symptom is not None:
                if incident is not None:
                    self.store.add_symptom(symptom, incident.id)
                    self.store.update_incident(incident.id, last_seen_at=now, updated_at=now, clear_ticks=0)
                elif self.store.silenced(name, kind, now):
                    self.store.add_symptom(symptom, None)
                    log.info("symptom_silenced", model=name, kind=kind.value, summary=symptom.summary)
                else:
                    incident = self.store.open_incident(symptom)
                    active[(name, kind)] = incident
                    opened.append(incident)
                    log.warning(
                        "incident_opened",
                        model=name,
                        incident_id=incident.id,
                        kind=kind.value,
                        severity=symptom.severity.value,
                        summary=symptom.summary,
                    )
            elif incident is not None and counting:
                done = self._count_healthy(incident, now)
                if done is not None:
                    resolved.append(done)
        return Changes(opened=opened, resolved=resolved)

    def _count_healthy(self, incident: Incident, now: datetime) -> Incident | None:
        clear = incident.clear_ticks + 1
        running = self.store.actions(incident_id=incident.id, states=ACTIVE_ACTION)
        if clear < self.resolve_after or running:
            self.store.update_incident(incident.id, clear_ticks=clear, updated_at=now)
            return None
        done = self.store.update_incident(
            incident.id, clear_ticks=clear, updated_at=now, status=IncidentStatus.RESOLVED, resolved_at=now
        )
        last = self._last_succeeded(incident)
        if last is not None:
            self.store.set_outcome(
                last, ActionOutcome.VERIFIED, at=now, detail=f"{incident.kind} cleared for {clear} readings"
            )
        log.info(
            "incident_resolved",
            model=incident.model,
            incident_id=incident.id,
            kind=incident.kind.value,
            action_id=last,
            minutes_open=round((now - incident.opened_at).total_seconds() / 60, 1),
        )
        return done

    def _last_succeeded(self, incident: Incident) -> int | None:
        """The action that healed it: its own last success, else the model's last remedy since it opened."""
        own = self.store.actions(incident_id=incident.id, states=[ActionState.SUCCEEDED])
        if own:
            return own[-1].id
        remedies = [
            a
            for a in self.store.actions(model=incident.model, since=incident.opened_at, states=[ActionState.SUCCEEDED])
            if a.kind is not ActionKind.ALERT
        ]
        return remedies[-1].id if remedies else None
