"""A pipeline run's configuration: which data, which target, and every option of every stage.

It is written into the run's manifest, so a rerun of a failed run uses exactly the settings the run
started with, whatever the config file says by then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.features import FeatureOptions
from pipeline.ingest import Kind, TaskName
from pipeline.train import TrainParams, TuningParams
from pipeline.validate import ValidationPolicy

# Rows of training data kept as a version's reference sample (what drift is measured against).
REFERENCE_ROWS = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything one pipeline run needs; ``schema`` (column -> kind) is the model's, when it has one."""

    model: str
    data: list[str]
    target: str
    task: TaskName | None = None
    schema: dict[str, Kind] | None = None
    features: FeatureOptions = field(default_factory=FeatureOptions)
    train: TrainParams = field(default_factory=TrainParams)
    tuning: TuningParams = field(default_factory=TuningParams)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    health: dict[str, float] = field(default_factory=dict)
    reference_rows: int = REFERENCE_ROWS

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        return cls(
            **{
                **data,
                "features": FeatureOptions(**data["features"]),
                "train": TrainParams(**data["train"]),
                "tuning": TuningParams(**data["tuning"]),
                "validation": ValidationPolicy(**data["validation"]),
            }
        )
