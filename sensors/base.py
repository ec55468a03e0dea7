"""The sensor plug-in point and what a sensor may look at during one tick.

``Sensor`` is a one-method protocol. ``SenseContext`` carries the tick's time, the model, the registry and
the batches that arrived since the last tick, loaded once and shared by every sensor; so are the champion's
reference profile and its predictions on this tick's rows, computed at most once per tick whichever sensor
asks first. ``ScriptedSensor`` is the fake for tests: it returns the readings it was given, tick after tick.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from knowledge.errors import ArtifactError
from knowledge.registry import ModelRegistry
from knowledge.values import Batch, ModelRecord, Observation, Task, Version
from pipeline import frames, scoring
from pipeline.floors import JS_FLOOR, KS_FLOOR, PSI_FLOOR, WASSERSTEIN_FLOOR
from pipeline.profile import Profile
from pipeline.quality import QualityReport


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedBatch:
    """A batch's record and its rows."""

    batch: Batch
    frame: pd.DataFrame
    quality: QualityReport | None = None  # intake's check of the rows against the champion's profile, if it made one


class ProfileCache:
    """Champions' parsed reference profiles, kept across ticks: parsing one (a few hundred KB of JSON) is a large
    part of a model's tick, and intake and the sensors both need it. A version's profile is written with it and
    never changed, so its number, checksum and creation time name it; one entry per model (its champion)."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[tuple[int, str, datetime], Profile | None]] = {}
        self._lock = threading.Lock()  # models are sensed on several threads; each only touches its own entry

    def get(self, version: Version) -> Profile | None:
        key = (version.number, version.sha256, version.created_at)
        with self._lock:
            held = self._held.get(version.model)
        if held is not None and held[0] == key:
            return held[1]
        profile = Profile.from_json(version.profile)
        with self._lock:
            self._held[version.model] = (key, profile)
        return profile


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorSettings:
    """Thresholds the sensors need, taken from the config by the daemon."""

    drift_alpha: float = 0.05
    drift_min_effect: float = KS_FLOOR
    drift_min_wasserstein: float = WASSERSTEIN_FLOOR
    drift_min_psi: float = PSI_FLOOR
    drift_min_js: float = JS_FLOOR
    drift_min_rows: int = 100
    max_missing_increase: float = 0.2
    max_unseen_share: float = 0.05
    max_out_of_range_share: float = 0.05
    performance_window_rows: int = 2000
    performance_min_rows: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class Scored:
    """The champion's predictions on this tick's rows, or why it could not make them."""

    rows: pd.DataFrame
    predicted: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    error: str | None = None


@dataclass(slots=True, kw_only=True)
class SenseContext:
    """Everything a sensor may read during one tick for one model."""

    now: datetime
    model: ModelRecord
    registry: ModelRegistry
    batches: list[LoadedBatch] = field(default_factory=list)
    settings: SensorSettings = SensorSettings()
    profiles: ProfileCache | None = None  # the loop's, kept across ticks (None: parsed once per tick)
    _champion: Version | None = None
    _champion_read: bool = False
    _profile: Profile | None = None
    _profile_read: bool = False
    _scored: dict[bool | None, Scored] = field(default_factory=dict)

    @property
    def champion(self) -> Version | None:
        """The champion's row, read once per tick."""
        if not self._champion_read:
            self._champion = self.registry.champion(self.model.name)
            self._champion_read = True
        return self._champion

    @property
    def profile(self) -> Profile | None:
        """The champion's reference profile (None without a champion or for a version without one)."""
        if not self._profile_read:
            champion = self.champion
            if champion is None:
                self._profile = None
            else:
                self._profile = self.profiles.get(champion) if self.profiles else Profile.from_json(champion.profile)
            self._profile_read = True
        return self._profile

    def scored(self, *, labelled: bool | None = None) -> Scored:
        """The champion's predictions (and class probabilities) on this tick's rows (as ``rows``), made once."""
        if labelled not in self._scored:
            # Most ticks' batches are all labelled: then "labelled rows" and "incoming rows" are the same rows,
            # scored once (predicting is most of a model's tick).
            chosen = self._chosen(labelled)
            same = [s for key, s in self._scored.items() if self._chosen(key) == chosen]
            self._scored[labelled] = same[0] if same else self._score(self.rows(labelled=labelled))
        return self._scored[labelled]

    def _chosen(self, labelled: bool | None) -> list[int]:
        """The ids of the batches whose rows ``rows(labelled=...)`` concatenates, in order."""
        return [b.batch.id for b in self.batches if self._selected(b, labelled)]

    @staticmethod
    def _selected(loaded: LoadedBatch, labelled: bool | None) -> bool:
        if labelled is None:
            return loaded.batch.source != "feedback"
        return loaded.batch.labelled == labelled

    def _score(self, rows: pd.DataFrame) -> Scored:
        champion = self.champion
        if champion is None or rows.empty:
            return Scored(rows=rows, error="no champion" if champion is None else "no rows")
        missing = [f for f in self.model.features if f not in rows.columns]
        if missing:
            return Scored(rows=rows, error=f"feature columns {missing} are missing")
        try:
            estimator = self.registry.load(champion)
            features = frames.columns(rows, self.model.features)
            if self.model.task is Task.CLASSIFICATION and hasattr(estimator, "predict_proba"):
                # A forest's predict is the argmax of its probabilities: one pass gives both.
                probabilities = scoring.predict_proba(estimator, features)
                predicted = np.asarray(estimator.classes_)[np.argmax(probabilities, axis=1)]
                return Scored(rows=rows, predicted=predicted, probabilities=probabilities)
            return Scored(rows=rows, predicted=scoring.predict(estimator, features))
        except ArtifactError as exc:
            return Scored(rows=rows, error=str(exc))
        except (ValueError, TypeError) as exc:  # rows the model cannot take: wrong types, all missing, ...
            return Scored(rows=rows, error=f"v{champion.number} cannot score these rows: {exc}")

    def rows(self, *, labelled: bool | None = None) -> pd.DataFrame:
        """The rows of this tick's batches concatenated (optionally only labelled ones).

        Feedback batches repeat rows already served (now with labels): they count as labelled rows but
        not again as incoming data.
        """
        loaded = [b.frame for b in self.batches if self._selected(b, labelled)]
        return pd.concat(loaded, ignore_index=True) if loaded else pd.DataFrame()

    def observe(self, source: str, metric: str, value: float, /, **evidence: object) -> Observation:
        return Observation(
            at=self.now, model=self.model.name, source=source, metric=metric, value=value, evidence=evidence
        )


class Sensor(Protocol):
    """Reads one aspect of the world for one model."""

    def sense(self, ctx: SenseContext) -> list[Observation]: ...


class ScriptedSensor:
    """A fake sensor that returns prepared readings, one list per tick, then nothing."""

    def __init__(self, script: Iterable[list[tuple[str, float]]], source: str = "scripted") -> None:
        self._script: Iterator[list[tuple[str, float]]] = iter(script)
        self.source = source

    def sense(self, ctx: SenseContext) -> list[Observation]:
        readings = next(self._script, [])
        return [ctx.observe(self.source, metric, value) for metric, value in readings]
