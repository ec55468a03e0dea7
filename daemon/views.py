"""Read models for people and scripts: incidents, models and status as plain JSON-ready data.

The CLI's ``--json``, the HTTP API and the demo all print these shapes, so a script written against one
works against the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Action, Alias, Incident, ModelRecord, Observation, PipelineRun, Version

if TYPE_CHECKING:  # annotations only: healctl's read-only commands print these views without numpy or scipy
    from pipeline.drift import DriftReport
    from pipeline.quality import QualityReport


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
        by = f" (by {d.decided_by})" if d.decided_by else ""
        events.append({"at": d.at, "what": f"decision: {chosen}{by}", "detail": d.reason})
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


LATEST = ("performance", "drift_share", "artifact_ok", "accuracy_estimate", "data_quality", "batch_quarantined")


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What the status and the overview show of every model, read with one query per kind for all models
    (never a query per model: the overview must stay fast with many models and months of history)."""

    models: list[ModelRecord]
    aliases: dict[str, dict[Alias, int]]
    latest: dict[tuple[str, str], Observation]  # newest reading of each LATEST metric, by (model, metric)
    active: dict[str, list[Incident]]  # open, mitigating or escalated incidents by model
    last_actions: dict[str, Action]

    def reading(self, model: str, metric: str) -> Observation | None:
        return self.latest.get((model, metric))


def snapshot(store: SqlKnowledgeStore) -> Snapshot:
    active: dict[str, list[Incident]] = {}
    for incident in store.active_incidents():
        active.setdefault(incident.model, []).append(incident)
    return Snapshot(
        models=store.list_models(),
        aliases=store.all_aliases(),
        latest=store.latest_observations(LATEST),
        active=active,
        last_actions=store.last_actions(),
    )


def status_view(store: SqlKnowledgeStore, registry: ModelRegistry, snap: Snapshot | None = None) -> dict[str, Any]:
    """Every model's champion, latest readings and verdicts, and the open incidents (``healctl status --json``)."""
    snap = snap if snap is not None else snapshot(store)
    models = []
    for model in snap.models:
        # The alias alone: loading the champion's version would parse its whole reference profile per model.
        aliases = snap.aliases.get(model.name, {})
        champion = aliases.get(Alias.CHAMPION)
        performance = snap.reading(model.name, "performance")
        drift = snap.reading(model.name, "drift_share")
        artifact = snap.reading(model.name, "artifact_ok")
        estimate = snap.reading(model.name, "accuracy_estimate")
        models.append(
            {
                "model": model.name,
                "task": model.task.value,
                "paused": model.paused,
                "champion": champion,
                "stable": aliases.get(Alias.STABLE),
                "performance": performance.value if performance else None,
                "drifted": drift.evidence.get("drifted", []) if drift else None,
                "artifact_ok": bool(artifact.value) if artifact else None,
                "serving_from_memory": champion is not None and registry.in_memory_only(model.name, champion),
                "accuracy_estimate": estimate.value if estimate else None,
                "drift": drift_verdict(drift) if drift else None,
                "quality": quality_verdict(
                    snap.reading(model.name, "data_quality"), snap.reading(model.name, "batch_quarantined")
                ),
                "open_incidents": len(snap.active.get(model.name, [])),
            }
        )
    return {"models": models, "open_incidents": sum(len(v) for v in snap.active.values())}


def drift_verdict(obs: Observation) -> dict[str, Any]:
    """The latest drift reading of a model as a verdict: what drifted, and when it was read."""
    e = obs.evidence
    drifted = list(e.get("drifted", []))
    if e.get("prediction_drifted"):
        drifted.append("(predictions)")
    if e.get("label_drifted"):
        drifted.append("(labels)")
    return {
        "verdict": "drift" if drifted else "no drift",
        "drifted": drifted,
        "share": obs.value,
        "version": e.get("version"),
        "rows": e.get("rows"),
        "at": iso(obs.at),
    }


def quality_verdict(reading: Observation | None, quarantined: Observation | None) -> dict[str, Any] | None:
    """The latest batch's quality: its problems, or the reason it was quarantined (the newer of the two)."""
    latest = max([o for o in (reading, quarantined) if o is not None], key=lambda o: o.at, default=None)
    if latest is None:
        return None
    if latest.metric == "batch_quarantined":
        return {"verdict": "quarantined", "problems": [str(latest.evidence.get("reason", ""))], "at": iso(latest.at)}
    problems = [str(p.get("detail", "")) for p in latest.evidence.get("problems", [])]
    return {"verdict": "problems" if problems else "ok", "problems": problems, "at": iso(latest.at)}


def drift_view(drift: DriftReport, quality: QualityReport) -> dict[str, Any]:
    """A drift report of two tables, as ``healctl drift`` prints it."""
    return {
        "rows": drift.rows,
        "alpha": drift.settings.alpha,
        "correction": drift.correction,
        "min_effect_ks": drift.settings.min_effect,
        "min_effect_psi": drift.settings.min_psi,
        "min_rows": drift.settings.min_rows,
        "drifted": drift.drifted(None),
        "drift_share": drift.share(),
        "columns": [{"column": c.column, **c.evidence()} for c in drift.columns],
        "quality": [p.evidence() for p in quality.problems],
    }
