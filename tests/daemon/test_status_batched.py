"""The status every surface shows (``/status``, ``healctl status --json``, the overview) is read with one query
per kind for all models; it must give exactly the numbers the former per-model reads gave, on SQLite and
PostgreSQL, including quality verdicts, drift verdicts, aliases and open incident counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from daemon import views
from knowledge.artifacts import ArtifactStore
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, IncidentStatus, Observation, Severity, Symptom, SymptomKind
from tests.knowledge.test_store_batched_reads import MODELS, T0, fill


def per_model_status(store: SqlKnowledgeStore, registry: ModelRegistry) -> dict[str, Any]:
    """The status as it was read before batching: about ten queries per model (the reference to compare to)."""
    models = []
    for model in store.list_models():
        champion = store.alias(model.name, Alias.CHAMPION)
        latest = {
            metric: store.observations(model.name, metric=metric, limit=1)
            for metric in ("performance", "drift_share", "artifact_ok", "accuracy_estimate")
        }
        readings = store.observations(model.name, metric="data_quality", limit=1)
        quarantined = store.observations(model.name, metric="batch_quarantined", limit=1)
        quality = max([*readings, *quarantined], key=lambda o: o.at, default=None)
        models.append(
            {
                "model": model.name,
                "task": model.task.value,
                "paused": model.paused,
                "champion": champion,
                "stable": store.alias(model.name, Alias.STABLE),
                "performance": latest["performance"][0].value if latest["performance"] else None,
                "drifted": (latest["drift_share"][0].evidence.get("drifted", []) if latest["drift_share"] else None),
                "artifact_ok": bool(latest["artifact_ok"][0].value) if latest["artifact_ok"] else None,
                "serving_from_memory": champion is not None and registry.in_memory_only(model.name, champion),
                "accuracy_estimate": latest["accuracy_estimate"][0].value if latest["accuracy_estimate"] else None,
                "drift": views.drift_verdict(latest["drift_share"][0]) if latest["drift_share"] else None,
                "quality": views.quality_verdict(
                    quality if quality is not None and quality.metric == "data_quality" else None,
                    quality if quality is not None and quality.metric == "batch_quarantined" else None,
                ),
                "open_incidents": len(store.active_incidents(model.name)),
            }
        )
    return {"models": models, "open_incidents": len(store.active_incidents())}


def test_batched_status_equals_the_per_model_reads(store: SqlKnowledgeStore, tmp_path: Path) -> None:
    """With readings, ties, aliases, quality verdicts of both kinds and incidents in several states, the batched
    status_view is equal, field by field, to the per-model reads."""
    fill(store)
    later = T0 + timedelta(hours=2)
    store.add_observations(
        [
            Observation(
                at=later,
                model="a",
                source="q",
                metric="data_quality",
                value=1.0,
                evidence={"problems": [{"detail": "x"}]},
            ),
            Observation(
                at=T0, model="a", source="q", metric="batch_quarantined", value=1.0, evidence={"reason": "old"}
            ),
            Observation(
                at=later, model="b", source="q", metric="batch_quarantined", value=1.0, evidence={"reason": "r"}
            ),
            Observation(at=T0, model="b", source="q", metric="data_quality", value=0.0, evidence={"problems": []}),
            Observation(at=later, model="c", source="p", metric="accuracy_estimate", value=0.7, evidence={}),
        ]
    )
    for name, kind in (
        ("a", SymptomKind.DATA_DRIFT),
        ("a", SymptomKind.PERFORMANCE_DROP),
        ("b", SymptomKind.DATA_DRIFT),
    ):
        store.open_incident(
            Symptom(at=T0, model=name, kind=kind, severity=Severity.WARNING, score=0.5, summary="s", evidence={})
        )
    resolved = store.list_incidents(model="b")[0]
    store.update_incident(resolved.id, status=IncidentStatus.RESOLVED, resolved_at=later)
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))

    batched = views.status_view(store, registry)

    assert batched == per_model_status(store, registry)
    by_model = {m["model"]: m for m in batched["models"]}
    assert [m["model"] for m in batched["models"]] == sorted(MODELS)
    assert by_model["a"]["open_incidents"] == 2 and by_model["b"]["open_incidents"] == 0
    assert by_model["a"]["quality"]["verdict"] == "problems" and by_model["b"]["quality"]["verdict"] == "quarantined"
    assert by_model["a"]["champion"] == 2 and by_model["quiet"]["champion"] is None
