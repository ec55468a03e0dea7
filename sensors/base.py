"""The sensor plug-in point and what a sensor may look at during one tick.

``Sensor`` is a one-method protocol. ``SenseContext`` carries the tick's time, the model, the registry and
the batches that arrived since the last tick, loaded once and shared by every sensor. ``ScriptedSensor``
is the fake for tests: it returns the readings it was given, tick after tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import pandas as pd

from knowledge.registry import ModelRegistry
from knowledge.values import Batch, ModelRecord, Observation, Version


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedBatch:
    """A batch's record and its rows."""

    batch: Batch
    frame: pd.DataFrame


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorSettings:
    """Thresholds the sensors need, taken from the config by the daemon."""

    drift_alpha: float = 0.05
    drift_min_effect: float = 0.1
    drift_min_rows: int = 100


@dataclass(slots=True, kw_only=True)
class SenseContext:
    """Everything a sensor may read during one tick for one model."""

    now: datetime
    model: ModelRecord
    registry: ModelRegistry
    batches: list[LoadedBatch] = field(default_factory=list)
    settings: SensorSettings = SensorSettings()
    _champion: Version | None = None
    _champion_read: bool = False

    @property
    def champion(self) -> Version | None:
        """The champion's row, read once per tick."""
        if not self._champion_read:
            self._champion = self.registry.champion(self.model.name)
            self._champion_read = True
        return self._champion

    def rows(self, *, labelled: bool | None = None) -> pd.DataFrame:
        """The rows of this tick's batches concatenated (optionally only labelled ones).

        Feedback batches repeat rows already served (now with labels): they count as labelled rows but
        not again as incoming data.
        """
        frames = [
            b.frame
            for b in self.batches
            if (labelled is None and b.batch.source != "feedback")
            or (labelled is not None and b.batch.labelled == labelled)
        ]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

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
