"""Read models for people and scripts: incidents, models and status as plain JSON-ready data.

The CLI's ``--json``, the HTTP API and the demo all print these shapes, so a script written against one
works against the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, Alias, Incident, PipelineRun, Version


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def action_view(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "kind": action.kind.value,
        "state": action.state.value,
        "actor": action.actor,
        "reason": action.reason,
        "planned_at": iso(action.planned_at),
        "started_at": iso(action.started_at),
        "finished_at": iso(action.finished_at),
        "outcome": action.outcome,
        "error": action.error,
        "result": action.result,
    }


def incident_view(store: SqlKnowledgeStore, incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "model": incident.model,
        "kind": incident.kind.value,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "summary": incident.summary,
        "opened_at": iso(incident.opened_at),
        "updated_at": iso(incident.updated_at),
        "resolved_at": iso(incident.resolved_at),
        "acked_by": incident.acked_by,
        "actions": [action_view(a) for a in store.actions(incident_id=incident.id)],
    }


def incidents_view(store: SqlKnowledgeStore, **filters: Any) -> list[dict[str, Any]]:
    return [incident_view(store, i) for i in store.list_incidents(**filters)]


def timeline(store: SqlKnowledgeStore, incident_id: int) -> list[dict[str, Any]]:
    """Everything that happened to one incident, in time order: symptoms, decisions, action states."""
    events: list[dict[str, Any]] = []
    for s in store.symptoms(incident_id):
        events.append({"at": s.at, "what": "symptom", "detail": s.summary})
    for d in store.decisions(incident_id=incident_id):
        chosen = d.chosen or "wait"
        events.append({"at": d.at, "what": f"decision: {chosen}", "detail": d.reason})
    for a in store.actions(incident_id=incident_id):
        for e in store.action_events(a.id):
            events.append(
                {"at": e["at"], "what": f"action #{a.id} {a.kind.value}: {e['state']}", "detail": e["detail"]}
            )
    incident = store.get_incident(incident_id)
    if incident.resolved_at:
        events.append({"at": incident.resolved_at, "what": "resolved", "detail": ""})
    events.sort(key=lambda e: e["at"])
    return [{**e, "at": iso(e["at"])} for e in events]


def version_view(version: Version, aliases: dict[Alias, int]) -> dict[str, Any]:
    return {
        "model": version.model,
        "version": version.number,
        "aliases": sorted(a.value for a, n in aliases.items() if n == version.number),
        "health": version.health,
        "metrics": version.metrics,
        "sha256": version.sha256,
        "created_at": iso(version.created_at),
        "created_by": version.created_by,
        "stable_at": iso(version.stable_at),
        "rolled_back_at": iso(version.rolled_back_at),
        "health_reasons": version.profile.get("evaluation", {}).get("health_reasons", []),
        "confusion_matrix": version.profile.get("evaluation", {}).get("confusion_matrix"),
        "labels": version.profile.get("evaluation", {}).get("labels"),
        "importances": version.profile.get("evaluation", {}).get("importances", {}),
        "pipeline_run": version.profile.get("pipeline_run"),
    }


def pipeline_run_view(run: PipelineRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "model": run.model,
        "status": run.status,
        "trigger": run.trigger,
        "actor": run.actor,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "resumed_from": run.resumed_from,
        "failed_stage": run.failed_stage,
        "error": run.error,
        "version": run.version,
        "folder": run.folder,
        "stages": [
            {
                "stage": s.stage,
                "status": s.status,
                "seconds": round(s.seconds, 3),
                "attempts": s.attempts,
                "input_fingerprint": s.input_fingerprint,
                "output_fingerprint": s.output_fingerprint,
                "error": s.error,
                "summary": s.summary,
            }
            for s in run.stages
        ],
    }


def status_view(store: SqlKnowledgeStore, registry: ModelRegistry) -> dict[str, Any]:
    models = []
    for model in store.list_models():
        champion = registry.champion(model.name)
        latest = {
            metric: store.observations(model.name, metric=metric, limit=1)
            for metric in ("performance", "drift_share", "artifact_ok")
        }
        models.append(
            {
                "model": model.name,
                "task": model.task.value,
                "paused": model.paused,
                "champion": champion.number if champion else None,
                "stable": store.alias(model.name, Alias.STABLE),
                "performance": latest["performance"][0].value if latest["performance"] else None,
                "drifted": (latest["drift_share"][0].evidence.get("drifted", []) if latest["drift_share"] else None),
                "artifact_ok": bool(latest["artifact_ok"][0].value) if latest["artifact_ok"] else None,
                "open_incidents": len(store.active_incidents(model.name)),
            }
        )
    return {"models": models, "open_incidents": len(store.active_incidents())}
