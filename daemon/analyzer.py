"""Analyze (the A of MAPE-K): turn a tick's observations into symptoms, or into evidence of health.

``analyze`` returns a verdict per symptom kind it has fresh evidence about: a ``Symptom`` when something
is wrong, ``None`` when the evidence says healthy; kinds without fresh evidence are left out, so a quiet
tick neither opens nor resolves anything.

The rules:

- ``artifact_corrupt`` at once when the champion's file does not verify;
- ``data_quality`` at once when a batch was quarantined or had quality problems (each reason kept);
- ``data_drift`` when features, predictions or labels drifted, ``performance_drop`` when the measured
  primary metric is under its floor, ``host_pressure`` and ``backlog`` when a reading is over its limit:
  each only if seen in N of the last T readings (of the same champion version, where versioned);
- the accuracy *estimate* (labels late) counts towards ``performance_drop`` only when it is under the
  floor by ``estimate_margin``, and is never evidence of health;
- ``anomaly`` from ``AnomalyWatch``: an IsolationForest over the model's observation vector, fed only
  with ticks the rules found healthy.

Hysteresis (``resolve_after`` healthy verdicts before an incident resolves) is the incident tracker's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daemon.anomaly import AnomalyWatch
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import ModelRecord, Observation, Severity, Symptom, SymptomKind, Task

Verdicts = dict[SymptomKind, Symptom | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyzerSettings:
    persistence: int = 2
    window: int = 3
    min_accuracy: float = 0.8
    min_r2: float = 0.5
    estimate_margin: float = 0.05


class Analyzer:
    """Threshold rules with persistence over the observations kept in the store, plus the anomaly watch."""

    def __init__(
        self,
        store: SqlKnowledgeStore,
        settings_for: Callable[[str], AnalyzerSettings],
        anomaly: AnomalyWatch | None = None,
    ) -> None:
        self.store = store
        self.settings_for = settings_for
        self.anomaly = anomaly

    def analyze(self, model: ModelRecord, fresh: list[Observation], now: datetime) -> Verdicts:
        settings = self.settings_for(model.name)
        verdicts: Verdicts = {}
        latest = {o.metric: o for o in fresh}
        if "artifact_ok" in latest:
            verdicts[SymptomKind.ARTIFACT_CORRUPT] = self._artifact(latest["artifact_ok"])
        quality = [o for o in fresh if o.metric in {"batch_quarantined", "batch_rows", "data_quality"}]
        if quality:
            verdicts[SymptomKind.DATA_QUALITY] = self._quality(model, quality, now)
        if "pipeline_failed" in latest:
            verdicts[SymptomKind.PIPELINE_FAILED] = self._pipeline(latest["pipeline_failed"])
        if "drift_share" in latest:
            self._persistent(verdicts, SymptomKind.DATA_DRIFT, latest["drift_share"], settings, _drifted)
        floor = settings.min_accuracy if model.task is Task.CLASSIFICATION else settings.min_r2
        if "performance" in latest:
            self._persistent(
                verdicts, SymptomKind.PERFORMANCE_DROP, latest["performance"], settings, lambda o: o.value < floor
            )
        elif "accuracy_estimate" in latest:
            low = floor - settings.estimate_margin
            self._persistent(
                verdicts,
                SymptomKind.PERFORMANCE_DROP,
                latest["accuracy_estimate"],
                settings,
                lambda o: o.value < low,
                health_evidence=False,
            )
        for metric, kind in (("host_pressure", SymptomKind.HOST_PRESSURE), ("backlog", SymptomKind.BACKLOG)):
            if metric in latest:
                self._persistent(verdicts, kind, latest[metric], settings, _over)
        if self.anomaly is not None:
            self._anomaly(model, fresh, now, verdicts)
        return verdicts

    def _anomaly(self, model: ModelRecord, fresh: list[Observation], now: datetime, verdicts: Verdicts) -> None:
        assert self.anomaly is not None
        ruled = any(verdicts.values())
        healthy = not ruled and not self.store.active_incidents(model.name)
        judged, symptom = self.anomaly.assess(model.name, fresh, now, healthy, ruled)
        if judged:
            verdicts[SymptomKind.ANOMALY] = symptom

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
        quarantined = [o for o in observations if o.metric == "batch_quarantined"]
        flawed = [o for o in observations if o.metric == "data_quality" and o.value > 0]
        if not quarantined and not flawed:
            return None
        reasons = [str(o.evidence.get("reason", "")) for o in quarantined]
        problems = [p for o in flawed for p in o.evidence.get("problems", [])]
        reasons += [f"{o.evidence.get('file')}: {p['detail']}" for o in flawed for p in o.evidence.get("problems", [])]
        batches = len([o for o in observations if o.metric in ("batch_quarantined", "batch_rows")]) or 1
        blocking = bool(quarantined) or any(o.evidence.get("blocking") for o in flawed)
        head = f"{len(quarantined)} batch(es) quarantined" if quarantined else f"{len(flawed)} batch(es) with problems"
        return Symptom(
            at=now,
            model=model.name,
            kind=SymptomKind.DATA_QUALITY,
            severity=Severity.CRITICAL if blocking and not quarantined else Severity.WARNING,
            score=(len(quarantined) + len(flawed)) / batches,
            summary=f"{head}: {reasons[0]}",
            evidence={
                "reasons": reasons,
                "files": [o.evidence.get("file") for o in quarantined + flawed],
                "problems": problems,
                "quarantined": len(quarantined),
            },
        )

    def _persistent(
        self,
        verdicts: Verdicts,
        kind: SymptomKind,
        latest: Observation,
        settings: AnalyzerSettings,
        sick: Callable[[Observation], bool],
        *,
        health_evidence: bool = True,
    ) -> None:
        """Raise ``kind`` if ``sick`` held in ``persistence`` of the last ``window`` readings of this version.

        A healthy latest reading is evidence of health (``None``) unless ``health_evidence`` is off.
        """
        version = latest.evidence.get("version")
        history = [
            o
            for o in self.store.observations(latest.model, metric=latest.metric, limit=settings.window * 4)
            if o.evidence.get("version") == version
        ][-settings.window :]
        streak = [o for o in history if sick(o)]
        if not sick(latest):
            if health_evidence:
                verdicts[kind] = None
        elif len(streak) >= settings.persistence:
            verdicts[kind] = _symptom(kind, latest, streak)


def _drifted(obs: Observation) -> bool:
    e = obs.evidence
    return bool(e.get("drifted") or e.get("prediction_drifted") or e.get("label_drifted"))


def _over(obs: Observation) -> bool:
    return bool(obs.evidence.get("over"))


def _symptom(kind: SymptomKind, latest: Observation, streak: list[Observation]) -> Symptom:
    if kind is SymptomKind.DATA_DRIFT:
        summary = _drift_summary(latest)
    elif kind in (SymptomKind.HOST_PRESSURE, SymptomKind.BACKLOG):
        summary = f"{kind.value.replace('_', ' ')}: {', '.join(map(str, latest.evidence.get('over', [])))}"
    elif latest.evidence.get("estimate"):
        summary = f"estimated accuracy {latest.value:.3f} (from confidence; labels late) below the floor by a margin"
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


def _drift_summary(latest: Observation) -> str:
    e = latest.evidence
    features = list(e.get("drifted", []))
    parts = []
    if features:
        details = e.get("features", {})
        shown = [
            f"{f} ({details.get(f, {}).get('effect_name', '')}={details.get(f, {}).get('effect', '?')})"
            for f in features[:5]
        ]
        parts.append(f"{len(features)} feature(s) drifted: {', '.join(shown)}")
    if e.get("prediction_drifted"):
        parts.append("predictions drifted")
    if e.get("label_drifted"):
        parts.append("labels drifted")
    return "; ".join(parts)
