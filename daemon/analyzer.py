"""Analyze (the A of MAPE-K): turn a tick's observations into symptoms, or into evidence of health.

``analyze`` returns a verdict per symptom kind it has fresh evidence about: a ``Symptom`` when something
is wrong, ``None`` when the evidence says healthy; kinds without fresh evidence are left out, so a quiet
tick neither opens nor resolves anything. Drift and performance symptoms need persistence (seen in N of
the last T readings of the current champion) before they are raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Observation, Severity, Symptom, SymptomKind, Task

Verdicts = dict[SymptomKind, Symptom | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyzerSettings:
    persistence: int = 2
    window: int = 3
    min_accuracy: float = 0.8
    min_r2: float = 0.5


class Analyzer:
    """Threshold rules with persistence over the observations kept in the store."""

    def __init__(self, store: SqlKnowledgeStore, settings_for: Callable[[str], AnalyzerSettings]) -> None:
        self.store = store
        self.settings_for = settings_for

    def analyze(self, model: ModelRecord, fresh: list[Observation], now: datetime) -> Verdicts:
        settings = self.settings_for(model.name)
        verdicts: Verdicts = {}
        latest = {o.metric: o for o in fresh}
        if "artifact_ok" in latest:
            verdicts[SymptomKind.ARTIFACT_CORRUPT] = self._artifact(latest["artifact_ok"])
        quality = [o for o in fresh if o.metric in {"batch_quarantined", "batch_rows"}]
        if quality:
            verdicts[SymptomKind.DATA_QUALITY] = self._quality(model, quality, now)
        if "pipeline_failed" in latest:
            verdicts[SymptomKind.PIPELINE_FAILED] = self._pipeline(latest["pipeline_failed"])
        if "drift_share" in latest:
            self._persistent(verdicts, SymptomKind.DATA_DRIFT, latest["drift_share"], settings, _drifted)
        if "performance" in latest:
            floor = settings.min_accuracy if model.task is Task.CLASSIFICATION else settings.min_r2
            self._persistent(
                verdicts, SymptomKind.PERFORMANCE_DROP, latest["performance"], settings, lambda o: o.value < floor
            )
        return verdicts

    @staticmethod
    def _artifact(obs: Observation) -> Symptom | None:
        if obs.value >= 1.0:
            return None
        return Symptom(
            at=obs.at,
            model=obs.model,
            kind=SymptomKind.ARTIFACT_CORRUPT,
            severity=Severity.CRITICAL,
            score=1.0,
            summary=str(obs.evidence.get("reason", "champion artifact does not verify")),
            evidence=dict(obs.evidence),
        )

    @staticmethod
    def _pipeline(obs: Observation) -> Symptom | None:
        if obs.value < 1.0:
            return None
        e = obs.evidence
        return Symptom(
            at=obs.at,
            model=obs.model,
            kind=SymptomKind.PIPELINE_FAILED,
            severity=Severity.WARNING,
            score=1.0,
            summary=f"pipeline run #{e.get('run')} failed at {e.get('stage')}: {e.get('error')}"[:500],
            evidence=dict(e),
        )

    @staticmethod
    def _quality(model: ModelRecord, observations: list[Observation], now: datetime) -> Symptom | None:
        bad = [o for o in observations if o.metric == "batch_quarantined"]
        if not bad:
            return None
        reasons = [str(o.evidence.get("reason", "")) for o in bad]
        return Symptom(
            at=now,
            model=model.name,
            kind=SymptomKind.DATA_QUALITY,
            severity=Severity.WARNING,
            score=len(bad) / len(observations),
            summary=f"{len(bad)} batch(es) quarantined: {reasons[0]}",
            evidence={"reasons": reasons, "files": [o.evidence.get("file") for o in bad]},
        )

    def _persistent(
        self,
        verdicts: Verdicts,
        kind: SymptomKind,
        latest: Observation,
        settings: AnalyzerSettings,
        sick: Callable[[Observation], bool],
    ) -> None:
        """Raise ``kind`` if ``sick`` held in ``persistence`` of the last ``window`` readings of this version."""
        version = latest.evidence.get("version")
        history = [
            o
            for o in self.store.observations(latest.model, metric=latest.metric, limit=settings.window * 4)
            if o.evidence.get("version") == version
        ][-settings.window :]
        streak = [o for o in history if sick(o)]
        if not sick(latest):
            verdicts[kind] = None
        elif len(streak) >= settings.persistence:
            verdicts[kind] = _symptom(kind, latest, streak)


def _drifted(obs: Observation) -> bool:
    return bool(obs.evidence.get("drifted"))


def _symptom(kind: SymptomKind, latest: Observation, streak: list[Observation]) -> Symptom:
    if kind is SymptomKind.DATA_DRIFT:
        features = list(latest.evidence.get("drifted", []))
        summary = f"{len(features)} feature(s) drifted: {', '.join(map(str, features[:5]))}"
    else:
        summary = f"{latest.evidence.get('metric', 'performance')} {latest.value:.3f} below the health threshold"
    return Symptom(
        at=latest.at,
        model=latest.model,
        kind=kind,
        severity=Severity.WARNING,
        score=float(latest.value),
        summary=summary,
        evidence={
            **latest.evidence,
            "first_seen_at": streak[0].at.isoformat(),
            "readings": [round(o.value, 4) for o in streak],
        },
    )
