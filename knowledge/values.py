"""Value objects the loop passes between its stages and keeps in the knowledge store.

They are frozen and keyword-only, so a reading, a conclusion or a decision cannot change after it was
made; the store turns them into rows and back. Names follow the vocabulary of ARCHITECTURE.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Alias(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    STABLE = "stable"


class SymptomKind(StrEnum):
    DATA_DRIFT = "data_drift"
    PERFORMANCE_DROP = "performance_drop"
    DATA_QUALITY = "data_quality"
    ARTIFACT_CORRUPT = "artifact_corrupt"
    PIPELINE_FAILED = "pipeline_failed"
    BACKLOG = "backlog"
    HOST_PRESSURE = "host_pressure"
    ANOMALY = "anomaly"
    BAD_PROMOTION = "bad_promotion"
    SOURCE_FAILED = "source_failed"


class Metric(StrEnum):
    """Names of the readings sensors report (``Observation.metric``)."""

    PERFORMANCE = "performance"
    PERFORMANCE_WINDOW = "performance_window"
    ACCURACY_ESTIMATE = "accuracy_estimate"
    ARTIFACT_OK = "artifact_ok"
    DRIFT_SHARE = "drift_share"
    DATA_QUALITY = "data_quality"
    BATCH_ROWS = "batch_rows"
    BATCH_QUARANTINED = "batch_quarantined"
    PIPELINE_FAILED = "pipeline_failed"
    HOST_PRESSURE = "host_pressure"
    BACKLOG = "backlog"
    SHADOW = "shadow"
    SENSOR_FAILED = "sensor_failed"
    SOURCE_FAILED = "source_failed"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class IncidentStatus(StrEnum):
    OPEN = "open"
    MITIGATING = "mitigating"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class ActionKind(StrEnum):
    RETRAIN = "retrain"
    RERUN = "rerun"
    ROLLBACK = "rollback"
    PROMOTE = "promote"  # only a person promotes a chosen version (healctl promote); the planner never does
    SCALE = "scale"
    ALERT = "alert"


# Kinds only a person runs, through healctl: no rule's ladder names them, so the loop needs no actuator and the
# planner no cost for them (a test checks both sides of this).
PERSON_ONLY = frozenset({ActionKind.PROMOTE})


class ActionState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.ABORTED}


class ActionOutcome(StrEnum):
    """Whether a succeeded action's effect showed (``Action.outcome``)."""

    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"


