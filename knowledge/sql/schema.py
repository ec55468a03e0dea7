"""Tables of the knowledge store, as SQLAlchemy Core metadata.

This is the current shape of the schema; Alembic migrations under ``migrations/versions`` build it step by
step, and a test checks that migrating an empty database yields exactly this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from knowledge.sql.types import UtcDateTime

metadata = MetaData()

UTC_TS = UtcDateTime()

models = Table(
    "models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("task", String(32), nullable=False),
    Column("target", String(256), nullable=False),
    Column("features", JSON, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("artifact", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("data_fingerprint", String(64), nullable=False),
    Column("reference", Text, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("health", String(16), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("stable_at", UTC_TS, nullable=True),
    Column("rolled_back_at", UTC_TS, nullable=True),
    UniqueConstraint("model", "number", name="uq_versions_model_number"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model", String(128), ForeignKey("models.name"), primary_key=True),
    Column("alias", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("alias", String(32), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("at", UTC_TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("action_id", Integer, nullable=True),
    Column("epoch", Integer, nullable=True),  # lease epoch of the writer; NULL: an operator (healctl)
    Index("ix_alias_history_model_alias", "model", "alias", "id"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_TS, nullable=False),
    Column("model", String(128), nullable=False),
    Column("source", String(64), nullable=False),
    Column("metric", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("evidence", JSON, nullable=False),
    Index("ix_observations_model_metric_at", "model", "metric", "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("opened_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
    Column("last_seen_at", UTC_TS, nullable=False),
    Column("resolved_at", UTC_TS, nullable=True),
    Column("clear_ticks", Integer, nullable=False, default=0),
    Column("acked_by", String(128), nullable=True),
    Index("ix_incidents_model_kind_status", "model", "kind", "status"),
    # One active incident per model and kind, even when two daemons open it in the same instant.
    Index(
        "uq_incidents_active",
        "model",
        "kind",
        unique=True,
        sqlite_where=text("status <> 'resolved'"),
        postgresql_where=text("status <> 'resolved'"),
    ),
)

symptoms = Table(
    "symptoms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_TS, nullable=False),
    Column("model", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=True),
    Index("ix_symptoms_incident", "incident_id"),
)

actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=True),
    Column("model", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("cost", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("planned_at", UTC_TS, nullable=False),
    Column("started_at", UTC_TS, nullable=True),
    Column("finished_at", UTC_TS, nullable=True),
    Column("error", Text, nullable=True),
    Column("result", JSON, nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("epoch", Integer, nullable=True),  # lease epoch of the daemon that planned it; NULL: an operator
    Index("ix_actions_model_state", "model", "state"),
)

action_events = Table(
    "action_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", Integer, ForeignKey("actions.id"), nullable=False),
    Column("at", UTC_TS, nullable=False),
    Column("state", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_action_events_action", "action_id"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_TS, nullable=False),
    Column("model", String(128), nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=True),
    Column("chosen", String(16), nullable=True),
    Column("reason", Text, nullable=False),
    Column("candidates", JSON, nullable=False),
    Column("action_id", Integer, ForeignKey("actions.id"), nullable=True),
    Column("decided_by", String(64), nullable=False, server_default=""),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("received_at", UTC_TS, nullable=False),
    Column("source", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("labelled", Boolean, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("claim", String(320), nullable=True),
    Index("ix_batches_model_received", "model", "received_at"),
    UniqueConstraint("model", "claim", name="uq_batches_model_claim"),
)

# Where each pulled stream of a sql or http source stands; ``pending`` is settled in the transaction that
# records the page's batch, so the watermark advances exactly when its rows are recorded.
source_state = Table(
    "source_state",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("stream", String(16), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("watermark", JSON, nullable=True),
    Column("seen", JSON, nullable=False),
    Column("pending", JSON, nullable=True),
    Column("rows", Integer, nullable=False),
    Column("batches", Integer, nullable=False),
    Column("last_pull_at", UTC_TS, nullable=True),
    Column("last_success_at", UTC_TS, nullable=True),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("retry_at", UTC_TS, nullable=True),
)

# Rows the API served, until their label arrives (or the retention bound forgets them); ``flushed`` says the
# row went into an ``api-*`` batch, ``label_flushed`` that its latest label went into a ``feedback-*`` batch.
served_rows = Table(
    "served_rows",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("served_at", UTC_TS, nullable=False),
    Column("version", Integer, nullable=True),
    Column("row", JSON, nullable=False),
    Column("flushed", Boolean, nullable=False),
    Column("label", JSON, nullable=True),
    Column("labelled_at", UTC_TS, nullable=True),
    Column("label_flushed", Boolean, nullable=False),
    Index("ix_served_rows_served_at", "model", "served_at"),
)

column_mappings = Table(
    "column_mappings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("new", String(256), nullable=False),
    Column("old", String(256), nullable=False),
    Column("accepted_at", UTC_TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("removed_at", UTC_TS, nullable=True),
    Index("ix_column_mappings_model", "model"),
)

controls = Table(
    "controls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("symptom", String(32), nullable=True),
    Column("until", UTC_TS, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("renewed_at", UTC_TS, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("folder", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("started_at", UTC_TS, nullable=False),
    Column("finished_at", UTC_TS, nullable=True),
    Column("resumed_from", Integer, ForeignKey("pipeline_runs.id"), nullable=True),
    Column("failed_stage", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("version", Integer, nullable=True),
    Column("action_id", Integer, ForeignKey("actions.id"), nullable=True),
    Column("config", JSON, nullable=False),
    Index("ix_pipeline_runs_model", "model", "id"),
)

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("pipeline_runs.id"), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("folder", Text, nullable=False),
    Column("started_at", UTC_TS, nullable=True),
    Column("finished_at", UTC_TS, nullable=True),
    Column("seconds", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("input_fingerprint", String(64), nullable=False),
    Column("output_fingerprint", String(64), nullable=False),
    Column("error", Text, nullable=True),
    Column("summary", JSON, nullable=False),
    UniqueConstraint("run_id", "stage", name="uq_stage_runs_run_stage"),
    Index("ix_stage_runs_run", "run_id"),
)
