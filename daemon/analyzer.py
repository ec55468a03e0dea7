"""Analyze (the A of MAPE-K): turn a tick's observations into symptoms, or into evidence of health.

``analyze`` returns a verdict per symptom kind it has fresh evidence about: a ``Symptom`` when something
is wrong, ``None`` when the evidence says healthy; kinds without fresh evidence are left out, so a quiet
tick neither opens nor resolves anything.

The rules:

- ``artifact_corrupt`` at once when the champion's file does not verify;
- ``data_quality`` at once when a batch was quarantined or had quality problems (each reason kept);
- ``source_failed`` at once when a model's sql or http source could not be pulled; a pull that works is health;
- ``data_drift`` when features, predictions or labels drifted, ``performance_drop`` when the measured
  primary metric is under its floor, ``host_pressure`` and ``backlog`` when a reading is over its limit:
  each only if seen in N of the last T readings (of the same champion version, where versioned);
- a measured accuracy counts as under the floor only beyond its sampling noise: pooled over the sick
  readings, it must stay under the floor by ``NOISE_Z`` standard errors. A batch's accuracy is an estimate
  from its rows; a champion whose true accuracy sits a point above the floor reads under it in one batch of
  250 rows out of three or four, and each such streak would cost a fit that cannot win (R² has no such
  simple noise model: it is compared as measured);
- the accuracy *estimate* (labels late) counts towards ``performance_drop`` only when it is under the
  floor by ``estimate_margin``, and is never evidence of health;
- ``bad_promotion`` when, pooled over the shadow window after a promotion (``sensors.shadow``), the new
  champion scores worse than the version it replaced by ``shadow_margin``, and a paired test on the same rows
  says the loss is not noise;
- ``anomaly`` from ``AnomalyWatch``: an IsolationForest over the model's observation vector, fed only
  with ticks the rules found healthy.

Hysteresis (``resolve_after`` healthy verdicts before an incident resolves) is the incident tracker's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from daemon.anomaly import AnomalyWatch
from daemon.rules import RULES
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Metric, ModelRecord, Observation, Severity, Symptom, SymptomKind, Task

# One-sided 95 % bound of the paired test on the shadow gains.
Z_95 = 1.645
# How many standard errors the pooled sick accuracy readings must stay under the floor. One: the readings
# were selected for being under it (biased low), so a tighter bar would mostly delay real drops, and the
# persistence rule already asks for several readings.
NOISE_Z = 1.0
# A persistence rule reads this many windows of a metric's newest readings, then keeps the current version's last
# window: readings of an older version (before a promotion) must not push the current one out.
HISTORY_WINDOWS = 4

Verdicts = dict[SymptomKind, Symptom | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyzerSettings:
    persistence: int = 2
    window: int = 3
    min_accuracy: float = 0.8
    min_r2: float = 0.5
    estimate_margin: float = 0.05
    shadow_margin: float = 0.02


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
        if Metric.ARTIFACT_OK in latest:
            verdicts[SymptomKind.ARTIFACT_CORRUPT] = self._artifact(latest[Metric.ARTIFACT_OK])
        quality = [o for o in fresh if o.metric in {Metric.BATCH_QUARANTINED, Metric.BATCH_ROWS, Metric.DATA_QUALITY}]
        if quality:
            verdicts[SymptomKind.DATA_QUALITY] = self._quality(model, quality, now)
        if Metric.PIPELINE_FAILED in latest:
            verdicts[SymptomKind.PIPELINE_FAILED] = self._pipeline(latest[Metric.PIPELINE_FAILED])
        pulls = [o for o in fresh if o.metric == Metric.SOURCE_FAILED]
        if pulls:
            verdicts[SymptomKind.SOURCE_FAILED] = self._source(pulls)
        performance = Metric.PERFORMANCE if Metric.PERFORMANCE in latest else Metric.ACCURACY_ESTIMATE
        persistent = (Metric.DRIFT_SHARE, performance, Metric.HOST_PRESSURE, Metric.BACKLOG)
        # Every series a persistence rule reads, in one statement (one per series was a tenth of a model's tick).
        history = self.store.recent_observations(
            model.name, [m for m in persistent if m in latest], limit=settings.window * HISTORY_WINDOWS
        )
        if Metric.DRIFT_SHARE in latest:
            self._persistent(verdicts, SymptomKind.DATA_DRIFT, latest[Metric.DRIFT_SHARE], history, settings, _drifted)
        floor = settings.min_accuracy if model.task is Task.CLASSIFICATION else settings.min_r2
        if Metric.PERFORMANCE in latest:
            self._persistent(
                verdicts,
                SymptomKind.PERFORMANCE_DROP,
                latest[Metric.PERFORMANCE],
                history,
                settings,
                lambda o: o.value < floor,
                confirmed=(lambda streak: _under_beyond_noise(streak, floor))
                if model.task is Task.CLASSIFICATION
                else None,
            )
        elif Metric.ACCURACY_ESTIMATE in latest:
            low = floor - settings.estimate_margin
            self._persistent(
                verdicts,
                SymptomKind.PERFORMANCE_DROP,
                latest[Metric.ACCURACY_ESTIMATE],
                history,
                settings,
                lambda o: o.value < low,
                health_evidence=False,
            )
        for metric, kind in ((Metric.HOST_PRESSURE, SymptomKind.HOST_PRESSURE), (Metric.BACKLOG, SymptomKind.BACKLOG)):
            if metric in latest:
                self._persistent(verdicts, kind, latest[metric], history, settings, _over)
        if Metric.SHADOW in latest:
            verdicts[SymptomKind.BAD_PROMOTION] = self._shadow(latest[Metric.SHADOW], settings)
        if self.anomaly is not None:
            self._anomaly(model, fresh, now, verdicts)
        return verdicts

    def _shadow(self, latest: Observation, settings: AnalyzerSettings) -> Symptom | None:
        """A harmful promotion: pooled over its window, the champion loses to the version it replaced."""
        e = latest.evidence
        if not e.get("active"):
            return None
        pair = (e.get("version"), e.get("previous"))
        window = [
            o
            for o in self.store.observations(latest.model, metric=Metric.SHADOW, limit=50)
            if o.evidence.get("active") and (o.evidence.get("version"), o.evidence.get("previous")) == pair
        ]
        rows = sum(int(o.evidence["rows"]) for o in window)
        mean = sum(float(o.evidence["gain_sum"]) for o in window) / rows
        spread = max(sum(float(o.evidence["gain_squares"]) for o in window) / rows - mean**2, 0.0)
        upper = mean + Z_95 * (spread / rows) ** 0.5
        if mean > -settings.shadow_margin or upper >= 0:
            return None
        weights = [int(o.evidence["rows"]) for o in window]
        pooled = {
            k: sum(float(o.evidence[k]) * w for o, w in zip(window, weights, strict=True)) / rows
            for k in ("champion_score", "previous_score")
        }
        evidence = {**e, **pooled, "rows": rows, "gain": mean, "upper_bound": upper, "readings": len(window)}
        shown = Observation(
            at=latest.at, model=latest.model, source=latest.source, metric=latest.metric, value=mean, evidence=evidence
        )
        return Symptom(
            at=latest.at,
            model=latest.model,
            kind=SymptomKind.BAD_PROMOTION,
            severity=Severity.CRITICAL,
            score=mean,
            summary=RULES[SymptomKind.BAD_PROMOTION].summary(shown),
            evidence={**evidence, "first_seen_at": window[0].at.isoformat()},
        )

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
            summary=RULES[SymptomKind.ARTIFACT_CORRUPT].summary(obs),
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
            summary=RULES[SymptomKind.PIPELINE_FAILED].summary(obs),
            evidence=dict(e),
        )

    @staticmethod
    def _source(pulls: list[Observation]) -> Symptom | None:
        """A source that could not be pulled this tick; a successful pull of every stream is health."""
        failed = [o for o in pulls if o.value >= 1.0]
        if not failed:
            return None
        first = failed[0]
        return Symptom(
            at=first.at,
            model=first.model,
            kind=SymptomKind.SOURCE_FAILED,
            severity=Severity.WARNING,
            score=float(max(int(o.evidence.get("failures", 1)) for o in failed)),
            summary=RULES[SymptomKind.SOURCE_FAILED].summary(first),
            evidence={"streams": [dict(o.evidence) for o in failed]},
        )

    @staticmethod
    def _quality(model: ModelRecord, observations: list[Observation], now: datetime) -> Symptom | None:
        quarantined = [o for o in observations if o.metric == Metric.BATCH_QUARANTINED]
        flawed = [o for o in observations if o.metric == Metric.DATA_QUALITY and o.value > 0]
        if not quarantined and not flawed:
            return None
        reasons = [str(o.evidence.get("reason", "")) for o in quarantined]
        problems = [p for o in flawed for p in o.evidence.get("problems", [])]
        reasons += [f"{o.evidence.get('file')}: {p['detail']}" for o in flawed for p in o.evidence.get("problems", [])]
        batches = len([o for o in observations if o.metric in (Metric.BATCH_QUARANTINED, Metric.BATCH_ROWS)]) or 1
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
        history: Mapping[str, list[Observation]],
        settings: AnalyzerSettings,
        sick: Callable[[Observation], bool],
        *,
        health_evidence: bool = True,
        confirmed: Callable[[list[Observation]], bool] | None = None,
    ) -> None:
        """Raise ``kind`` if ``sick`` held in ``persistence`` of the last ``window`` readings of this version
        (and ``confirmed`` holds for those sick readings, when given).

        ``history`` holds the newest readings of each metric (``latest`` among them). A healthy latest reading is
        evidence of health (``None``) unless ``health_evidence`` is off; sick readings that are not confirmed are
        no verdict at all: they neither open nor resolve anything.
        """
        version = latest.evidence.get("version")
        window = [o for o in history.get(latest.metric, []) if o.evidence.get("version") == version][-settings.window :]
        streak = [o for o in window if sick(o)]
        if not sick(latest):
            if health_evidence:
                verdicts[kind] = None
        elif len(streak) >= settings.persistence and (confirmed is None or confirmed(streak)):
            verdicts[kind] = _symptom(kind, latest, streak)


def _under_beyond_noise(streak: list[Observation], floor: float) -> bool:
    """Whether the sick accuracy readings, pooled, stay under ``floor`` by ``NOISE_Z`` standard errors.

    Readings without a row count have no known noise: they are taken as they are.
    """
    rows = [int(o.evidence.get("rows", 0) or 0) for o in streak]
    if not all(rows):
        return True
    total = sum(rows)
    pooled = sum(o.value * n for o, n in zip(streak, rows, strict=True)) / total
    # Floored as if one more row had disagreed: an all-wrong or all-right pool still has some noise.
    variance = max(pooled * (1.0 - pooled), 1.0 / (total + 1))
    return pooled + NOISE_Z * math.sqrt(variance / total) < floor


def _drifted(obs: Observation) -> bool:
    e = obs.evidence
    return bool(e.get("drifted") or e.get("prediction_drifted") or e.get("label_drifted"))


def _over(obs: Observation) -> bool:
    return bool(obs.evidence.get("over"))


def _symptom(kind: SymptomKind, latest: Observation, streak: list[Observation]) -> Symptom:
    return Symptom(
        at=latest.at,
        model=latest.model,
        kind=kind,
        severity=Severity.WARNING,
        score=float(latest.value),
        summary=RULES[kind].summary(latest),
        evidence={
            **latest.evidence,
            "first_seen_at": streak[0].at.isoformat(),
            "readings": [round(o.value, 4) for o in streak],
        },
    )