class BatchStatus(StrEnum):
    """Where a received batch ended. Retention removes old files but keeps their rows as tombstones (with the
    claim and fingerprint), so a file sent again long after is still known for a duplicate and the batch
    counters never go down."""

    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"
    COLLECTED = "collected"  # was accepted; retention removed its file
    COLLECTED_QUARANTINED = "quarantine_gone"  # was quarantined; removed under a quarantine policy

    @property
    def received_as(self) -> BatchStatus:
        """What intake made of the batch, whatever retention did since."""
        return {
            BatchStatus.COLLECTED: BatchStatus.ACCEPTED,
            BatchStatus.COLLECTED_QUARANTINED: BatchStatus.QUARANTINED,
        }.get(self, self)

    @property
    def collected(self) -> BatchStatus:
        """The tombstone status of a batch of this status once retention removes its file."""
        quarantined = self.received_as is BatchStatus.QUARANTINED
        return BatchStatus.COLLECTED_QUARANTINED if quarantined else BatchStatus.COLLECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRecord:
    """A model under management: its task, target and the settings it was created with."""

    name: str
    task: Task
    target: str
    created_at: datetime
    features: list[str] = field(default_factory=list)
    paused: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """An immutable trained artifact of a model, with what it takes to verify and compare it."""

    model: str
    number: int
    artifact: str
    sha256: str
    created_at: datetime
    params: JSON = field(default_factory=dict)
    metrics: JSON = field(default_factory=dict)
    data_fingerprint: str = ""
    reference: str = ""
    profile: JSON = field(default_factory=dict)
    health: str = "healthy"
    created_by: str = "operator"
    stable_at: datetime | None = None
    rolled_back_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasMove:
    """One move of an alias: from which version to which, when, by whom and why."""

    model: str
    alias: Alias
    from_version: int | None
    to_version: int | None
    at: datetime
    actor: str
    reason: str
    action_id: int | None = None
    epoch: int | None = None  # the lease epoch it was written under; None for an operator's move


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One sensor reading."""

    at: datetime
    model: str
    source: str
    metric: str
    value: float
    evidence: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Symptom:
    """What the analyzer concluded from observations, with the evidence that led there."""

    at: datetime
    model: str
    kind: SymptomKind
    severity: Severity
    score: float
    summary: str
    evidence: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """Symptoms of one kind on one model, grouped over time."""

    id: int
    model: str
    kind: SymptomKind
    status: IncidentStatus
    severity: Severity
    summary: str
    opened_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    clear_ticks: int = 0
    acked_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """A remediation and where it stands in its journal."""

    id: int
    model: str
    kind: ActionKind
    state: ActionState
    planned_at: datetime
    actor: str
    reason: str
    incident_id: int | None = None
    params: JSON = field(default_factory=dict)
    cost: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: JSON = field(default_factory=dict)
    outcome: str | None = None
    epoch: int | None = None  # the lease epoch of the daemon that planned it; None for an operator's action


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the planner weighed for an incident and what it chose."""

    at: datetime
    model: str
    incident_id: int | None
    candidates: list[JSON]
    chosen: str | None
    reason: str
    action_id: int | None = None
    decided_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """A chunk of incoming rows, archived as a file; quarantined batches keep their reason."""

    id: int
    model: str
    received_at: datetime
    source: str
    path: str
    rows: int
    labelled: bool
    fingerprint: str
    status: str = "accepted"
    reason: str = ""
    claim: str | None = None  # "<sha256>/<file name>": the landing file's identity, unique per model


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceState:
    """Where a model's pulled stream (``rows`` or ``labels`` of a sql or http source) stands.

    ``watermark`` is the highest watermark (or the cursor) recorded with a batch; ``seen`` the keys already
    taken within the look-back window (key -> watermark); ``pending`` the page written out but not yet
    recorded (its file name, the watermark and keys it brings), settled in the batch's own transaction.
    """

    model: str
    stream: str
    kind: str
    watermark: Any = None
    seen: JSON = field(default_factory=dict)
    pending: JSON | None = None
    rows: int = 0
    batches: int = 0
    last_pull_at: datetime | None = None
    last_success_at: datetime | None = None
    failures: int = 0
    last_error: str = ""
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedRow:
    """A row the API predicted, kept so a label arriving later (even after a restart) joins it."""

    model: str
    request_id: str
    served_at: datetime
    row: JSON
    version: int | None = None
    label: Any = None
    labelled_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMapping:
    """An operator's accepted rename: rows arriving with column ``new`` are read as ``old``."""

    id: int
    model: str
    new: str
    old: str
    accepted_at: datetime
    actor: str
    reason: str
    removed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StageRun:
    """One stage of a pipeline run: how it went, how long it took, and fingerprints of what went in and out."""

    stage: str
    position: int
    status: str
    folder: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0
    attempts: int = 0
    input_fingerprint: str = ""
    output_fingerprint: str = ""
    error: str | None = None
    summary: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRun:
    """A run of the managed pipeline for a model; a rerun points at the failed run it resumed."""

    id: int
    model: str
    folder: str
    status: str
    trigger: str
    actor: str
    started_at: datetime
    finished_at: datetime | None = None
    resumed_from: int | None = None
    failed_stage: str | None = None
    error: str | None = None
    version: int | None = None
    action_id: int | None = None
    stages: list[StageRun] = field(default_factory=list)
