"""Intake: batches dropped in the landing folder become archived, recorded batches the sensors read.

Producers write ``landing/<model>/<name>.csv`` or ``.parquet`` (write to a dot-file or ``*.part`` first and
rename, so heald never reads half a file). Each file is read, validated as a batch against the schema the
champion was trained on (``pipeline.validate``: missing or retyped columns, words in numeric columns,
infinities, empty columns, ...) and checked against the champion's reference profile, recorded, then moved
to the archive; a file that cannot be read or used is moved whole to the quarantine folder with a
``.reason.json`` (the reason and the full validation report) beside it. No file is deleted and no row is
dropped silently.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from knowledge.artifacts import write_atomic
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, ModelRecord, Observation
from pipeline.errors import DataError
from pipeline.fingerprint import fingerprint
from pipeline.ingest import DatasetInfo, read_table
from pipeline.mapping import conform, rename_hint
from pipeline.profile import Profile
from pipeline.quality import check
from pipeline.validate import OWN_COLUMNS, Schema, ValidationPolicy, ValidationReport, validate
from sensors.base import LoadedBatch

SOURCE = "intake"
SUFFIXES = (".csv", ".parquet")
BATCH = ValidationPolicy(purpose="batch")


@dataclass(frozen=True, slots=True, kw_only=True)
class Intake:
    """What one pass over a model's landing folder produced."""

    batches: list[LoadedBatch]
    observations: list[Observation]


def expected_schema(model: ModelRecord, store: SqlKnowledgeStore) -> Schema:
    """The columns and kinds the champion was trained on (only the names, for a version without them)."""
    number = store.alias(model.name, Alias.CHAMPION)
    dataset = store.get_version(model.name, number).profile.get("dataset") if number is not None else None
    if dataset:
        return Schema.from_info(DatasetInfo.from_json(dataset), only=list(model.features))
    # "categorical" accepts any kind: without a recorded description only presence can be checked.
    return Schema(columns=dict.fromkeys(model.features, "categorical"), target=model.target)


def check_batch(frame: pd.DataFrame, model: ModelRecord, schema: Schema) -> ValidationReport:
    """Validate rows that arrived for ``model`` as a batch (the target may be absent: unlabelled rows)."""
    return validate(frame, target=model.target, task=model.task.value, schema=schema, policy=BATCH)


def blocking_problem(frame: pd.DataFrame, model: ModelRecord, profile: Profile | None) -> str | None:
    """Why the champion could not score these rows (retyped or empty feature columns), or None."""
    if profile is None:
        return None
    blocking = [p.detail for p in check(profile, frame, ignore=(model.target,)).problems if p.blocking]
    return "; ".join(blocking) or None


def champion_profile(store: SqlKnowledgeStore, model: str) -> Profile | None:
    number = store.alias(model, Alias.CHAMPION)
    return None if number is None else Profile.from_json(store.get_version(model, number).profile)


class LandingIntake:
    """Moves files from ``landing/<model>/`` to the archive or the quarantine, recording each batch."""

    def __init__(self, landing: Path, archive: Path, quarantine: Path) -> None:
        self.landing = landing
        self.archive = archive
        self.quarantine = quarantine

    def collect(self, model: ModelRecord, store: SqlKnowledgeStore, now: datetime) -> Intake:
        folder = self.landing / model.name
        batches: list[LoadedBatch] = []
        observations: list[Observation] = []
        if not folder.is_dir():
            return Intake(batches=[], observations=[])
        ready = sorted(p for p in folder.iterdir() if _ready(p))
        schema = expected_schema(model, store) if ready else None
        profile = champion_profile(store, model.name) if ready else None
        mappings = store.column_mappings(model.name) if ready else {}
        for path in ready:
            assert schema is not None
            loaded, observation = self._take(path, model, store, now, schema, profile, mappings)
            observations.append(observation)
            if loaded is not None:
                batches.append(loaded)
        return Intake(batches=batches, observations=observations)

    def _take(
        self,
        path: Path,
        model: ModelRecord,
        store: SqlKnowledgeStore,
        now: datetime,
        schema: Schema,
        profile: Profile | None,
        mappings: dict[str, str],
    ) -> tuple[LoadedBatch | None, Observation]:
        stamp = now.strftime("%Y%m%dT%H%M%S")
        frame: pd.DataFrame | None = None
        report: ValidationReport | None = None
        try:
            # Accepted renames applied and numbers with units read before anything checks the rows.
            frame = conform(read_table(path), mappings)
            report = check_batch(frame, model, schema)
            known = (model.target, *OWN_COLUMNS)
            report.raise_for_failures(path.name, rename_hint(profile, frame, list(schema.columns), known, model.name))
            problem = blocking_problem(frame, model, profile)
            if problem:
                raise DataError(f"{path.name}: {problem}")
        except DataError as exc:
            where = self._quarantine(path, model.name, stamp, str(exc), now, report)
            store.add_batch(
                model=model.name,
                received_at=now,
                source="landing",
                path=str(where),
                rows=len(frame) if frame is not None else 0,
                labelled=False,
                fingerprint="",
                status="quarantined",
                reason=str(exc),
            )
            failed = [c.name for c in report.failures] if report is not None else ["read"]
            return None, _observe(
                now, model.name, "batch_quarantined", 1.0, file=path.name, reason=str(exc), checks=failed
            )
        labelled = model.target in frame.columns and bool(frame[model.target].notna().any())
        target = self.archive / model.name / f"{stamp}-{path.name}"
        batch = store.add_batch(
            model=model.name,
            received_at=now,
            source=_source(path),
            path=str(target),
            rows=len(frame),
            labelled=labelled,
            fingerprint=fingerprint(frame),
        )
        _move(path, target)
        observation = _observe(now, model.name, "batch_rows", float(len(frame)), file=path.name, labelled=labelled)
        return LoadedBatch(batch=batch, frame=frame), observation

    def _quarantine(
        self, path: Path, model: str, stamp: str, reason: str, now: datetime, report: ValidationReport | None
    ) -> Path:
        target = self.quarantine / model / f"{stamp}-{path.name}"
        _move(path, target)
        note = {
            "file": path.name,
            "reason": reason,
            "at": now.isoformat(),
            "model": model,
            "validation": report.as_json() if report is not None else None,
        }
        write_atomic(target.with_name(target.name + ".reason.json"), json.dumps(note, indent=2).encode())
        return target


def _source(path: Path) -> str:
    """Files written by the API's capture say where they came from; everything else was dropped in."""
    for prefix in ("api", "feedback"):
        if path.name.startswith(f"{prefix}-"):
            return prefix
    return "landing"


def _ready(path: Path) -> bool:
    return path.is_file() and path.suffix in SUFFIXES and not path.name.startswith(".")


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))


def _observe(now: datetime, model: str, metric: str, value: float, **evidence: object) -> Observation:
    return Observation(at=now, model=model, source=SOURCE, metric=metric, value=value, evidence=dict(evidence))
